import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { delegatedToken, type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';

/** Generous: the gateway re-checks every second; this only bounds a session that never ends. */
const ENDS_WITHIN_MS = 10_000;

describe('live sessions end when their credential is revoked (PostgreSQL listener)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let keys: Record<'agent-a' | 'agent-z', string>;

  /** An open pg session with `password`, and the error it ends with (if it is ended for it). */
  const open = async (password: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, database: 'shop', user: 'x', password });
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    await c.connect();
    assert.deepEqual((await c.query('select 1 as n')).rows, [{ n: 1 }]);
    return { c, ended };
  };

  /** Waits for the session to be ended by Warden; returns its error and how long it took. */
  const endedBy = async (ended: Promise<Error>, since: number) => {
    const err = await Promise.race([
      ended,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the session was not ended')), ENDS_WITHIN_MS),
      ),
    ]);
    return { err: err as pg.DatabaseError, ms: Date.now() - since };
  };

  before(async () => {
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', { config: { connections: [pgConnection(db.name, 'shop')] } });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    keys = await mintKeys(gw, { 'agent-a': 'bots', 'agent-z': 'bots' });
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('ends a session on a delegated token when the agent that delegated it revokes it, and audits it', async () => {
    const token = await delegatedToken(gw, keys['agent-a'], 'helper-1', 'shop');
    const other = await open(keys['agent-z']);
    const { c, ended } = await open(token);
    const revoked = await gw.cli(['token', 'revoke', decodeJwt(token).jti as string], {
      token: keys['agent-a'],
    });
    assert.equal(revoked.code, 0, revoked.stderr);
    const { err } = await endedBy(ended, Date.now());
    assert.equal(err.code, '57P01');
    assert.match(err.message, /session ended: token was revoked/);
    await gw.waitForAudit('session.revoked', (a) => a.payload.reason === 'token was revoked');
    // A session on another credential goes on.
    assert.deepEqual((await other.c.query('select 2 as n')).rows, [{ n: 2 }]);
    await other.c.end();
    await c.end().catch(() => undefined);
  });

  it('ends sessions on an API key, and on tokens delegated from it, when the key is revoked', async () => {
    const token = await delegatedToken(gw, keys['agent-a'], 'helper-2', 'shop');
    const direct = await open(keys['agent-a']);
    const viaToken = await open(token);
    const since = Date.now();
    const revoked = await gw.cli(['keys', 'revoke', 'agent-a']);
    assert.equal(revoked.code, 0, revoked.stderr);
    const a = await endedBy(direct.ended, since);
    const b = await endedBy(viaToken.ended, since);
    assert.equal(a.err.code, '57P01');
    assert.match(a.err.message, /API key agent-a was revoked/);
    assert.equal(b.err.code, '57P01');
    assert.match(b.err.message, /was revoked/);
    await direct.c.end().catch(() => undefined);
    await viaToken.c.end().catch(() => undefined);
  });
});
