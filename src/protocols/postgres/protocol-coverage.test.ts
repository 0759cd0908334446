import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { runProgram } from '../../testing/run.js';

describe('PostgreSQL gateway: session state, notifications, notices and COPY behave as on a direct connection', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;

  const client = () =>
    new pg.Client({ host: '127.0.0.1', port, database: 'app-db', user: 'eve', password: gw.adminKey });

  before(async () => {
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', { config: { connections: [pgConnection(db.name)] } });
    port = gw.proc.postgres?.port ?? 0;
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('delivers LISTEN/NOTIFY between two sessions through Warden', async () => {
    const listener = client();
    const sender = client();
    await Promise.all([listener.connect(), sender.connect()]);
    try {
      await listener.query('listen warden_channel');
      const got = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
      await sender.query("select pg_notify('warden_channel', 'hello through warden')");
      const n = await got;
      assert.deepEqual([n.channel, n.payload], ['warden_channel', 'hello through warden']);
    } finally {
      await Promise.all([listener.end(), sender.end()]);
    }
  });

  it('forwards NoticeResponse fields, and keeps temporary tables, prepared statements and settings per session', async () => {
    const c = client();
    await c.connect();
    try {
      const notice = new Promise<{ message?: string; hint?: string; detail?: string; severity?: string }>(
        (resolve) => c.once('notice', resolve),
      );
      await c.query(
        "do $$ begin raise notice 'careful: %', 42 using hint = 'a hint', detail = 'a detail'; end $$",
      );
      const n = await notice;
      assert.deepEqual(
        [n.message, n.hint, n.detail, n.severity],
        ['careful: 42', 'a hint', 'a detail', 'NOTICE'],
      );
      await c.query('create temp table scratch (v int)');
      await c.query('insert into scratch values (1), (2)');
      await c.query("set application_name = 'changed-by-client'");
      await c.query('prepare twice(int) as select $1 * 2 as v');
      assert.equal((await c.query('execute twice(21)')).rows[0].v, 42);
      assert.equal((await c.query('select count(*)::int as n from scratch')).rows[0].n, 2);
      assert.equal((await c.query('show application_name')).rows[0].application_name, 'changed-by-client');
    } finally {
      await c.end();
    }
  });

  it('runs COPY FROM STDIN and COPY TO STDOUT with psql', async () => {
    const conninfo = `host=127.0.0.1 port=${port} dbname=app-db user=eve sslmode=disable`;
    const env = { PGPASSWORD: gw.adminKey };
    const create = await runProgram(
      'psql',
      [conninfo, '-Xc', 'create table copied (id int, label text)'],
      env,
    );
    assert.equal(create.code, 0, create.stderr);
    const rows = Array.from({ length: 1000 }, (_, i) => `${i}\tlabel ${i}`).join('\n');
    const copyIn = await runProgram(
      'sh',
      ['-c', `printf '%s\\n' "$ROWS" | psql "${conninfo}" -Xc "\\copy copied from stdin"`],
      {
        ...env,
        ROWS: rows,
      },
    );
    assert.equal(copyIn.code, 0, copyIn.stderr);
    assert.match(copyIn.stdout, /COPY 1000/);
    const copyOut = await runProgram(
      'psql',
      [conninfo, '-Xc', 'copy (select * from copied order by id) to stdout'],
      env,
    );
    assert.equal(copyOut.code, 0, copyOut.stderr);
    assert.equal(copyOut.stdout, `${rows}\n`);
  });
});
