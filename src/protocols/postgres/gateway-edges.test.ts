import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { runProgram as run } from '../../testing/run.js';
import { selfSignedCert } from '../../testing/tls.js';

describe('PostgreSQL gateway: TLS, cancel, failures and messages nothing may bypass', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  let dir: string;

  before(async () => {
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

  it('maps psql’s cancel (Ctrl-C) to the target backend', async () => {
    const res = await run(
      'psql',
      [conninfo('require'), '-XAtc', 'select pg_sleep(30)'],
      { PGPASSWORD: key },
      { interruptAfterMs: 1500 },
    );
    assert.match(res.stderr, /canceling statement due to user request/);
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
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      database: 'dead-db',
      user: 'carol',
      password: key,
      ssl: { rejectUnauthorized: false },
    });
    await assert.rejects(c.connect(), (err: pg.DatabaseError) => {
      assert.match(err.code ?? '', /^08/);
      assert.match(err.message, /could not open connection "dead-db"/);
      return true;
    });
    await gw.waitForAudit('session.closed', (r) => (r.payload as { reason?: string }).reason === 'error');
  });
});
