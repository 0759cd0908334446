import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { REDACTED } from '../../policy/mask/styles.js';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia } from '../../testing/run.js';

const CARD = '4111 1111 1111 1111';
const SSN = (i: number) => `123-45-${String(i).padStart(4, '0')}`;
const NEW_SSN = '987-65-4321';
const EMAIL = 'secret.person@example.org';

function psql(port: number, key: string, database: string, sql: string) {
  return psqlVia({ port, password: key, database }, ['-c', sql]);
}

/** A gateway in front of a throwaway database with a users table, and alice's key. */
async function setup(config: (database: string) => Record<string, unknown>) {
  const db = await createThrowawayDb();
  const direct = new pg.Client({ connectionString: db.url });
  await direct.connect();
  await direct.query(`create table users (id int primary key, name text, email text, ssn text, card text);
    insert into users select i, 'User ' || i, 'user' || i || '@example.com',
      '123-45-' || lpad(i::text, 4, '0'), '${CARD}' from generate_series(1, 10) i`);
  await direct.end();
  const gw = await startGateway('sqlite', { config: config(db.name) });
  assert.ok(gw.proc.postgres);
  const created = await gw.cli(['keys', 'create', '--name', 'alice']);
  assert.equal(created.code, 0, created.stderr);
  const key = gw.credential(created.stdout.trim());
  return { db, gw, key, port: gw.proc.postgres.port };
}

/** Runs `f` on one connection through Warden and returns that session's id. */
async function inSession(
  gw: Gateway,
  connect: pg.ClientConfig,
  f: (c: pg.Client) => Promise<void>,
): Promise<string> {
  const before = await sessionIds(gw, String(connect.database));
  const c = new pg.Client(connect);
  await c.connect();
  try {
    await f(c);
  } finally {
    await c.end();
  }
  const ids = (await sessionIds(gw, String(connect.database))).filter((id) => !before.includes(id));
  assert.equal(ids.length, 1, 'one new session');
  return ids[0]!;
}

async function sessionIds(gw: Gateway, connection: string): Promise<string[]> {
  const res = await gw.api('GET', `/api/sessions?connection=${connection}&limit=500`);
  assert.equal(res.status, 200, res.text);
  return (res.body as { sessions: SessionView[] }).sessions.map((s) => s.id);
}

/** Polls the session's events until `count` are written (they are written off the hot path). */
async function eventsOf(gw: Gateway, id: string, count: number, token?: string): Promise<SessionEvent[]> {
  const deadline = Date.now() + 10_000;
  let events: SessionEvent[] = [];
  while (Date.now() < deadline) {
    const res = await gw.api('GET', `/api/sessions/${id}/events`, token ? { token } : {});
    assert.equal(res.status, 200, res.text);
    events = (res.body as { events: SessionEvent[] }).events;
    if (events.length >= count) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`expected ${count} events, got ${JSON.stringify(events, null, 2)}`);
}

/** Everything the store holds in session_events, as one string to search for secrets. */
async function storedEvents(gw: Gateway): Promise<string> {
  const store = gw.openStore();
  try {
    return JSON.stringify(await store.db.selectFrom('session_events').selectAll().execute());
  } finally {
    await store.close();
  }
}

describe('PostgreSQL gateway: every statement recorded, with masked parameters and result samples', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  const login = (database: string): pg.ClientConfig => ({
    host: '127.0.0.1',
    port,
    database,
    user: 'alice',
    password: key,
  });

  before(async () => {
    ({ db, gw, key, port } = await setup((name) => ({
      connections: [pgConnection(name, 'app-db'), pgConnection(name, 'scan-db')],
      policy: {
        rules: [
          {
            name: 'hide-ssn',
            match: { connections: ['app-db'] },
            effect: 'mask',
            mask: { columns: ['users.ssn'], style: 'redact' },
          },
          {
            name: 'find-pii',
            match: { connections: ['scan-db'] },
            effect: 'mask',
            mask: { detectors: ['card', 'email'], style: 'keep-last-4' },
          },
          {
            name: 'no-drop',
            when: { sql: { statements: ['drop'] } },
            effect: 'deny',
            message: 'Dropping objects needs a change request.',
          },
          {
            name: 'review-unbounded-deletes',
            when: { sql: { statements: ['delete'], where: 'absent' } },
            effect: 'review',
            // Not held: refused at once, and recorded with the review decision.
            review: { approvers: ['dba'], hold: false },
          },
        ],
      },
    })));
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('records simple and extended statements with text, decision, rows, duration and the rows the client saw', async () => {
    let seen: string[][] = [];
    const id = await inSession(gw, login('app-db'), async (c) => {
      const r = await c.query('select id, ssn, name from users where id <= 3 order by id');
      seen = r.rows.map((row: { id: number; ssn: string; name: string }) => [
        String(row.id),
        row.ssn,
        row.name,
      ]);
      await c.query({ text: 'select name from users where id = $1', values: [7] });
      await c.query({ text: 'update users set ssn = $1 where id = $2', values: [NEW_SSN, 9] });
    });
    const events = await eventsOf(gw, id, 3);
    assert.deepEqual(
      events.map((e) => [e.seq, e.decision, e.rows, e.error]),
      [
        [1, 'allow', 3, null],
        [2, 'allow', 1, null],
        [3, 'allow', 1, null],
      ],
    );
    assert.equal(events[0]!.text, 'select id, ssn, name from users where id <= 3 order by id');
    assert.deepEqual(events[0]!.rules, ['hide-ssn']);
    assert.deepEqual(seen, [
      ['1', REDACTED, 'User 1'],
      ['2', REDACTED, 'User 2'],
      ['3', REDACTED, 'User 3'],
    ]);
    assert.deepEqual(events[0]!.sample, seen);
    assert.deepEqual(events[1]!.sample, [['User 7']]);
    assert.ok(events.every((e) => e.duration_ms !== null && e.duration_ms >= 0));
    assert.ok(events[0]!.bytes > 0);
    assert.equal(events[0]!.params, null);
    // Under a column mask only parameters tied to a masked column are masked: the new SSN is
    // assigned to users.ssn; the ids compared with users.id are kept.
    assert.deepEqual(events[1]!.params, ['7']);
    assert.deepEqual(events[2]!.params, [REDACTED, '9']);
    const stored = await storedEvents(gw);
    for (const secret of [NEW_SSN, SSN(1), SSN(2), SSN(3)]) assert.ok(!stored.includes(secret), secret);
  });

  it('keeps the first 100 rows of a result by default, counts them all, and times the statement when it ran', async () => {
    // Warden's clock is the monotonic one from its start: a few seconds of slack for clock steps.
    const from = new Date(Date.now() - 5_000).toISOString();
    const id = await inSession(gw, login('app-db'), async (c) => {
      assert.equal((await c.query('select i from generate_series(1, 150) i')).rowCount, 150);
    });
    const to = new Date(Date.now() + 5_000).toISOString();
    const [e] = await eventsOf(gw, id, 1);
    assert.equal(e!.rows, 150);
    assert.deepEqual(
      e!.sample,
      Array.from({ length: 100 }, (_, i) => [String(i + 1)]),
    );
    assert.match(e!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(from <= e!.time && e!.time <= to, `${e!.time} between ${from} and ${to}`);
  });

  it('scans parameters and samples with the detectors of a mask rule, exactly as the client got them', async () => {
    let seen: Array<Array<string | null>> = [];
    const id = await inSession(gw, login('scan-db'), async (c) => {
      const r = await c.query({
        text: 'select $1::text as note, card, $2::int as n from users where id = $3',
        values: [`pay ${CARD} or mail ${EMAIL}`, 42, 5],
      });
      seen = r.rows.map((row: { note: string; card: string; n: number }) => [
        row.note,
        row.card,
        String(row.n),
      ]);
    });
    const [e] = await eventsOf(gw, id, 1);
    assert.equal(e!.decision, 'allow');
    assert.deepEqual(e!.rules, ['find-pii']);
    assert.equal(e!.params!.length, 3);
    assert.ok(!e!.params![0]!.includes(CARD) && !e!.params![0]!.includes(EMAIL), e!.params![0]!);
    assert.match(e!.params![0]!, /^pay .*1111 or mail .*\.org$/);
    assert.deepEqual(e!.params!.slice(1), ['42', '5']);
    assert.ok(!seen[0]![1]!.includes(CARD));
    assert.deepEqual(e!.sample, seen);
    const stored = await storedEvents(gw);
    assert.ok(!stored.includes(CARD) && !stored.includes(EMAIL));
  });

  it('records a denied statement with decision deny and no result, and a failed one with its SQLSTATE', async () => {
    const id = await inSession(gw, login('app-db'), async (c) => {
      await assert.rejects(c.query('drop table users'), /change request/);
      await assert.rejects(c.query('select * from no_such_table'), /does not exist/);
      await assert.rejects(c.query({ text: 'delete from users', values: [] }), /approval/);
      await c.query('select 1');
    });
    const events = await eventsOf(gw, id, 4);
    assert.deepEqual(
      events.map((e) => [e.text, e.decision, e.rows, e.sample]),
      [
        ['drop table users', 'deny', null, null],
        ['select * from no_such_table', 'allow', null, null],
        ['delete from users', 'review', null, null],
        ['select 1', 'allow', 1, [['1']]],
      ],
    );
    assert.equal(events.length, 4);
    assert.ok(events[0]!.rules.includes('no-drop'), events[0]!.rules.join());
    assert.match(events[0]!.error ?? '', /^42501: Dropping objects needs a change request/);
    assert.match(events[1]!.error ?? '', /^42P01: /);
  });

  it('withholds the text of an error that could quote a masked value from the client and the recording, keeping its SQLSTATE', async () => {
    // Each puts users.ssn of row 2 in the server's error: its message, a doubled quote, an XML DETAIL.
    const failing: Array<[pg.QueryConfig, string]> = [
      [{ text: 'select ssn::int from users where id = 2' }, '22P02'],
      [{ text: 'select id from users where ssn::date > now() and id = $1', values: [2] }, '22008'],
      [{ text: "select format('%I', ssn)::int from users where id = 2" }, '22P02'],
      [{ text: 'select xmlparse(document ssn) from users where id = 2' }, '2200M'],
    ];
    const seen: pg.DatabaseError[] = [];
    const id = await inSession(gw, login('app-db'), async (c) => {
      for (const [q] of failing)
        seen.push(
          await c.query(q).then(
            () => assert.fail(q.text),
            (e: pg.DatabaseError) => e,
          ),
        );
      // A statement that reads no masked table keeps the server's words, and so does an error
      // raised while a statement is analysed, before any row is read: it points into the text.
      await assert.rejects(c.query('select 1/0'), /division by zero/);
      await assert.rejects(c.query('select sssn from users where id = 2'), (e: pg.DatabaseError) => {
        assert.equal(e.code, '42703');
        assert.equal(e.message, 'column "sssn" does not exist');
        assert.equal(e.position, '8');
        return true;
      });
    });
    assert.deepEqual(
      seen.map((e) => e.code),
      failing.map(([, code]) => code),
    );
    for (const e of seen) {
      assert.match(e.message, /^error message withheld by rule "hide-ssn" \(warden\)/);
      assert.ok(!JSON.stringify(e).includes(SSN(2)), JSON.stringify(e));
    }
    const events = await eventsOf(gw, id, failing.length + 2);
    assert.deepEqual(
      events.map((e) => e.error?.split(' (warden)')[0]),
      [
        ...failing.map(([, code]) => `${code}: error message withheld by rule "hide-ssn"`),
        '22012: division by zero',
        // The client got the server's words; the recording redacts quoted text under a column mask.
        '42703: column "[masked]" does not exist',
      ],
    );
    assert.ok(!(await storedEvents(gw)).includes(SSN(2)));
  });

  it('refuses statements that would carry a masked column past result masking, and no value reaches the client', async () => {
    const notices: string[] = [];
    await inSession(gw, login('app-db'), async (c) => {
      c.on('notice', (n) => notices.push(n.message ?? ''));
      for (const sql of [
        "select table_to_xml('users', true, false, '')",
        "do $$ declare s text; begin execute 'select ssn from users where id = 2' into s; raise notice '%', s; end $$",
        'create function leak() returns text language plpgsql as $$ begin return (select ssn from users where id = 2); end $$',
        "select pg_advisory_xact_lock(('x' || encode(convert_to(substr(ssn, 1, 7), 'UTF8'), 'hex'))::bit(56)::bigint) from users",
        "select encode(pg_read_binary_file(pg_relation_filepath('users')), 'escape')",
        'alter table users rename to people',
        'create rule copy_ssn as on update to users do also insert into audit values (new.ssn)',
        'create operator ### (leftarg = text, rightarg = text, function = pg_notify)',
      ]) {
        const err = await c.query(sql).then(
          () => assert.fail(sql),
          (e: pg.DatabaseError) => e,
        );
        assert.equal(err.code, '42501', `${sql}: ${err.message}`);
        assert.match(err.message, /rule "hide-ssn"/, sql);
      }
    });
    assert.deepEqual(notices, []);
  });

  it('decodes binary-format result values to hex in the sample, masked values as the client got them', async () => {
    const id = await inSession(gw, { ...login('app-db'), binary: true } as pg.ClientConfig, async (c) => {
      const r = await c.query({ text: 'select id, ssn from users where id = $1', values: [4] });
      assert.deepEqual(r.rows, [{ id: 4, ssn: REDACTED }]);
    });
    const [e] = await eventsOf(gw, id, 1);
    assert.deepEqual(e!.sample, [['\\x00000004', REDACTED]]);
  });

  it('records psql statements, and `warden sessions show` prints them after the session', async () => {
    const before = await sessionIds(gw, 'app-db');
    const res = await psql(port, key, 'app-db', 'select count(*) from users where id < 5');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '4\n');
    const [id] = (await sessionIds(gw, 'app-db')).filter((s) => !before.includes(s));
    const [e] = await eventsOf(gw, id!, 1);
    assert.deepEqual(
      [e!.text, e!.decision, e!.rows, e!.sample],
      ['select count(*) from users where id < 5', 'allow', 1, [['4']]],
    );
    const shown = await gw.cli(['sessions', 'show', id!]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`"id": "${id}"`));
    assert.match(shown.stdout, /DECISION[\s\S]*allow\s+1\s+select count\(\*\) from users where id < 5/);
    const json = await gw.cli(['sessions', 'show', id!, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as SessionView & { events: SessionEvent[] };
    assert.deepEqual([parsed.id, parsed.events.map((x) => x.text)], [id, [e!.text]]);
  });

  it("shows a session's events to its caller and auditors, and to no one else", async () => {
    const id = await inSession(gw, login('app-db'), async (c) => {
      await c.query('select 2');
    });
    assert.equal((await eventsOf(gw, id, 1, key)).length, 1);
    const bob = await gw.cli(['keys', 'create', '--name', 'bob']);
    assert.equal(bob.code, 0, bob.stderr);
    const res = await gw.api('GET', `/api/sessions/${id}/events`, {
      token: gw.credential(bob.stdout.trim()),
    });
    assert.equal(res.status, 404, res.text);
  });
});

describe('PostgreSQL gateway: recording.result_rows caps the sample', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;

  before(async () => {
    ({ db, gw, key, port } = await setup((name) => ({
      connections: [pgConnection(name, 'app-db')],
      recording: { result_rows: 2 },
    })));
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  /** Runs `sql` in a session of its own, checks the rows the client got, returns the recorded event. */
  const recorded = async (sql: string, rowCount: number) => {
    const id = await inSession(
      gw,
      { host: '127.0.0.1', port, database: 'app-db', user: 'alice', password: key },
      async (c) => assert.equal((await c.query(sql)).rowCount, rowCount),
    );
    const [e] = await eventsOf(gw, id, 1);
    return e!;
  };

  it('keeps only the first 2 rows of a 6-row result, and counts all 6', async () => {
    const e = await recorded('select id from users where id <= 6 order by id', 6);
    assert.deepEqual([e.rows, e.sample], [6, [['1'], ['2']]]);
  });

  it('counts every row and byte of a 100,000-row result whose rows pass in runs', async () => {
    const e = await recorded('select i from generate_series(1, 100000) i', 100_000);
    // Each DataRow: type, length, field count and the value's length (11 bytes), then its digits:
    // 9 of one digit, 90 of two, ... 90,000 of five and one of six.
    const digits = 9 + 90 * 2 + 900 * 3 + 9_000 * 4 + 90_000 * 5 + 6;
    assert.deepEqual([e.rows, e.bytes, e.sample], [100_000, 100_000 * 11 + digits, [['1'], ['2']]]);
  });
});
