import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { Sessions } from '../../store/sessions.js';
import type { Gateway } from '../../testing/gateway.js';
import { startProxiedGateway } from '../../testing/gateway.js';
import { createThrowawayDb, type ThrowawayDb } from '../../testing/postgres.js';
import type { TcpProxy } from '../../testing/tcp-proxy.js';

describe('PostgreSQL gateway while its store is down', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let proxy: TcpProxy;
  let key: string;

  before(async () => {
    db = await createThrowawayDb();
    ({ gw, proxy } = await startProxiedGateway());
    const created = await gw.api('POST', '/api/connections', {
      body: {
        name: 'app-db',
        protocol: 'postgres',
        target: { host: '127.0.0.1', port: 5432, database: db.name },
        credentials: { user: 'postgres' },
      },
    });
    assert.equal(created.status, 201, created.text);
    key = gw.credential((await gw.cli(['keys', 'create', '--name', 'dora'])).stdout.trim());
  });
  after(async () => {
    await proxy?.restore();
    await gw?.close();
    await proxy?.close();
    await db?.drop();
  });

  const connect = async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gw.proc.postgres?.port,
      database: 'app-db',
      user: 'dora',
      password: key,
    });
    await c.connect();
    return c;
  };

  it('refuses new logins with 57P03, stays up, serves again once the store is back, and loses no event', async () => {
    await proxy.cut();
    await assert.rejects(connect(), (err: pg.DatabaseError) => {
      assert.equal(err.code, '57P03');
      assert.match(err.message, /cannot reach its store/);
      return true;
    });
    await proxy.restore();
    const c = await connect();
    try {
      assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    } finally {
      await c.end();
    }
    await gw.waitForAudit('gateway.refused', (r) => (r.payload as { code?: string }).code === '57P03');
  });

  it('refuses a login whose session it cannot record, and records it, opened and ended, once the store takes writes', async () => {
    // The store answers reads (the connection, the key) but refuses every audit write.
    const store = gw.openStore();
    await sql`create or replace function refuse_audit() returns trigger language plpgsql as $$
              begin raise exception 'could not extend file' using errcode = 'disk_full'; end $$`.execute(
      store.db,
    );
    await sql`create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()`.execute(
      store.db,
    );
    try {
      await assert.rejects(connect(), (err: pg.DatabaseError) => {
        assert.equal(err.code, '57P03');
        assert.match(err.message, /cannot record sessions/);
        return true;
      });
    } finally {
      await sql`drop trigger refuse_audit on audit_log`.execute(store.db);
    }
    const closed = await gw.waitForAudit('session.closed', (r) =>
      /could not record the session/.test(String(r.payload.detail)),
    );
    const id = String(closed.payload.session);
    const opened = await gw.waitForAudit('session.opened', (r) => r.payload.session === id);
    assert.ok(opened.seq < closed.seq);
    const row = await new Sessions(store).get(id);
    await store.close();
    assert.equal(row?.status, 'failed');
    assert.match(row?.end_reason ?? '', /could not record the session/);
  });

  it('refuses a login to a just-in-time connection with 57P03 when its grants cannot be read', async () => {
    const created = await gw.api('POST', '/api/connections', {
      body: {
        name: 'vault',
        protocol: 'postgres',
        target: { host: '127.0.0.1', port: 5432, database: db.name },
        credentials: { user: 'postgres' },
        access: 'jit',
      },
    });
    assert.equal(created.status, 201, created.text);
    const asked = await gw.cli(
      ['access', 'request', 'vault', '--for', '10m', '--reason', 'store-down test'],
      {
        token: key,
      },
    );
    assert.equal(asked.code, 0, asked.stderr);
    const id = /\b([0-9a-f-]{36})\b/.exec(asked.stdout)?.[1];
    assert.ok(id, asked.stdout);
    assert.equal((await gw.cli(['access', 'grant', id])).code, 0);
    const login = () =>
      new pg.Client({
        host: '127.0.0.1',
        port: gw.proc.postgres?.port,
        database: 'vault',
        user: 'dora',
        password: key,
      });
    const c = login();
    await c.connect();
    await c.end();
    await proxy.cut();
    try {
      await assert.rejects(
        (async () => {
          const d = login();
          d.on('error', () => undefined);
          await d.connect();
        })(),
        (err: pg.DatabaseError) => {
          assert.equal(err.code, '57P03', err.message);
          return true;
        },
      );
    } finally {
      await proxy.restore();
    }
  });
});
