import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { rawSession } from '../../testing/pg-wire.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia } from '../../testing/run.js';
import { Back, Front, int16, int32, type Message, message, readNoticeFields } from './codec.js';

const STOPPED = 'statement stopped after 300ms by rule "limit-results" (warden)';
const STOPPED_SLEEP = 'statement stopped after 300ms by rule "limit-sleeps" (warden)';
/** Generous: the point is that the 5 s sleep did not run to its end. */
const WELL_BEFORE_THE_SLEEP_ENDS = 4_000;

/** The rejection a stopped statement gets: PostgreSQL's query_canceled, told as the rule's doing. */
function stoppedByRule(err: pg.DatabaseError): boolean {
  assert.equal(err.code, '57014');
  assert.equal(err.message, STOPPED);
  return true;
}

/** Parse, Bind, Execute and Sync of `text` on the unnamed statement and portal. */
function extended(text: string): Buffer[] {
  return [
    message(Front.Parse, '', text, int16(0)),
    message(Front.Bind, '', '', int16(0), int16(0), int16(0)),
    message(Front.Execute, '', int32(0)),
    message(Front.Sync),
  ];
}

/** Replies up to the `count`th ReadyForQuery. */
async function untilReady(until: (type: number) => Promise<Message[]>, count: number): Promise<Message[]> {
  const replies: Message[] = [];
  for (let i = 0; i < count; i++) replies.push(...(await until(Back.ReadyForQuery)));
  return replies;
}

/** Each reply's type letter; an error's with its SQLSTATE and message. */
function summary(replies: Message[]): string[] {
  return replies.map((m) => {
    const type = String.fromCharCode(m.type);
    if (m.type !== Back.ErrorResponse) return type;
    const f = readNoticeFields(m.body);
    return `${type} ${f.get('C')} ${f.get('M')}`;
  });
}

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const start = performance.now();
  const result = await f();
  return { ms: performance.now() - start, result };
}

describe('PostgreSQL gateway: limit.duration stops a statement on the target, like statement_timeout', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  let direct: pg.Client;

  const client = async (database = 'slow-db') => {
    const c = new pg.Client({ host: '127.0.0.1', port, database, user: 'alice', password: key });
    await c.connect();
    return c;
  };
  const withClient = async <T>(database: string, f: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = await client(database);
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };
  /** Backends on the target still running a statement that starts with `prefix`. */
  const stillRunning = async (prefix: string): Promise<number> => {
    const r = await direct.query(
      `select count(*)::int as n from pg_stat_activity
        where datname = $1 and state = 'active' and starts_with(query, $2)`,
      [db.name, prefix],
    );
    return r.rows[0].n;
  };

  before(async () => {
    db = await createThrowawayDb();
    direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    gw = await startGateway('sqlite', {
      config: {
        connections: [
          pgConnection(db.name, 'slow-db'),
          pgConnection(db.name, 'free-db'),
          pgConnection(db.name, 'mixed-db'),
        ],
        policy: {
          rules: [
            {
              name: 'limit-results',
              match: { connections: ['slow-db'] },
              effect: 'limit',
              limit: { rows: 1000, duration: '300ms' },
            },
            {
              name: 'limit-sleeps',
              match: { connections: ['mixed-db'] },
              when: { sql: { functions: ['pg_sleep'] } },
              effect: 'limit',
              limit: { duration: '300ms' },
            },
          ],
        },
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    const created = await gw.cli(['keys', 'create', '--name', 'alice']);
    assert.equal(created.code, 0, created.stderr);
    key = gw.credential(created.stdout.trim());
  });
  after(async () => {
    await direct?.end();
    await gw?.close();
    await db?.drop();
  });

  it('stops a statement past its limit with 57014 naming the rule, on the target too, and the session goes on', async () => {
    await withClient('slow-db', async (c) => {
      const { ms } = await timed(() => assert.rejects(c.query('select pg_sleep(5)'), stoppedByRule));
      assert.ok(ms < WELL_BEFORE_THE_SLEEP_ENDS, `stopped after ${ms} ms`);
      assert.equal(await stillRunning('select pg_sleep(5)'), 0, 'the target no longer runs the sleep');
      assert.deepEqual((await c.query('select 1 as n')).rows, [{ n: 1 }]);
      assert.equal((await c.query('select pg_sleep(0.05)')).rowCount, 1, 'a statement within its limit runs');
    });
  });

  it('stops an extended-protocol statement (with parameters) the same way', async () => {
    await withClient('slow-db', async (c) => {
      const { ms } = await timed(() =>
        assert.rejects(c.query({ text: 'select pg_sleep($1)', values: [5] }), stoppedByRule),
      );
      assert.ok(ms < WELL_BEFORE_THE_SLEEP_ENDS, `stopped after ${ms} ms`);
      assert.deepEqual((await c.query({ text: 'select $1::int as n', values: [2] })).rows, [{ n: 2 }]);
      assert.equal((await c.query({ text: 'select pg_sleep($1)', values: [0.05] })).rowCount, 1);
    });
  });

  it('aborts a transaction block as PostgreSQL would, and ROLLBACK restores the session', async () => {
    await withClient('slow-db', async (c) => {
      await c.query('begin');
      await assert.rejects(c.query('select pg_sleep(5)'), stoppedByRule);
      await assert.rejects(c.query('select 1'), (err: pg.DatabaseError) => err.code === '25P02');
      await c.query('rollback');
      assert.deepEqual((await c.query('select 3 as n')).rows, [{ n: 3 }]);
    });
  });

  it('times a multi-statement query as a whole, and tells psql which rule stopped it', async () => {
    const psql = (sql: string) => psqlVia({ port, password: key, database: 'slow-db' }, ['-c', sql]);
    const quick = await psql('select pg_sleep(0.05); select pg_sleep(0.05); select 7');
    assert.equal(quick.code, 0, quick.stderr);
    assert.match(quick.stdout, /^7$/m);
    for (const sql of ['select pg_sleep(5)', 'select pg_sleep(0.2); select pg_sleep(0.2); select 8']) {
      const slow = await psql(sql);
      assert.notEqual(slow.code, 0, sql);
      assert.match(slow.stderr, /ERROR: {2}statement stopped after 300ms by rule "limit-results" \(warden\)/);
      assert.doesNotMatch(slow.stdout, /8/);
    }
  });

  it('lets statements pipelined behind a stopped one run, in simple and extended protocol', async () => {
    const { socket, until, send } = await rawSession(port, 'mixed-db', key);
    try {
      send(Buffer.concat([message(Front.Query, 'select pg_sleep(5)'), message(Front.Query, 'select 7')]));
      assert.deepEqual(summary(await untilReady(until, 2)), [
        'T',
        `E 57014 ${STOPPED_SLEEP}`,
        'Z',
        'T',
        'D',
        'C',
        'Z',
      ]);
      send(Buffer.concat([...extended('select pg_sleep(5)'), ...extended('select 8')]));
      assert.deepEqual(summary(await untilReady(until, 2)), [
        '1',
        '2',
        `E 57014 ${STOPPED_SLEEP}`,
        'Z',
        '1',
        '2',
        'D',
        'C',
        'Z',
      ]);
    } finally {
      socket.end();
    }
  });

  it('starts the clock of a limited statement queued behind an unlimited one when it starts to run', async () => {
    const { socket, until, send } = await rawSession(port, 'mixed-db', key);
    try {
      // 600 ms unlimited, then a limited 100 ms: timed from when it was sent, the second would be
      // over its 300 ms before it ran, and a cancel then would stop the first.
      send(
        Buffer.concat([
          message(Front.Query, "select pg_sleep_for('600 ms')"),
          message(Front.Query, 'select pg_sleep(0.1)'),
        ]),
      );
      assert.deepEqual(summary(await untilReady(until, 2)), ['T', 'D', 'C', 'Z', 'T', 'D', 'C', 'Z']);
    } finally {
      socket.end();
    }
  });

  it('leaves a connection whose rules set no duration alone', async () => {
    await withClient('free-db', async (c) => {
      assert.equal((await c.query('select pg_sleep(0.6)')).rowCount, 1);
    });
  });

  it('records the error the client got in the statement recording, and audits command.limited', async () => {
    const before = await sessionIds();
    await withClient('slow-db', async (c) => {
      await assert.rejects(c.query('select pg_sleep(4)'), stoppedByRule);
      await c.query('select 4');
    });
    const id = (await sessionIds()).find((s) => !before.includes(s));
    assert.ok(id, 'the new session');
    const events = await eventsOf(id, 2);
    const stopped = events.find((e) => e.text === 'select pg_sleep(4)');
    assert.ok(stopped, JSON.stringify(events));
    assert.equal(stopped.error, `57014: ${STOPPED}`);
    assert.deepEqual(stopped.rules, ['limit-results']);
    assert.equal(events.find((e) => e.text === 'select 4')?.error, null);
    const audit = await gw.waitForAudit(
      'command.limited',
      (r) => (r.payload as { session?: string }).session === id,
    );
    assert.equal(audit.outcome, 'denied');
    assert.deepEqual(
      [(audit.payload as { decided_by: string }).decided_by, (audit.payload as { message: string }).message],
      ['limit-results', STOPPED],
    );
  });

  async function sessionIds(): Promise<string[]> {
    const res = await gw.api('GET', '/api/sessions?connection=slow-db&limit=500');
    assert.equal(res.status, 200, res.text);
    return (res.body as { sessions: SessionView[] }).sessions.map((s) => s.id);
  }

  /** Polls the session's events until `count` are written (they are written off the hot path). */
  async function eventsOf(id: string, count: number): Promise<SessionEvent[]> {
    const deadline = Date.now() + 10_000;
    let events: SessionEvent[] = [];
    while (Date.now() < deadline) {
      const res = await gw.api('GET', `/api/sessions/${id}/events`);
      assert.equal(res.status, 200, res.text);
      events = (res.body as { events: SessionEvent[] }).events;
      if (events.length >= count) return events;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`expected ${count} events, got ${JSON.stringify(events, null, 2)}`);
  }
});
