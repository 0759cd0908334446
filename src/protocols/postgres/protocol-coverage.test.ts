import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { rawSession } from '../../testing/pg-wire.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { runProgram } from '../../testing/run.js';
import { Back, Front, int16, int32, type Message, message } from './codec.js';

const PG_PORT = 5432;

const types = (ms: Message[]): string => ms.map((m) => String.fromCharCode(m.type)).join('');

/** Bytes in the kernel's receive and send queues of the TCP connections on these local ports (ss). */
async function socketQueues(ports: number[]): Promise<number> {
  const filter = ports.map((p) => `sport = :${p} or dport = :${p}`).join(' or ');
  const res = await runProgram('ss', ['-tnH', 'state', 'established', `( ${filter} )`]);
  assert.equal(res.code, 0, res.stderr);
  // Columns without a state filter's State: Recv-Q Send-Q Local Peer.
  return res.stdout
    .split('\n')
    .filter(Boolean)
    .reduce((sum, line) => {
      const [recv = '0', send = '0'] = line.trim().split(/\s+/);
      return sum + Number(recv) + Number(send);
    }, 0);
}

/** ParameterStatus messages as name → value (the last one of a name wins). */
const parameters = (ms: Message[]): Map<string, string> =>
  new Map(
    ms
      .filter((m) => m.type === Back.ParameterStatus)
      .map((m) => {
        const [name = '', value = ''] = m.body.toString('utf8').split('\u0000');
        return [name, value];
      }),
  );

describe('PostgreSQL gateway: session state, notifications, notices and COPY behave as on a direct connection', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;

  const client = (application?: string) =>
    new pg.Client({
      host: '127.0.0.1',
      port,
      database: 'app-db',
      user: 'eve',
      password: gw.adminKey,
      ...(application ? { application_name: application } : {}),
    });

  before(async () => {
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', { config: { connections: [pgConnection(db.name)] } });
    port = gw.proc.postgres?.port ?? 0;
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('delivers LISTEN/NOTIFY between two sessions through Warden, naming the sender as pg_backend_pid() does', async () => {
    const listener = client();
    const sender = client();
    await Promise.all([listener.connect(), sender.connect()]);
    try {
      await listener.query('listen warden_channel');
      const got = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
      const pid = (await sender.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      await sender.query("select pg_notify('warden_channel', 'hello through warden')");
      const n = await got;
      assert.deepEqual([n.channel, n.payload, n.processId], ['warden_channel', 'hello through warden', pid]);
    } finally {
      await Promise.all([listener.end(), sender.end()]);
    }
  });

  it('answers an empty query string with EmptyQueryResponse, in the simple and the extended protocol', async () => {
    const s = await rawSession(port, 'app-db', gw.adminKey);
    try {
      s.send(message(Front.Query, ''));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'IZ');
      s.send(
        Buffer.concat([
          message(Front.Parse, '', '', int16(0)),
          message(Front.Bind, '', '', int16(0), int16(0), int16(0)),
          message(Front.Describe, Buffer.from('P'), ''),
          message(Front.Execute, '', int32(0)),
          message(Front.Sync),
        ]),
      );
      assert.equal(types(await s.until(Back.ReadyForQuery)), '12nIZ');
    } finally {
      s.socket.destroy();
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

  it('sends the target’s ParameterStatus with the client’s own application_name, and relays later ones', async () => {
    const s = await rawSession(port, 'app-db', gw.adminKey, {
      application_name: 'mine',
      DateStyle: 'SQL, DMY',
    });
    try {
      const startup = parameters(s.startup);
      assert.equal(startup.get('application_name'), 'mine', 'not the label Warden gives the target');
      assert.equal(startup.get('DateStyle'), 'SQL, DMY', 'the forwarded startup setting took effect');
      assert.ok(startup.get('server_version'), 'the target’s own parameters');
      s.send(message(Front.Query, "set timezone = 'Asia/Tokyo'"));
      const replies = await s.until(Back.ReadyForQuery);
      assert.equal(parameters(replies).get('TimeZone'), 'Asia/Tokyo');
    } finally {
      s.socket.destroy();
    }
  });

  it('forwards every field of a NoticeResponse exactly as a direct connection gets them', async () => {
    const raise =
      "do $$ begin raise notice using message = 'careful: 42', detail = 'a detail', hint = 'a hint', " +
      "errcode = '01000', column = 'c', constraint = 'k', datatype = 'd', table = 't', schema = 's'; end $$";
    const noticeOf = async (c: pg.Client) => {
      await c.connect();
      try {
        const got = new Promise<Record<string, unknown>>((resolve) => c.once('notice', resolve));
        await c.query(raise);
        const { name: _name, length: _length, ...fields } = await got;
        return fields;
      } finally {
        await c.end();
      }
    };
    const direct = await noticeOf(new pg.Client({ connectionString: db.url }));
    const through = await noticeOf(client());
    assert.equal(direct.hint, 'a hint');
    assert.equal(direct.table, 't');
    assert.deepEqual(through, direct);
  });

  it('records the client’s address on the session and on its audit records', async () => {
    const c = client('where-from');
    await c.connect();
    await c.end();
    const listed = await gw.api('GET', '/api/sessions?limit=200');
    const row = (
      listed.body as {
        sessions: Array<{ id: string; application: string | null; client_addr: string | null }>;
      }
    ).sessions.find((x) => x.application === 'where-from');
    assert.ok(row, 'the session was recorded');
    assert.equal(row.client_addr, '127.0.0.1');
    const opened = await gw.waitForAudit(
      'session.opened',
      (r) => (r.payload as { session?: string }).session === row.id,
    );
    assert.equal((opened.actor as { address?: string }).address, '127.0.0.1');
  });

  it('reads a client’s COPY data only as fast as the target takes it (backpressure towards the target)', {
    timeout: 120_000,
  }, async () => {
    // A target that takes about 2 ms a row: 2,048 rows of 32 KiB (64 MiB) need 4 s or more.
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query(`create table slow_in (id int, pad text);
      create function slow_row() returns trigger language plpgsql as $$
        begin perform pg_sleep(0.002); return new; end $$;
      create trigger slow_row before insert on slow_in for each row execute function slow_row()`);
    await direct.end();
    const s = await rawSession(port, 'app-db', gw.adminKey);
    try {
      s.send(message(Front.Query, 'copy slow_in from stdin'));
      await s.until(Back.CopyInResponse);
      const pad = 'x'.repeat(32 * 1024);
      let sent = 0;
      for (let i = 1; i <= 2048; i++) {
        const row = message(Front.CopyData, Buffer.from(`${i}\t${pad}\n`));
        sent += row.length - 5;
        s.send(row);
      }
      // Once this client's own buffer is empty, everything it sent is in the kernel's socket queues,
      // in Warden or in the target: with backpressure, Warden holds only what it is writing.
      while (s.socket.writableLength > 0) await new Promise((r) => s.socket.once('drain', r));
      const queued = await socketQueues([port, PG_PORT]);
      const progress = new pg.Client({ connectionString: db.url });
      await progress.connect();
      let processed: number;
      try {
        const res = await progress.query<{ bytes: string }>(
          "select bytes_processed::text as bytes from pg_stat_progress_copy where relid = 'slow_in'::regclass",
        );
        assert.equal(res.rows.length, 1, 'the COPY is still running');
        processed = Number(res.rows[0]!.bytes);
      } finally {
        await progress.end();
      }
      // What the target has not processed and no socket queue holds is in Warden's memory (the
      // target went on processing after the queues were read, which only lowers this). Without
      // backpressure Warden reads nearly all 64 MiB ahead of the target.
      const inWarden = sent - processed - queued;
      assert.ok(
        inWarden < 8 * 1024 * 1024,
        `Warden holds ${inWarden} bytes (${sent - processed} unprocessed, ${queued} in socket queues)`,
      );
      s.send(Buffer.concat([message(Front.CopyDone), message(Front.Query, 'select count(*) from slow_in')]));
      const done = await s.until(Back.ReadyForQuery);
      assert.ok(
        done.some((m) => m.type === Back.CommandComplete && m.body.toString().startsWith('COPY 2048')),
      );
      const counted = await s.until(Back.ReadyForQuery);
      assert.ok(counted.some((m) => m.type === Back.DataRow && m.body.toString().includes('2048')));
    } finally {
      s.socket.destroy();
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
