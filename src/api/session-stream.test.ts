import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ServerEvent } from '../cli/server-events.js';
import { REDACTED } from '../policy/mask/styles.js';
import type { SessionEvent } from '../store/session-events.js';
import type { SessionView } from '../store/sessions.js';
import { DIALECTS } from '../testing/dialects.js';
import { type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { openPgSession } from '../testing/pg-session.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type EventStreamClient, openEventStream } from '../testing/server-events.js';

const NEW_SSN = '078-05-1120';

const dataOf = <T>(e: ServerEvent): T => JSON.parse(e.data) as T;
const isStatement = (text: string) => (e: ServerEvent) =>
  e.event === 'statement' && dataOf<SessionEvent>(e).text === text;

for (const dialect of DIALECTS) {
  describe(`a session live as server-sent events (${dialect})`, () => {
    let target: ThrowawayDb;
    let gw: Gateway;
    let keys: Record<'alice' | 'eve' | 'sec', string>;
    const streams: EventStreamClient[] = [];
    const stream = async (id: string, key: string) => {
      const s = await openEventStream(`${gw.url}/api/sessions/${id}/stream`, key);
      streams.push(s);
      return s;
    };
    /** Waits until the session's statement `text` is in the store (the recorder writes a moment later). */
    const recorded = async (id: string, text: string) => {
      for (;;) {
        const res = await gw.api('GET', `/api/sessions/${id}/events`, { token: keys.alice });
        if ((res.body as { events: SessionEvent[] }).events.some((e) => e.text === text)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const openSession = () => {
      assert.ok(gw.proc.postgres);
      return openPgSession(gw.proc.postgres.port, keys.alice);
    };

    before(async () => {
      target = await createThrowawayDb();
      const setup = new pg.Client({ connectionString: target.url });
      await setup.connect();
      await setup.query('create table users (id int primary key, ssn text, name text)');
      await setup.query(
        "insert into users select i, '123-45-' || lpad(i::text, 4, '0'), 'User ' || i from generate_series(1, 3) i",
      );
      await setup.end();
      gw = await startGateway(dialect, {
        config: {
          identity: { roles: { auditor: ['security'] } },
          connections: [pgConnection(target.name, 'shop')],
          policy: {
            rules: [{ name: 'hide-ssn', effect: 'mask', mask: { columns: ['users.ssn'], style: 'redact' } }],
          },
        },
      });
      keys = await mintKeys(gw, { alice: 'dev', eve: 'dev', sec: 'security' });
    });
    after(async () => {
      for (const s of streams) s.close();
      await gw?.close();
      await target?.drop();
    });

    it('sends a snapshot, then each new statement masked as recorded, then the end, and closes', async () => {
      const s = await openSession();
      let closed = false;
      try {
        await s.c.query('select id, ssn, name from users where id = 1');
        await recorded(s.id, 'select id, ssn, name from users where id = 1');
        const live = await stream(s.id, keys.alice);
        assert.equal(live.response.status, 200);
        assert.match(live.response.headers.get('content-type') ?? '', /^text\/event-stream/);
        const snapshot = dataOf<{ session: SessionView; events: SessionEvent[] }>(
          await live.waitFor((e) => e.event === 'snapshot'),
        );
        assert.equal(snapshot.session.id, s.id);
        assert.equal(snapshot.session.subject, 'alice');
        assert.equal(snapshot.session.status, 'active');
        // The snapshot holds what GET /events answers: here the lookup of the session id and the select.
        const listed = await gw.api('GET', `/api/sessions/${s.id}/events`, { token: keys.alice });
        assert.deepEqual(snapshot.events, (listed.body as { events: SessionEvent[] }).events);
        const first = snapshot.events.find((e) => e.text === 'select id, ssn, name from users where id = 1');
        assert.deepEqual(first?.sample, [['1', REDACTED, 'User 1']]);

        await s.c.query({ text: 'update users set ssn = $1 where id = $2', values: [NEW_SSN, 2] });
        const update = dataOf<SessionEvent>(
          await live.waitFor(isStatement('update users set ssn = $1 where id = $2')),
        );
        assert.deepEqual(update.params, [REDACTED, '2']);
        assert.equal(update.rows, 1);
        assert.equal(update.session_id, s.id);
        assert.ok(update.seq > Math.max(...snapshot.events.map((e) => e.seq)));
        await s.c.query('select ssn from users where id = 3');
        const select = await live.waitFor(isStatement('select ssn from users where id = 3'));
        assert.deepEqual(dataOf<SessionEvent>(select).sample, [[REDACTED]]);
        assert.equal(select.id, String(dataOf<SessionEvent>(select).seq));

        await s.c.end();
        closed = true;
        const ended = await live.waitFor(
          (e) => e.event === 'session' && dataOf<SessionView>(e).status !== 'active',
        );
        assert.equal(dataOf<SessionView>(ended).status, 'closed');
        assert.ok(dataOf<SessionView>(ended).ended_at);
        // The server closed it: no event follows `end`, and every statement came once, in order.
        assert.deepEqual(await live.ended(), ['snapshot', 'statement', 'statement', 'session', 'end']);
        assert.ok(!JSON.stringify(live.events).includes(NEW_SSN));
      } finally {
        if (!closed) await s.c.end();
      }
    });

    it("answers another user's session like a missing one, and shows it to an auditor", async () => {
      const s = await openSession();
      try {
        await s.c.query('select 1');
        // The recorder writes off the data path: wait until the statement is stored, so the
        // snapshot below must hold it.
        await recorded(s.id, 'select 1');
        const eve = await fetch(`${gw.url}/api/sessions/${s.id}/stream`, {
          headers: { authorization: `Bearer ${keys.eve}` },
        });
        const missing = await fetch(`${gw.url}/api/sessions/no-such-session/stream`, {
          headers: { authorization: `Bearer ${keys.eve}` },
        });
        assert.deepEqual([eve.status, missing.status], [404, 404]);
        const [a, b] = [(await eve.json()) as unknown, (await missing.json()) as unknown];
        assert.deepEqual(
          JSON.stringify(a).replace(s.id, 'ID'),
          JSON.stringify(b).replace('no-such-session', 'ID'),
        );

        const sec = await stream(s.id, keys.sec);
        assert.equal(sec.response.status, 200);
        const snapshot = dataOf<{ session: SessionView; events: SessionEvent[] }>(
          await sec.waitFor((e) => e.event === 'snapshot'),
        );
        assert.equal(snapshot.session.subject, 'alice');
        assert.ok(snapshot.events.some((e) => e.text === 'select 1'));
      } finally {
        await s.c.end();
      }
    });

    it('sends only the snapshot and the end for a session that had already ended', async () => {
      const s = await openSession();
      await s.c.query('select 2');
      await s.c.end();
      await recorded(s.id, 'select 2');
      for (;;) {
        const res = await gw.api('GET', `/api/sessions/${s.id}`, { token: keys.alice });
        if ((res.body as SessionView).status !== 'active') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const live = await stream(s.id, keys.alice);
      assert.deepEqual(await live.ended(), ['snapshot', 'end']);
      const snapshot = dataOf<{ session: SessionView; events: SessionEvent[] }>(live.events[0]!);
      assert.equal(snapshot.session.status, 'closed');
      assert.ok(snapshot.events.some((e) => e.text === 'select 2'));
    });

    it('sends a session larger than one 256 KiB step in steps: every statement once, in order', async () => {
      const s = await openSession();
      // 40 statements of about 10 KB each: about 400 KB, over one step of the stream.
      const texts = Array.from({ length: 40 }, (_, i) => `select ${i} as n, '${'x'.repeat(10_000)}' as pad`);
      try {
        for (const t of texts) await s.c.query(t);
        await recorded(s.id, texts.at(-1)!);
      } finally {
        await s.c.end();
      }
      const live = await stream(s.id, keys.alice);
      await live.waitFor((e) => e.event === 'end', 30_000);
      const snapshot = dataOf<{ events: SessionEvent[] }>(live.events[0]!).events;
      const later = live.events.filter((e) => e.event === 'statement').map((e) => dataOf<SessionEvent>(e));
      assert.ok(snapshot.length < texts.length, `the snapshot held ${snapshot.length} of ${texts.length}`);
      assert.ok(later.length > 0);
      const seen = [...snapshot, ...later].filter((e) => e.text.endsWith('as pad'));
      assert.deepEqual(
        seen.map((e) => e.text),
        texts,
      );
      const seqs = [...snapshot, ...later].map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      assert.equal(new Set(seqs).size, seqs.length);
    });
  });
}
