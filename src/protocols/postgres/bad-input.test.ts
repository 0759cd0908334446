import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, gatewayToThrowawayDb } from '../../testing/gateway.js';
import { rawSession } from '../../testing/pg-wire.js';
import { Back, Front, int16, int32, message, readNoticeFields } from './codec.js';

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A case that waits for bytes that never come fails here instead of holding up the suite. */
const LIMIT = { timeout: 30_000 };

describe('PostgreSQL gateway: malformed messages after login', () => {
  let gw: Gateway;
  let port: number;
  let close: () => Promise<void> = async () => undefined;

  before(async () => {
    ({ gw, port, close } = await gatewayToThrowawayDb({ max_message: 1024 * 1024 }));
  });
  after(() => close());

  const login = () => rawSession(port, 'app-db', gw.adminKey);
  const fatalOf = (replies: Array<{ type: number; body: Buffer }>) => {
    const e = replies.find((m) => m.type === Back.ErrorResponse);
    return e ? readNoticeFields(e.body) : undefined;
  };

  it('answers a Query without its terminating NUL with FATAL 08P01 and closes the session', async () => {
    const s = await login();
    const body = Buffer.from('select 1');
    const head = Buffer.alloc(5);
    head[0] = Front.Query;
    head.writeInt32BE(4 + body.length, 1);
    s.send(Buffer.concat([head, body]));
    const fatal = fatalOf(await s.closed);
    assert.deepEqual([fatal?.get('S'), fatal?.get('C')], ['FATAL', '08P01']);
  });

  it('refuses a message longer than max_message instead of buffering it', async () => {
    const s = await login();
    const head = Buffer.alloc(5);
    head[0] = Front.Query;
    head.writeInt32BE(1024 ** 3, 1);
    s.send(head);
    const fatal = fatalOf(await s.closed);
    assert.match(fatal?.get('M') ?? '', /invalid message length 1073741824/);
  });

  it(
    'takes a Query just under the configured max_message, refuses one over it, and records why the session ended',
    LIMIT,
    async () => {
      const s = await login();
      const under = `select length('${'x'.repeat(1000 * 1000)}') as n`;
      s.send(message(Front.Query, under));
      const underReplies = await s.until(Back.ReadyForQuery);
      assert.equal(fatalOf(underReplies), undefined);
      assert.ok(underReplies.some((m) => m.type === Back.DataRow));
      // 2 MiB: over this listener's 1 MiB, far under the 64 MiB default.
      s.send(message(Front.Query, `select '${'y'.repeat(2 * 1024 * 1024)}'`));
      const answered = await s.until(Back.ReadyForQuery).then(
        () => true,
        () => false,
      );
      assert.equal(answered, false, 'a Query over max_message was answered');
      const fatal = fatalOf(await s.closed);
      assert.deepEqual([fatal?.get('S'), fatal?.get('C')], ['FATAL', '08P01']);
      assert.match(fatal?.get('M') ?? '', /invalid message length 2097166/);
      await gw.waitForAudit('session.closed', (r) => {
        const p = r.payload as { reason?: string; detail?: string };
        return p.reason === 'error' && /invalid message length 2097166/.test(p.detail ?? '');
      });
    },
  );

  it('tells the client when the target’s reply is over max_message, instead of closing without a word', async () => {
    const s = await login();
    // A 2 MiB row: over this listener's 1 MiB; PostgreSQL itself sends it.
    s.send(message(Front.Query, "select repeat('z', 2 * 1024 * 1024) as big"));
    const fatal = fatalOf(await s.closed);
    assert.deepEqual([fatal?.get('S'), fatal?.get('C')], ['FATAL', '08P01']);
    assert.match(
      fatal?.get('M') ?? '',
      /^the database server's reply cannot be relayed: invalid message length \d+ for message type "D" \(warden\)$/,
    );
  });

  it(
    'answers a negative or too short message length, and an unknown message type, with FATAL 08P01',
    LIMIT,
    async () => {
      for (const length of [-1, 0, 3]) {
        const s = await login();
        const head = Buffer.alloc(5);
        head[0] = Front.Query;
        head.writeInt32BE(length, 1);
        s.send(head);
        const fatal = fatalOf(await s.closed);
        assert.deepEqual([fatal?.get('S'), fatal?.get('C')], ['FATAL', '08P01'], `length ${length}`);
        assert.match(fatal?.get('M') ?? '', /invalid message length/);
      }
      const s = await login();
      s.send(message(0x7a, Buffer.from('zz')));
      const fatal = fatalOf(await s.closed);
      assert.deepEqual([fatal?.get('S'), fatal?.get('C')], ['FATAL', '08P01']);
      assert.match(fatal?.get('M') ?? '', /invalid frontend message type 122/);
    },
  );

  it('passes a Bind with 10,000 parameters to the target, which answers it; the session stays usable', async () => {
    const s = await login();
    s.send(message(Front.Parse, 'p', 'select $1::int', int16(1), int32(23)));
    const params = Array.from({ length: 10_000 }, () => [int32(1), Buffer.from('7')]).flat();
    s.send(message(Front.Bind, '', 'p', int16(0), int16(10_000), ...params, int16(0)));
    s.send(message(Front.Sync));
    const replies = await s.until(Back.ReadyForQuery);
    assert.match(fatalOf(replies)?.get('M') ?? '', /bind message supplies 10000 parameters/);
    s.send(message(Front.Query, 'select 8'));
    assert.ok((await s.until(Back.ReadyForQuery)).some((m) => m.type === Back.DataRow));
    s.socket.end();
  });

  it('survives 60 sessions of random messages, and serves a normal client afterwards', async () => {
    const rnd = random(20261122);
    const types = [
      Front.Query,
      Front.Parse,
      Front.Bind,
      Front.Describe,
      Front.Execute,
      Front.Close,
      0x7a,
      0x00,
    ];
    for (let i = 0; i < 60; i++) {
      const s = await login();
      const chunks: Buffer[] = [];
      for (let j = 0; j < 1 + Math.floor(rnd() * 4); j++) {
        const body = Buffer.from(
          Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)),
        );
        const lie = rnd() < 0.2 ? Math.floor(rnd() * 20) - 4 : 0;
        const head = Buffer.alloc(5);
        head[0] = types[Math.floor(rnd() * types.length)] ?? 0;
        head.writeInt32BE(4 + body.length + lie, 1);
        chunks.push(head, body);
      }
      s.send(Buffer.concat(chunks));
      s.send(message(Front.Sync));
      // A lying length may leave a message unfinished, which a server rightly waits for; the
      // client then hangs up, and the gateway must close both sides rather than leak them.
      s.socket.end();
      await s.closed;
    }
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      database: 'app-db',
      user: 'x',
      password: gw.adminKey,
    });
    await c.connect();
    try {
      assert.equal((await c.query('select 2 as two')).rows[0].two, 2);
    } finally {
      await c.end();
    }
  });
});
