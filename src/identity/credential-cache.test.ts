import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { delegatedToken, type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import type { Identity } from './identity.js';
import { VerifiedCredentials } from './verified-credentials.js';

const identity = (expiresAt: Date | null = null): Identity => ({
  subject: 'ci-bot',
  kind: 'service',
  groups: ['bots'],
  rootSubject: 'ci-bot',
  chain: [],
  via: 'api_key',
  tokenId: 'k1',
  parentTokenId: null,
  parentSessionId: null,
  issuer: 'warden',
  scope: ['*'],
  expiresAt,
  roles: ['user'],
});

describe('verified credentials (the cache)', () => {
  it('serves an entry for its time to live, and never past the credential’s own expiry', () => {
    const cache = new VerifiedCredentials(1_000);
    const now = 1_000_000;
    cache.keep('wdn_a', identity(), cache.mark(), now);
    assert.equal(cache.get('wdn_a', now + 999)?.subject, 'ci-bot');
    assert.equal(cache.get('wdn_a', now + 1_000), undefined, 'expired with its time to live');
    assert.equal(cache.size, 0, 'an expired entry is dropped when asked for');

    cache.keep('wdn_b', identity(new Date(now + 300)), cache.mark(), now);
    assert.ok(cache.get('wdn_b', now + 299));
    assert.equal(cache.get('wdn_b', now + 300), undefined, 'the credential expired before the entry would');
    cache.keep('wdn_c', identity(new Date(now)), cache.mark(), now);
    assert.equal(cache.size, 0, 'an expired credential is not kept at all');
    assert.equal(cache.get('wdn_other', now), undefined);
  });

  it('keeps nothing verified before a revocation, even when the verification ends after it', () => {
    const cache = new VerifiedCredentials(60_000);
    cache.keep('wdn_a', identity(), cache.mark());
    const mark = cache.mark();
    // A verification reads the store, a revocation lands here meanwhile, then the verification ends.
    cache.forget();
    cache.keep('wdn_b', identity(), mark);
    assert.equal(cache.get('wdn_a'), undefined, 'forget() drops what was kept');
    assert.equal(cache.get('wdn_b'), undefined, 'a verification begun before the revocation is not kept');
    cache.keep('wdn_b', identity(), cache.mark());
    assert.ok(cache.get('wdn_b'));
  });

  it('is bounded, does nothing when off, and shares a frozen identity', () => {
    const cache = new VerifiedCredentials(60_000, 3);
    for (const c of ['a', 'b', 'c', 'd']) cache.keep(c, identity(), cache.mark());
    assert.equal(cache.size, 3);
    assert.equal(cache.get('a'), undefined, 'the oldest entry made room');
    const kept = cache.get('d');
    assert.ok(kept && Object.isFrozen(kept) && Object.isFrozen(kept.groups));

    const off = new VerifiedCredentials(0);
    off.keep('a', identity(), off.mark());
    assert.equal(off.get('a'), undefined);
    assert.equal(off.size, 0);
  });
});

describe('identity.credential_cache on the PostgreSQL listener', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let keys: Record<'behind' | 'revoked' | 'minter' | 'parent' | 'disabled', string>;

  /** A session opened and closed with `password`: the error that refused it, or undefined. */
  const login = async (password: string): Promise<pg.DatabaseError | undefined> => {
    const c = new pg.Client({ host: '127.0.0.1', port, database: 'shop', user: 'x', password });
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
      config: { connections: [pgConnection(db.name, 'shop')], identity: { credential_cache: '1h' } },
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

  it('still refuses a disabled subject at once: that check is not cached', async () => {
    assert.equal(await login(keys.disabled), undefined);
    const res = await gw.cli(['subjects', 'disable', 'disabled', '--reason', 'left the team']);
    assert.equal(res.code, 0, res.stderr);
    await refused(keys.disabled, /left the team|disabled/);
  });
});
