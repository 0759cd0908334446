import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { keepLast, REDACTED } from '../../policy/mask/styles.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia, runProgram as run } from '../../testing/run.js';

const CARD = '4111 1111 1111 1111';
const email = (i: number) => `user${i}@example.com`;
describe('PostgreSQL gateway: masks and row limits applied to results on the wire', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;

  /** `binary`: results in binary format (node-postgres asks for it in every Bind; typed on Defaults only). */
  const pgClient = (cfg: pg.Defaults) => new pg.Client(cfg);
  const client = (database = 'app-db', binary = false) =>
    pgClient({ host: '127.0.0.1', port, database, user: 'alice', password: key, binary });
  const direct = (binary = false) => pgClient({ connectionString: db.url, binary });
  const psql = (database: string, sql: string) => psqlVia({ port, password: key, database }, ['-c', sql]);
  const withClient = async <T>(c: pg.Client, f: (c: pg.Client) => Promise<T>): Promise<T> => {
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    db = await createThrowawayDb();
    await withClient(direct(), (c) =>
      c.query(`create table users (id int primary key, name text, email text, ssn text, card text, pin int);
        insert into users select i, 'User ' || i, 'user' || i || '@example.com',
          '123-45-' || lpad(i::text, 4, '0'), '${CARD}', 1000 + i from generate_series(1, 20) i`),
    );
    const init = await run('pgbench', ['-i', '-s', '1', '-q', db.url]);
    assert.equal(init.code, 0, init.stderr);
    gw = await startGateway('sqlite', {
      config: {
        connections: [
          pgConnection(db.name, 'app-db'),
          pgConnection(db.name, 'scan-db'),
          pgConnection(db.name, 'limit-db'),
          pgConnection(db.name, 'deep-limit-db'),
        ],
        policy: {
          rules: [
            {
              name: 'hide-ssn',
              match: { connections: ['app-db'] },
              effect: 'mask',
              mask: { columns: ['users.ssn', 'users.pin', 'pgbench_accounts.abalance'], style: 'redact' },
            },
            {
              name: 'partial-email',
              match: { connections: ['app-db'] },
              effect: 'mask',
              mask: { columns: ['*.email'], style: 'keep-last-4' },
            },
            {
              name: 'find-cards',
              match: { connections: ['scan-db'] },
              effect: 'mask',
              mask: { detectors: ['card'], style: 'keep-last-4' },
            },
            { name: 'five-rows', match: { connections: ['limit-db'] }, effect: 'limit', limit: { rows: 5 } },
            {
              name: 'deep-email',
              match: { connections: ['deep-limit-db'] },
              effect: 'mask',
              mask: { columns: ['*.email'], style: 'keep-last-4' },
            },
            {
              name: 'deep-limit',
              match: { connections: ['deep-limit-db'] },
              effect: 'limit',
              limit: { rows: 54_321 },
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
    await gw?.close();
    await db?.drop();
  });

  it('masks users.ssn and *.email in text results and leaves other columns intact (pg and psql)', async () => {
    const rows = await withClient(client(), async (c) => {
      const simple = await c.query('select id, name, email, ssn, card from users where id <= 2 order by id');
      const extended = await c.query({
        text: 'select email, ssn, name from users where id = $1',
        values: [2],
      });
      return [...simple.rows, ...extended.rows];
    });
    assert.deepEqual(rows, [
      { id: 1, name: 'User 1', email: keepLast(email(1), 4), ssn: REDACTED, card: CARD },
      { id: 2, name: 'User 2', email: keepLast(email(2), 4), ssn: REDACTED, card: CARD },
      { email: keepLast(email(2), 4), ssn: REDACTED, name: 'User 2' },
    ]);
    const res = await psql('app-db', 'select ssn, email, name from users where id = 3');
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${REDACTED}|${keepLast(email(3), 4)}|User 3\n`);
  });

  it('lets no masked column out through COPY TO STDOUT, of the table or of a query', async () => {
    for (const sql of [
      'copy users to stdout',
      'copy users (id, ssn) to stdout',
      'copy (select ssn from users) to stdout',
      'copy (select upper(ssn) as s from users) to stdout',
      'copy (select id, email from users where id = 1) to stdout with (format csv)',
    ]) {
      const res = await psql('app-db', sql);
      assert.ok(!/123-45-\d{4}/.test(res.stdout), `${sql}: an SSN came out`);
      assert.ok(!res.stdout.includes('@example.com'), `${sql}: an email came out whole`);
      if (res.code !== 0) assert.match(res.stderr, /\(warden\)/, `${sql}: refused by Warden`);
    }
    // A COPY of unmasked columns passes.
    const names = await psql(
      'app-db',
      'copy (select id, name from users where id <= 2 order by id) to stdout',
    );
    assert.equal(names.code, 0, names.stderr);
    assert.equal(names.stdout, '1\tUser 1\n2\tUser 2\n');
  });

  it('masks a column a table gains between two runs of the same statement in one session', async () => {
    const seen = await withClient(client(), async (c) => {
      await c.query(`create temp table leads (id int, name text); insert into leads values (1, 'Ada')`);
      // The same text twice: the second result's plan is the first one's.
      const before = [
        (await c.query('select * from leads')).rows,
        (await c.query('select * from leads')).rows,
      ];
      await c.query(`alter table leads add column email text; update leads set email = 'ada@example.com'`);
      return [...before, (await c.query('select * from leads')).rows];
    });
    assert.deepEqual(seen, [
      [{ id: 1, name: 'Ada' }],
      [{ id: 1, name: 'Ada' }],
      [{ id: 1, name: 'Ada', email: keepLast('ada@example.com', 4) }],
    ]);
  });

  it('masks binary-format results: text values rewritten, a masked integer sent as NULL', async () => {
    const r = await withClient(client('app-db', true), (c) =>
      c.query({ text: 'select id, pin, ssn, email, name from users where id = $1', values: [4] }),
    );
    assert.deepEqual(r.rows, [
      { id: 4, pin: null, ssn: REDACTED, email: keepLast(email(4), 4), name: 'User 4' },
    ]);
  });

  it('masks a column computed from a masked one (upper(ssn)) in simple and extended queries', async () => {
    const got = await withClient(client(), async (c) => [
      (await c.query('SELECT upper(ssn) AS s, name FROM users WHERE id = 5')).rows[0],
      (await c.query({ text: 'SELECT upper(ssn) AS s, name FROM users WHERE id = $1', values: [5] })).rows[0],
    ]);
    assert.deepEqual(got, [
      { s: REDACTED, name: 'User 5' },
      { s: REDACTED, name: 'User 5' },
    ]);
  });

  it('finds card numbers with a detectors-only rule, in rows and in COPY OUT text', async () => {
    const r = await withClient(client('scan-db'), (c) =>
      c.query('select name, card, ssn from users where id = 6'),
    );
    assert.deepEqual(r.rows, [{ name: 'User 6', card: keepLast(CARD, 4), ssn: '123-45-0006' }]);
    const copy = await psql('scan-db', 'copy (select id, card from users where id = 7) to stdout');
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(copy.stdout, `7\t${keepLast(CARD, 4)}\n`);
  });

  it('stops a 20-row result (rows or COPY OUT) after 5 rows with a notice naming the rule and a count of 5', async () => {
    await withClient(client('limit-db'), async (c) => {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      const simple = await c.query('select id from users order by id');
      assert.equal(simple.rows.length, 5);
      assert.equal(simple.rowCount, 5);
      const extended = await c.query({ text: 'select id from users where id > $1 order by id', values: [0] });
      assert.deepEqual(
        extended.rows.map((x) => x.id),
        [1, 2, 3, 4, 5],
      );
      assert.equal(extended.rowCount, 5);
      assert.deepEqual(notices, [
        'result stopped after 5 rows by rule "five-rows" (warden)',
        'result stopped after 5 rows by rule "five-rows" (warden)',
      ]);
      assert.equal(
        (await c.query('select count(*)::int as n from users')).rows[0].n,
        20,
        'the session goes on',
      );
    });
    for (const sql of [
      'select id from users order by id',
      'copy (select id from users order by id) to stdout',
    ]) {
      const res = await psql('limit-db', sql);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, '1\n2\n3\n4\n5\n', sql);
      assert.match(res.stderr, /NOTICE: {2}result stopped after 5 rows by rule "five-rows" \(warden\)/);
    }
  });

  it('refuses binary COPY OUT where a detector or a row limit applies (its values cannot be read), text COPY stays', async () => {
    for (const [database, rule] of [
      ['scan-db', 'find-cards'],
      ['limit-db', 'five-rows'],
    ] as const) {
      for (const sql of [
        'copy (select id, card from users) to stdout (format binary)',
        'copy users to stdout with binary',
      ]) {
        const res = await psql(database, sql);
        assert.notEqual(res.code, 0, `${database}: ${sql} was refused`);
        assert.equal(res.stdout, '', 'no binary row left the gateway');
        assert.match(
          res.stderr,
          new RegExp(`ERROR: {2}COPY in binary format carries no types.*rule "${rule}"`),
        );
      }
      const text = await psql(database, 'copy (select id from users where id = 1) to stdout (format csv)');
      assert.equal(text.code, 0, text.stderr);
    }
  });

  it('keeps pgbench -M prepared working with a table-qualified mask, resolved through the catalog', async () => {
    // Division by zero (and a failed run) unless the prepared statement's abalance comes back masked.
    const script = join(tmpdir(), `warden-wire-${process.pid}.sql`);
    writeFileSync(
      script,
      `\\set aid random(1, 1000)\nSELECT abalance AS b FROM pgbench_accounts WHERE aid = :aid \\gset\nSELECT 1 / (:b::text = '${REDACTED}')::int;\n`,
    );
    const args = ['-n', '-t', '100', '-c', '2', '-M', 'prepared', '-f', script];
    const res = await run(
      'pgbench',
      [...args, '-h', '127.0.0.1', '-p', String(port), '-U', 'alice', 'app-db'],
      {
        PGPASSWORD: key,
        PGSSLMODE: 'disable',
      },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /number of transactions actually processed: 200\/200/);
  });

  it('masks every row of a 100,000-row result that spans many network reads', async () => {
    const r = await withClient(client(), (c) =>
      c.query(`select i, 'user' || i || '@example.com' as email from generate_series(1, 100000) i`),
    );
    assert.equal(r.rowCount, 100_000);
    const wrong = r.rows.find((x: { i: number; email: string }) => x.email !== keepLast(email(x.i), 4));
    assert.equal(wrong, undefined);
  });

  it('masks a 100,000-row result and stops it at a limit inside a run of rows, at exactly that row', async () => {
    const notices: string[] = [];
    const r = await withClient(client('deep-limit-db'), (c) => {
      c.on('notice', (n) => notices.push(n.message ?? ''));
      return c.query({
        text: `select i, 'user' || i || '@example.com' as email from generate_series(1, 100000) i`,
        rowMode: 'array',
      });
    });
    assert.equal(r.rowCount, 54_321);
    assert.deepEqual(r.rows.at(-1), [54_321, keepLast(email(54_321), 4)]);
    const wrong = r.rows.findIndex(
      (row: unknown[], k: number) => row[0] !== k + 1 || row[1] !== keepLast(email(k + 1), 4),
    );
    assert.equal(wrong, -1);
    assert.deepEqual(notices, ['result stopped after 54321 rows by rule "deep-limit" (warden)']);
  });

  it('stops a 100,000-row COPY OUT at a limit inside a run of CopyData messages, at exactly that row', async () => {
    const res = await psql('deep-limit-db', 'copy (select i from generate_series(1, 100000) i) to stdout');
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 54_321);
    assert.equal(
      lines.findIndex((line, k) => line !== String(k + 1)),
      -1,
    );
    assert.match(res.stderr, /NOTICE: {2}result stopped after 54321 rows by rule "deep-limit" \(warden\)/);
  });

  it('delivers every row of a large result to a client that stops reading for a while', {
    timeout: 60_000,
  }, async () => {
    // Writes to the paused client back up: Warden must pause the target, then resume on 'drain'.
    const r = await withClient(client(), async (c) => {
      const socket = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection
        .stream;
      const query = c.query({
        text: `select i, repeat('x', 80) as pad from generate_series(1, 200000) i`,
        rowMode: 'array',
      });
      socket.pause();
      await new Promise((res) => setTimeout(res, 500));
      socket.resume();
      const rows = await query;
      // The session goes on: the target was resumed once the client caught up.
      assert.deepEqual((await c.query({ text: 'select 42', rowMode: 'array' })).rows, [[42]]);
      return rows;
    });
    assert.equal(r.rowCount, 200_000);
    assert.equal(
      r.rows.findIndex((row: unknown[], k: number) => row[0] !== k + 1),
      -1,
    );
  });

  it('passes a 100,000-row result with no masked column exactly as a direct connection gets it', async () => {
    // app-db masks columns by name: none of these, so the result's rows pass in runs.
    const sql = {
      text: `select i, md5(i::text) as digest from generate_series(1, 100000) i`,
      rowMode: 'array' as const,
    };
    const mine = await withClient(client(), (c) => c.query(sql));
    const theirs = await withClient(direct(), (c) => c.query(sql));
    assert.equal(mine.rowCount, 100_000);
    assert.deepEqual(mine.rows, theirs.rows);
  });

  it('passes a result with nothing to mask through exactly as the target sent it', async () => {
    const sql = { text: 'select id, name, card from users where id <= $1 order by id', values: [20] };
    const q = async (c: pg.Client) => (await c.query({ ...sql, rowMode: 'array' })).rows;
    const mine = [await withClient(client(), q), await withClient(client('app-db', true), q)];
    const theirs = [await withClient(direct(), q), await withClient(direct(true), q)];
    assert.deepEqual(mine, theirs);
  });
});
