import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import pg from 'pg';
import { LIMIT, psql, selfSignedContext, startServer, type TestServer } from './client-handshake.harness.js';

// psql (libpq) and node-postgres against acceptClient: the clients Warden must work with.
describe('postgres client handshake with real clients', () => {
  let dir: string;
  let open: TestServer; // TLS offered, plaintext allowed
  let strict: TestServer; // TLS offered, plaintext refused
  let noTls: TestServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-pg-hs-'));
    const ctx = selfSignedContext(dir);
    open = await startServer({ tls: ctx, allowPlaintextPassword: true, loginTimeoutMs: 10_000 });
    strict = await startServer({ tls: ctx, allowPlaintextPassword: false, loginTimeoutMs: 10_000 });
    noTls = await startServer({ allowPlaintextPassword: true, loginTimeoutMs: 10_000 });
  });

  after(async () => {
    await Promise.all([open, strict, noTls].map((s) => s?.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'lets node-postgres log in over plaintext and hands back its parameters and password',
    LIMIT,
    async () => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: open.port,
        user: 'alice',
        database: 'mydb',
        password: 'tok-pg',
        application_name: 'billing-job',
      });
      await client.connect();
      const res = await client.query('select 1');
      await client.end();
      assert.deepEqual(res.rows, [{ '?column?': 1 }]);
      const { hello, dataListeners, addedListeners, query } = await open.next();
      assert.equal(hello?.kind, 'startup');
      if (hello?.kind !== 'startup') return;
      assert.equal(hello.tls, false);
      assert.equal(hello.password, 'tok-pg');
      assert.equal(hello.params.user, 'alice');
      assert.equal(hello.params.database, 'mydb');
      assert.equal(hello.params.application_name, 'billing-job');
      assert.equal(dataListeners, 0);
      assert.equal(addedListeners, 0, 'no handshake listener survives on the socket');
      assert.equal(await query, 'select 1');
    },
  );

  it('lets psql log in with sslmode=disable when plaintext is allowed', LIMIT, async () => {
    const r = await psql(open.port, 'disable');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(1 row\)/);
    const { hello } = await open.next();
    assert.ok(hello?.kind === 'startup');
    assert.equal(hello.tls, false);
    assert.equal(hello.params.application_name, 'psql');
    assert.equal(hello.password, 'tok-psql');
  });

  it('upgrades to TLS for psql with sslmode=require and returns the TLS socket', LIMIT, async () => {
    const r = await psql(strict.port, 'require', 'tok-tls');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(1 row\)/);
    const { hello, dataListeners } = await strict.next();
    assert.ok(hello?.kind === 'startup');
    assert.equal(hello.tls, true);
    assert.ok(hello.socket instanceof tls.TLSSocket);
    assert.equal(hello.password, 'tok-tls');
    assert.equal(hello.params.user, 'alice');
    assert.equal(dataListeners, 0);
  });

  it('upgrades to TLS for node-postgres with ssl on', LIMIT, async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: strict.port,
      user: 'bob',
      password: 'tok-bob',
      ssl: { rejectUnauthorized: false },
    });
    await client.connect();
    await client.end();
    const { hello } = await strict.next();
    assert.ok(hello?.kind === 'startup');
    assert.equal(hello.tls, true);
    assert.equal(hello.params.database, 'bob', 'the database defaults to the user name');
  });

  it('refuses to ask for the credential over plaintext when the listener requires TLS', LIMIT, async () => {
    const r = await psql(strict.port, 'disable');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FATAL: +Warden accepts credentials on this listener only over TLS/);
    assert.match(r.stderr, /sslmode=require/);
    const { error } = await strict.next();
    assert.equal(error?.code, '28000');
  });

  it(
    "answers SSLRequest with 'N' when no certificate is configured and continues in plaintext",
    LIMIT,
    async () => {
      const prefer = await psql(noTls.port, 'prefer');
      assert.equal(prefer.code, 0, prefer.stderr);
      assert.equal((await noTls.next()).hello?.kind, 'startup');
      const require = await psql(noTls.port, 'require');
      assert.match(require.stderr, /server does not support SSL/);
      assert.equal((await noTls.next()).error?.code, '08006', 'the client hung up after the refusal');
    },
  );
});
