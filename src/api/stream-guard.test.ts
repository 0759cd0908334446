import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { openPgSession } from '../testing/pg-session.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type EventStreamClient, openEventStream } from '../testing/server-events.js';
import type { ApiError } from './errors.js';
import { StreamSeats } from './stream-guard.js';

describe('stream seats: how many live streams a caller and a gateway hold', () => {
  it('refuses a caller over its own bound with 429, others still get theirs, and a seat comes back once', () => {
    const seats = new StreamSeats({ perSubject: 2, total: 3 });
    const a1 = seats.take('alice');
    seats.take('alice');
    assert.throws(
      () => seats.take('alice'),
      (e: ApiError) => e.status === 429 && /alice already holds 2 live streams/.test(e.message),
    );
    seats.take('bob');
    assert.throws(
      () => seats.take('carol'),
      (e: ApiError) => e.status === 429 && /its limit/.test(e.message),
    );
    a1();
    a1(); // a second release of the same seat gives nothing back twice
    assert.equal(seats.open, 2);
    seats.take('carol');
    assert.throws(
      () => seats.take('dave'),
      (e: ApiError) => e.status === 429,
    );
  });
});

describe('live streams end with the credential that opened them', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let keys: Record<'alice', string>;
  let sessionId: string;
  let client: { end(): Promise<void> } | undefined;
  const streams: EventStreamClient[] = [];
  const token = async (ttl: string) => {
    const res = await gw.api('POST', '/api/tokens', { token: keys.alice, body: { ttl } });
    assert.equal(res.status, 201, res.text);
    return res.body as { token: string; jti: string };
  };
  const open = async (path: string, bearer: string) => {
    const s = await openEventStream(`${gw.url}${path}`, gw.credential(bearer));
    streams.push(s);
    return s;
  };
  /** Resolves when the server closes the stream; fails if it is still open after `ms`. */
  const closedWithin = (s: EventStreamClient, ms: number) =>
    assert.rejects(
      s.waitFor(() => false, ms),
      /stream ended/,
    );

  before(async () => {
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', { config: { connections: [pgConnection(db.name, 'shop')] } });
    keys = await mintKeys(gw, { alice: 'dev' });
    assert.ok(gw.proc.postgres);
    const pg = await openPgSession(gw.proc.postgres.port, keys.alice, { database: 'shop' });
    sessionId = pg.id;
    client = pg.c;
  });
  after(async () => {
    for (const s of streams) s.close();
    await client?.end().catch(() => undefined);
    await gw?.close();
    await db?.drop();
  });

  it('closes a session stream and a reviews stream when their token is revoked or expires', async () => {
    const revoked = await token('1h');
    const expiring = await token('3s');
    const byRevoked = await open(`/api/sessions/${sessionId}/stream`, revoked.token);
    const reviewsByRevoked = await open('/api/reviews/stream', revoked.token);
    const byExpiring = await open(`/api/sessions/${sessionId}/stream`, expiring.token);
    for (const s of [byRevoked, byExpiring]) await s.waitFor((e) => e.event === 'snapshot');
    await reviewsByRevoked.waitFor((e) => e.event === 'snapshot');
    const res = await gw.api('DELETE', `/api/tokens/${revoked.jti}`, { token: keys.alice });
    assert.equal(res.status, 200, res.text);
    // Re-checked every 10 s; the expiring one ends at its expiry. Bounds, not timings.
    await Promise.all([closedWithin(byRevoked, 20_000), closedWithin(reviewsByRevoked, 20_000)]);
    await closedWithin(byExpiring, 20_000);
    // None of them said `end`: that would tell the console the session is over.
    for (const s of [byRevoked, byExpiring]) assert.ok(!s.events.some((e) => e.event === 'end'));
    // Reconnecting says why.
    const again = await fetch(`${gw.url}/api/sessions/${sessionId}/stream`, {
      headers: { authorization: `Bearer ${revoked.token}` },
    });
    assert.equal(again.status, 401);
  });

  it('answers 429 to a caller with 20 streams open, and serves them again once one closes', async () => {
    const mine: EventStreamClient[] = [];
    for (let i = 0; i < 20; i++) mine.push(await open('/api/reviews/stream', keys.alice));
    const refused = await fetch(`${gw.url}/api/reviews/stream`, {
      headers: { authorization: `Bearer ${keys.alice}` },
    });
    assert.equal(refused.status, 429);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'too_many_streams');
    mine[0]?.close();
    let reopened: Response | undefined;
    for (let i = 0; i < 50 && reopened?.status !== 200; i++) {
      await reopened?.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
      reopened = await fetch(`${gw.url}/api/reviews/stream`, {
        headers: { authorization: `Bearer ${keys.alice}` },
      });
    }
    assert.equal(reopened?.status, 200);
    await reopened?.body?.cancel();
    for (const s of mine) s.close();
  });
});
