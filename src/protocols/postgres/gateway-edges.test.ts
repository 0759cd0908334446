import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, gatewayToThrowawayDb, startGateway } from '../../testing/gateway.js';
import { preparePasswordAuth } from '../../testing/pg-auth.js';
import { ADMIN_URL, createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { runProgram as run } from '../../testing/run.js';
import { selfSignedCert } from '../../testing/tls.js';
import { AUTH_CLEARTEXT, fatalIn, RawClient, startupPacket } from './client-handshake.harness.js';

/** What the connection `wrong-password-db` holds for the target: PostgreSQL refuses it. */
const WRONG_TARGET_PASSWORD = 'not-the-scram-test-password';

/** A CancelRequest (PostgreSQL's 80877102) for `pid.secret`, sent on a connection of its own. */
function sendCancel(port: number, pid: number, secret: number): Promise<void> {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(pid, 8);
  packet.writeInt32BE(secret, 12);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(packet));
    s.on('error', reject);
    s.on('close', () => resolve());
    s.resume();
  });
}

/** The target backends of `pids` that are running a statement now (pg_stat_activity, direct). */
async function activeBackends(pids: number[]): Promise<number[]> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const res = await admin.query<{ pid: number }>(
      "select pid from pg_stat_activity where pid = any($1::int[]) and state = 'active' order by pid",
      [pids],
    );
    return res.rows.map((r) => r.pid);
  } finally {
    await admin.end();
  }
}

describe('PostgreSQL gateway: TLS, cancel, failures and messages nothing may bypass', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  let dir: string;

  before(async () => {
    await preparePasswordAuth();
    db = await createThrowawayDb();
    dir = mkdtempSync(join(tmpdir(), 'warden-pg-tls-'));
    const { cert, key: tlsKey } = selfSignedCert(dir);
    gw = await startGateway('sqlite', {
      config: {
        // Not loopback-only: the credential is then only accepted over TLS.
        listeners: { postgres: { host: '0.0.0.0', tls: { cert, key: tlsKey } } },
        connections: [
          pgConnection(db.name),
          { name: 'dead-db', protocol: 'postgres', target: { host: '127.0.0.1', port: 1 } },
          {
            ...pgConnection(db.name, 'wrong-password-db'),
            credentials: { user: 'warden_scram', password: WRONG_TARGET_PASSWORD },
          },
        ],
      },
    });
    port = gw.proc.postgres?.port ?? 0;
    const created = await gw.cli(['keys', 'create', '--name', 'carol']);
    key = gw.credential(created.stdout.trim());
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const conninfo = (sslmode: string, database = 'app-db') =>
    `host=127.0.0.1 port=${port} dbname=${database} user=carol sslmode=${sslmode}`;

  it('takes the credential only over TLS on a non-loopback listener', async () => {
    const plain = await run('psql', [conninfo('disable'), '-XAtc', 'select 1'], { PGPASSWORD: key });
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /FATAL: .*TLS/);
    const secure = await run(
      'psql',
      [conninfo('require'), '-XAtc', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'],
      {
        PGPASSWORD: key,
      },
    );
    assert.equal(secure.code, 0, secure.stderr);
    // The client's TLS ends at Warden; the hop to this target is plaintext (its tls: disable).
    assert.equal(secure.stdout, 'f\n');
  });

  it('refuses a replication connection at startup, saying why, instead of a plain session its commands fail in', async () => {
    const res = await run(
      'pg_recvlogical',
      ['-d', conninfo('require'), '--slot', 'warden_test', '--create-slot', '-P', 'test_decoding'],
      { PGPASSWORD: key, PGCONNECT_TIMEOUT: '10' },
    );
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /FATAL: {2}replication connections are not supported through Warden/);
    assert.doesNotMatch(res.stderr, /IDENTIFY_SYSTEM/);
  });

  it('maps psql’s cancel (Ctrl-C) to the target backend', async () => {
    const res = await run(
      'psql',
      [conninfo('require'), '-XAtc', 'select pg_sleep(30)'],
      { PGPASSWORD: key },
      { interruptAfterMs: 1500 },
    );
    assert.match(res.stderr, /canceling statement due to user request/);
  });

  /** A pg client for `database` through Warden, over TLS, as carol. */
  const pgVia = (database: string, application?: string) =>
    new pg.Client({
      host: '127.0.0.1',
      port,
      database,
      user: 'carol',
      password: key,
      ...(application ? { application_name: application } : {}),
      ssl: { rejectUnauthorized: false },
    });

  /** A pg client through Warden, connected, with its target backend's pid. */
  const through = async (application: string) => {
    const c = pgVia('app-db', application);
    await c.connect();
    const res = await c.query<{ pid: number }>('select pg_backend_pid() as pid');
    const client = c as pg.Client & { processID: number; secretKey: number };
    return { c, key: { pid: client.processID, secret: client.secretKey }, backend: res.rows[0]!.pid };
  };

  it('sends a cancel to the backend of the session whose key it names, and only with its secret', async () => {
    const a = await through('cancel-a');
    const b = await through('cancel-b');
    try {
      // The key a client sees is Warden's, not its backend's.
      assert.notEqual(a.key.pid, a.backend);
      assert.notEqual(b.key.pid, b.backend);
      const sleepA = a.c.query('select pg_sleep(30)').then(
        () => 'finished',
        (err: pg.DatabaseError) => err.code,
      );
      const sleepB = b.c.query('select pg_sleep(30)').then(
        () => 'finished',
        (err: pg.DatabaseError) => err.code,
      );
      const both = [a.backend, b.backend].sort((x, y) => x - y);
      for (let i = 0; i < 100 && (await activeBackends(both)).length < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(await activeBackends(both), both, 'both statements are running');
      // B's pid with a wrong secret, then A's key: only A's statement is cancelled.
      await sendCancel(port, b.key.pid, b.key.secret ^ 1);
      await sendCancel(port, a.key.pid, a.key.secret);
      assert.equal(await sleepA, '57014', "A's statement was cancelled");
      assert.deepEqual(await activeBackends(both), [b.backend], "B's statement still runs");
      await sendCancel(port, b.key.pid, b.key.secret);
      assert.equal(await sleepB, '57014');
      // Both sessions stay usable after their cancelled statements.
      assert.deepEqual((await a.c.query('select 1 as one')).rows, [{ one: 1 }]);
      assert.deepEqual((await b.c.query('select 2 as two')).rows, [{ two: 2 }]);
    } finally {
      await Promise.all([a.c.end(), b.c.end()]);
    }
  });

  it('ends the session when the target ends its backend: the client hears why, the session is closed by the target', async () => {
    const s = await through('terminated-by-target');
    const ended = new Promise<Error>((resolve) => s.c.on('error', resolve));
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query('select pg_terminate_backend($1)', [s.backend]);
    } finally {
      await admin.end();
    }
    const err = (await ended) as pg.DatabaseError;
    assert.equal(err.code, '57P01', err.message);
    assert.match(err.message, /terminating connection due to administrator command/);
    const sessions = await gw.api('GET', '/api/sessions?subject=carol&limit=200');
    const row = (
      sessions.body as { sessions: Array<{ id: string; application: string | null }> }
    ).sessions.find((x) => x.application === 'terminated-by-target');
    assert.ok(row, 'the session was recorded');
    const closed = await gw.waitForAudit(
      'session.closed',
      (r) => (r.payload as { session?: string }).session === row.id,
    );
    assert.equal((closed.payload as { reason: string }).reason, 'target');
  });

  it('tells the client when the target refuses the stored credentials, never naming the password', async () => {
    const c = pgVia('wrong-password-db');
    let message = '';
    await assert.rejects(c.connect(), (err: pg.DatabaseError) => {
      assert.equal(err.severity, 'FATAL');
      assert.equal(err.code, '28P01');
      assert.match(err.message, /could not open connection "wrong-password-db"/);
      message = `${err.message} ${err.detail ?? ''} ${err.hint ?? ''}`;
      return true;
    });
    assert.ok(!message.includes(WRONG_TARGET_PASSWORD), message);
    const closed = await gw.waitForAudit(
      'session.closed',
      (r) =>
        (r.payload as { reason?: string; detail?: string }).reason === 'error' &&
        /wrong-password-db/.test((r.payload as { detail?: string }).detail ?? ''),
    );
    assert.ok(!JSON.stringify(closed).includes(WRONG_TARGET_PASSWORD));
  });

  it('lets an admin kill a live session: psql is told who ended it, and the session is marked killed', async () => {
    // Only a session this psql opens: the previous test's may still read active for the few
    // milliseconds until its end is written with the next batch.
    const since = new Date().toISOString();
    const running = run('psql', [conninfo('require'), '-XAtc', 'select pg_sleep(30)'], { PGPASSWORD: key });
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      const res = await gw.api('GET', '/api/sessions?status=active&subject=carol');
      const sessions = (res.body as { sessions: Array<{ id: string; started_at: string }> }).sessions;
      id = sessions.find((s) => s.started_at >= since)?.id;
      if (!id) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(id, 'the psql session shows up as active');
    const user = await gw.cli(['sessions', 'kill', id], { token: key });
    assert.match(user.stderr, /403 forbidden/, 'only admins kill sessions');
    const res = await gw.cli(['sessions', 'kill', id, '--reason', 'maintenance window']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `killed session ${id}\n`);
    const psql = await running;
    assert.notEqual(psql.code, 0);
    assert.match(
      psql.stderr,
      /FATAL: {2}session terminated by bootstrap-admin: maintenance window \(warden\)/,
    );
    const event = await gw.waitForAudit(
      'session.closed',
      (r) => (r.payload as { session?: string }).session === id,
    );
    assert.equal((event.payload as { reason: string }).reason, 'killed');
    await gw.waitForAudit('session.kill', (r) => r.target === `session:${id}`);
    const again = await gw.cli(['sessions', 'kill', id]);
    assert.match(again.stderr, /409 conflict.*not live/);
  });

  it('tells the client when the target cannot be reached, with an SQLSTATE of class 08', async () => {
    const c = pgVia('dead-db');
    await assert.rejects(c.connect(), (err: pg.DatabaseError) => {
      assert.match(err.code ?? '', /^08/);
      assert.match(err.message, /could not open connection "dead-db"/);
      return true;
    });
    await gw.waitForAudit('session.closed', (r) => {
      const p = r.payload as { reason?: string; detail?: string };
      return p.reason === 'error' && /dead-db/.test(p.detail ?? '');
    });
  });
});

describe('PostgreSQL gateway: a listener on all interfaces that allows plaintext passwords, with a short login timeout', () => {
  let gw: Gateway;
  let port: number;
  let close: () => Promise<void> = async () => undefined;

  before(async () => {
    ({ gw, port, close } = await gatewayToThrowawayDb({
      host: '0.0.0.0',
      allow_plaintext_password: true,
      login_timeout: '2s',
    }));
  });
  after(() => close());

  it('takes the credential in plaintext on a listener that is not loopback-only, because the config says so', async () => {
    const res = await run(
      'psql',
      [`host=127.0.0.1 port=${port} dbname=app-db user=dora sslmode=disable`, '-XAtc', 'select 41 + 1'],
      { PGPASSWORD: gw.adminKey },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '42\n');
  });

  it('drops a client that never sends its password once login_timeout passes, and records the attempt', {
    timeout: 30_000,
  }, async () => {
    const stalled = new RawClient(port);
    stalled.socket.write(startupPacket({ user: 'slow', database: 'app-db' }));
    const bytes = await stalled.closed;
    assert.deepEqual(bytes.subarray(0, AUTH_CLEARTEXT.length), AUTH_CLEARTEXT, 'it was asked for a password');
    const fatal = fatalIn(bytes.subarray(AUTH_CLEARTEXT.length));
    assert.deepEqual([fatal.severity, fatal.code], ['FATAL', '57014']);
    assert.match(fatal.message ?? '', /canceling authentication due to timeout/);
    await gw.waitForAudit('gateway.refused', (r) => (r.payload as { code?: string }).code === '57014');
  });
});
