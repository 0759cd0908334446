import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { delegatedToken, type Gateway, mintKeys, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';

describe('identity.login_cache: what a login reads, used again, on the PostgreSQL listener', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let keys: Record<'behind' | 'revoked' | 'minter' | 'parent' | 'disabled', string>;

  /** A session opened and closed with `password`: the error that refused it, or undefined. */
  const login = async (password: string, database = 'shop'): Promise<pg.DatabaseError | undefined> => {
    const c = new pg.Client({ host: '127.0.0.1', port, database, user: 'x', password });
    try {
      await c.connect();
      await c.query('select 1');
      return undefined;
    } catch (err) {
      return err as pg.DatabaseError;
    } finally {
      await c.end().catch(() => undefined);
    }
  };

  const refused = async (password: string, message: RegExp) => {
    const err = await login(password);
    assert.ok(err, 'the login was let in');
    assert.equal(err.code, '28P01');
    assert.match(err.message, message);
  };

  before(async () => {
    db = await createThrowawayDb();
    // An hour: whatever the test sees refused was refused by a revocation, not by the time running out.
    gw = await startGateway('sqlite', {
      config: { connections: [pgConnection(db.name, 'shop')], identity: { login_cache: '1m' } },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    keys = await mintKeys(gw, {
      behind: 'bots',
      revoked: 'bots',
      minter: 'bots',
      parent: 'bots',
      disabled: 'bots',
    });
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('does not read the store again for a key it verified: a change behind its back is not seen', async () => {
    assert.equal(await login(keys.behind), undefined);
    // What another gateway sharing the store would leave: the row revoked, this gateway not told.
    const store = gw.openStore();
    try {
      const { numUpdatedRows } = await store.db
        .updateTable('api_keys')
        .set({ revoked_at: new Date().toISOString() })
        .where('name', '=', 'behind')
        .executeTakeFirst();
      assert.equal(numUpdatedRows, 1n);
    } finally {
      await store.close();
    }
    assert.equal(await login(keys.behind), undefined, 'served from the cache');
  });

  it('refuses a key revoked through this gateway at once', async () => {
    assert.equal(await login(keys.revoked), undefined);
    assert.equal(await login(keys.revoked), undefined);
    const res = await gw.cli(['keys', 'revoke', 'revoked']);
    assert.equal(res.code, 0, res.stderr);
    await refused(keys.revoked, /API key revoked was revoked/);
  });

  it('refuses a token revoked through this gateway at once, and one whose key was revoked', async () => {
    const token = await delegatedToken(gw, keys.minter, 'helper-1', 'shop');
    assert.equal(await login(token), undefined);
    const res = await gw.cli(['token', 'revoke', decodeJwt(token).jti as string]);
    assert.equal(res.code, 0, res.stderr);
    await refused(token, /token was revoked/);

    const child = await delegatedToken(gw, keys.parent, 'helper-2', 'shop');
    assert.equal(await login(child), undefined);
    const revoked = await gw.cli(['keys', 'revoke', 'parent']);
    assert.equal(revoked.code, 0, revoked.stderr);
    await refused(child, /revoked/);
    await refused(keys.parent, /API key parent was revoked/);
  });

  it('refuses a token revoked elsewhere at once when it is revoked here too, with nothing left to write', async () => {
    const token = await delegatedToken(gw, keys.minter, 'helper-3', 'shop');
    const jti = decodeJwt(token).jti as string;
    assert.equal(await login(token), undefined);
    const store = gw.openStore();
    try {
      await store.db
        .updateTable('tokens')
        .set({ revoked_at: new Date().toISOString() })
        .where('jti', '=', jti)
        .execute();
    } finally {
      await store.close();
    }
    assert.equal(await login(token), undefined, 'served from the cache');
    const res = await gw.cli(['token', 'revoke', jti]);
    assert.equal(res.code, 0, res.stderr);
    await refused(token, /token was revoked/);
  });

  it('uses a connection read for a login again, until it is changed through this gateway', async () => {
    const created = await gw.api('POST', '/api/connections', { body: pgConnection(db.name, 'api-made') });
    assert.equal(created.status, 201, created.text);
    assert.equal(await login(keys.minter, 'api-made'), undefined);
    // Another gateway sharing the store points it at a port nothing listens on.
    const store = gw.openStore();
    try {
      await store.db.updateTable('connections').set({ port: 1 }).where('name', '=', 'api-made').execute();
    } finally {
      await store.close();
    }
    assert.equal(await login(keys.minter, 'api-made'), undefined, 'the connection read a moment ago');
    // A change through this gateway's API: the next login reads the row again, dead port and all.
    const patched = await gw.api('PATCH', '/api/connections/api-made', { body: { description: 'moved' } });
    assert.equal(patched.status, 200, patched.text);
    const err = await login(keys.minter, 'api-made');
    assert.equal(err?.code, '08001', err?.message);
  });

  it('refuses a connection removed through this gateway at once, though it was read a moment ago', async () => {
    const created = await gw.api('POST', '/api/connections', { body: pgConnection(db.name, 'api-gone') });
    assert.equal(created.status, 201, created.text);
    assert.equal(await login(keys.minter, 'api-gone'), undefined);
    const removed = await gw.api('DELETE', '/api/connections/api-gone');
    assert.ok(removed.status < 300, removed.text);
    const err = await login(keys.minter, 'api-gone');
    assert.equal(err?.code, '3D000', err?.message);
  });

  it('still refuses a disabled subject at once: that check is not cached', async () => {
    assert.equal(await login(keys.disabled), undefined);
    const res = await gw.cli(['subjects', 'disable', 'disabled', '--reason', 'left the team']);
    assert.equal(res.code, 0, res.stderr);
    await refused(keys.disabled, /left the team|disabled/);
  });
});
