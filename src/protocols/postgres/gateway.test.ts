import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { AuditRecord } from '../../audit/record.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia, runProgram as run } from '../../testing/run.js';

/** Runs psql against the gateway; resolves with its exit code and output. */
function psql(port: number, password: string, args: string[], database = 'app-db') {
  return psqlVia({ port, password, database }, args);
}

describe('PostgreSQL gateway: stock clients through Warden to a real database', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;

  const client = (password = key, database = 'app-db') =>
    new pg.Client({ host: '127.0.0.1', port, database, user: 'alice', password, application_name: 'itest' });

  before(async () => {
    db = await createThrowawayDb();
    const setup = new pg.Client({ connectionString: db.url });
    await setup.connect();
    await setup.query(`create table orders (id int primary key, status text);
      insert into orders values (1, 'paid'), (2, 'open'), (3, 'open')`);
    await setup.end();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name)],
        policy: {
          rules: [
            {
              name: 'no-drop',
              when: { sql: { statements: ['drop', 'truncate'] } },
              effect: 'deny',
              message: 'Dropping objects needs a change request.',
            },
            {
              name: 'review-unbounded-writes',
              when: { sql: { statements: ['update', 'delete'], where: 'absent' } },
              effect: 'review',
              review: { approvers: ['dba'], hold: '300ms' },
            },
          ],
        },
      },
    });
    assert.ok(gw.proc.postgres, 'the PostgreSQL listener is up');
    port = gw.proc.postgres.port;
    const created = await gw.cli(['keys', 'create', '--name', 'alice']);
    assert.equal(created.code, 0, created.stderr);
    key = gw.credential(created.stdout.trim());
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('runs psql queries through the gateway with the caller’s API key as the password', async () => {
    const res = await psql(port, key, ['-c', 'select count(*) from orders', '-c', 'select current_user']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, '3\npostgres\n');
  });

  it('refuses a DROP with a PostgreSQL error naming the rule, and the session stays usable', async () => {
    const res = await psql(port, key, ['-c', 'drop table orders', '-c', 'select 42']);
    assert.match(res.stderr, /ERROR: {2}Dropping objects needs a change request\. \(warden\)/);
    assert.equal(res.stdout, '42\n');
    const c = client();
    await c.connect();
    try {
      await assert.rejects(c.query('truncate orders'), (err: pg.DatabaseError) => {
        assert.equal(err.code, '42501');
        return true;
      });
      assert.equal(
        (await c.query('select count(*)::int as n from orders')).rows[0].n,
        3,
        'nothing was dropped',
      );
    } finally {
      await c.end();
    }
  });

  it('judges extended-protocol statements (Parse) and keeps transaction semantics', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query({ text: 'select status from orders where id = $1', values: [2] });
      assert.equal(r.rows[0].status, 'open');
      await c.query('begin');
      await c.query({ text: 'update orders set status = $1 where id = 1', values: ['refunded'] });
      // Held for review (Parse), nobody approves within the rule's 300 ms: refused, 42501.
      await assert.rejects(c.query({ text: 'delete from orders', values: [] }), (err: pg.DatabaseError) => {
        assert.equal(err.code, '42501');
        assert.match(
          err.message,
          /^not approved in time: review \S+ expired with 0 of 1 approvals \(warden\)$/,
        );
        return true;
      });
      // As on a direct connection after an error: the block is aborted until ROLLBACK.
      await assert.rejects(c.query('select 1'), (err: pg.DatabaseError) => err.code === '25P02');
      await c.query('rollback');
      const after = await c.query('select status from orders where id = 1');
      assert.equal(after.rows[0].status, 'paid', 'the refused statement rolled the block back');
    } finally {
      await c.end();
    }
  });

  it('shows the target who is really behind the session', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query('select application_name from pg_stat_activity where pid = pg_backend_pid()');
      assert.match(r.rows[0].application_name, /^itest \[warden s=[0-9a-f]{8} alice\]$/);
      const shown = await c.query('show application_name');
      assert.equal(shown.rows[0].application_name, r.rows[0].application_name);
    } finally {
      await c.end();
    }
  });

  it('refuses a bad credential (28P01) and an unknown connection (3D000) with FATAL errors', async () => {
    await assert.rejects(client('wdn_0000000000000000_nope').connect(), (err: pg.DatabaseError) => {
      assert.equal(err.code, '28P01');
      return true;
    });
    await assert.rejects(client(key, 'no-such-db').connect(), (err: pg.DatabaseError) => {
      assert.equal(err.code, '3D000');
      assert.match(err.message, /connection "no-such-db" does not exist/);
      return true;
    });
    const res = await psql(port, 'not-a-key', ['-c', 'select 1']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /FATAL: {2}authentication failed/);
  });

  it('records sessions and every decision in the audit chain', async () => {
    const denied = await gw.waitForAudit('command.denied', (r) =>
      String((r.payload as { command?: string }).command).includes('drop table orders'),
    );
    assert.equal((denied.payload as { decided_by: string }).decided_by, 'no-drop');
    assert.equal((denied.actor as { subject: string }).subject, 'alice');
    await gw.waitForAudit(
      'command.held',
      (r) => (r.payload as { decided_by?: string }).decided_by === 'review-unbounded-writes',
    );
    const closed: AuditRecord = await gw.waitForAudit('session.closed', () => true);
    assert.equal((closed.payload as { reason: string }).reason, 'client');
    await gw.waitForAudit('gateway.refused', (r) => (r.payload as { code?: string }).code === '3D000');
    const sessions = JSON.parse((await gw.cli(['sessions', 'ls', '--json'])).stdout) as Array<{
      subject: string;
      connection: string;
      status: string;
    }>;
    assert.ok(
      sessions.some((s) => s.subject === 'alice' && s.connection === 'app-db' && s.status === 'closed'),
    );
  });

  it('refuses with 08001, and records the session failed, when the stored credentials do not open', async () => {
    const created = await gw.api('POST', '/api/connections', {
      body: {
        ...pgConnection(db.name, 'sealed-db'),
        credentials: { user: 'postgres', password: 'not-needed-with-trust' },
      },
    });
    assert.equal(created.status, 201, created.text);
    // The sealed secret changed under the gateway: it no longer opens.
    const store = gw.openStore();
    try {
      const row = await store.db
        .selectFrom('connections')
        .select(['secret_sealed'])
        .where('name', '=', 'sealed-db')
        .executeTakeFirstOrThrow();
      const sealed = row.secret_sealed!;
      const flipped = `${sealed.slice(0, -2)}${sealed.endsWith('A') ? 'B' : 'A'}${sealed.slice(-1)}`;
      await store.db
        .updateTable('connections')
        .set({ secret_sealed: flipped })
        .where('name', '=', 'sealed-db')
        .execute();
    } finally {
      await store.close();
    }
    const c = client(key, 'sealed-db');
    await assert.rejects(c.connect(), (err: pg.DatabaseError) => {
      assert.equal(err.code, '08001');
      assert.match(err.message, /stored credentials cannot be opened/);
      return true;
    });
    await c.end().catch(() => undefined);
    const closed = await gw.waitForAudit(
      'session.closed',
      (r) =>
        (r.payload as { detail?: string }).detail?.includes('stored credentials cannot be opened') ?? false,
    );
    const res = await gw.api('GET', `/api/sessions/${(closed.payload as { session: string }).session}`);
    assert.equal(res.status, 200, res.text);
    assert.equal((res.body as { status: string }).status, 'failed');
  });

  it('serves pgbench in simple, extended and prepared modes', async () => {
    const init = await run('pgbench', ['-i', '-s', '1', '-q', db.url]);
    assert.equal(init.code, 0, init.stderr);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const res = await run(
        'pgbench',
        [
          '-n',
          '-S',
          '-t',
          '200',
          '-c',
          '2',
          '-M',
          mode,
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'alice',
          'app-db',
        ],
        { PGPASSWORD: key, PGSSLMODE: 'disable' },
      );
      assert.equal(res.code, 0, `${mode}: ${res.stderr}`);
      assert.match(res.stdout, /number of transactions actually processed: 400\/400/);
    }
  });

  it('leaks no credential', async () => assert.deepEqual(await gw.leaks(), []));
});
