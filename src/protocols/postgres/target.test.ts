import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { watchNoDelay } from '../../testing/no-delay.js';
import { CA_PEM, preparePasswordAuth, ROLES } from '../../testing/pg-auth.js';
import { ADMIN_URL } from '../../testing/postgres.js';
import { selfSignedCert } from '../../testing/tls.js';
import {
  Back,
  Front,
  int32,
  MessageFramer,
  message,
  Reader,
  readNoticeFields,
  readyForQuery,
} from './codec.js';
import { SALTED } from './scram.js';
import { connectTarget, TargetError, type TargetOptions, type TargetSession } from './target.js';

const admin = new URL(ADMIN_URL);
const PG_HOST = admin.hostname;
const PG_PORT = Number(admin.port || 5432);

const opts = (o: Partial<TargetOptions> = {}): TargetOptions => ({
  host: PG_HOST,
  port: PG_PORT,
  database: 'postgres',
  user: 'postgres',
  password: null,
  tls: { mode: 'disable' },
  params: {},
  connectTimeoutMs: 5000,
  ...o,
});

/** Runs one simple Query on a connected target and returns the rows as text. */
function query(s: TargetSession, sql: string): Promise<Array<Array<string | null>>> {
  const framer = new MessageFramer();
  const rows: Array<Array<string | null>> = [];
  let error: string | null = null;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const m of framer.push(chunk)) {
        if (m.type === Back.DataRow) {
          const r = new Reader(m.body);
          const n = r.int16();
          const row: Array<string | null> = [];
          for (let i = 0; i < n; i++) {
            const len = r.int32();
            row.push(len < 0 ? null : r.bytes(len).toString('utf8'));
          }
          rows.push(row);
        } else if (m.type === Back.ErrorResponse) {
          error = readNoticeFields(m.body).get('M') ?? 'error';
        } else if (m.type === Back.ReadyForQuery) {
          s.socket.off('data', onData);
          s.socket.pause();
          if (error) reject(new Error(error));
          else resolve(rows);
        }
      }
    };
    s.socket.on('data', onData);
    s.socket.once('error', reject);
    if (s.rest.length > 0) onData(s.rest);
    s.socket.write(message(Front.Query, sql));
    s.socket.resume();
  });
}

function close(s: TargetSession): void {
  s.socket.end(message(Front.Terminate));
}

async function refused(o: TargetOptions, code: string): Promise<TargetError> {
  const err = await connectTarget(o).then(
    (s) => {
      close(s);
      throw new Error('connected, but should have been refused');
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof TargetError, String(err));
  assert.equal(err.code, code, err.message);
  return err;
}

/** A scripted stand-in server: `step` sees each chunk the client sends (one message per chunk on loopback). */
async function fakeServer(step: (sock: net.Socket, chunk: Buffer, n: number) => void): Promise<net.Server> {
  const server = net.createServer((sock) => {
    let n = 0;
    sock.on('error', () => {});
    sock.on('data', (chunk) => step(sock, chunk, n++));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;

describe('connecting to a PostgreSQL target', () => {
  before(async () => {
    await preparePasswordAuth();
  });

  it('logs in with trust, forwards client parameters but never user, database or replication', async () => {
    const s = await connectTarget(
      opts({
        params: {
          application_name: 'warden-target-test',
          DateStyle: 'SQL, DMY',
          user: 'intruder',
          database: 'template1',
          replication: 'database',
        },
      }),
    );
    try {
      assert.equal(s.authMethod, 'trust');
      assert.equal(s.transactionStatus, 'I');
      assert.ok(s.backendKey.pid > 0);
      assert.equal(s.rest.length, 0);
      assert.ok(!(s.socket instanceof tls.TLSSocket));
      const params = new Map(s.parameters);
      assert.equal(params.get('application_name'), 'warden-target-test');
      assert.equal(params.get('DateStyle'), 'SQL, DMY');
      assert.deepEqual(await query(s, 'show application_name'), [['warden-target-test']]);
      assert.deepEqual(await query(s, 'select current_user, current_database(), pg_backend_pid()::text'), [
        ['postgres', 'postgres', String(s.backendKey.pid)],
      ]);
    } finally {
      close(s);
    }
  });

  it('turns Nagle off (TCP_NODELAY) on the target socket, plain and under TLS', async () => {
    for (const tlsMode of ['disable', 'require'] as const) {
      const watch = watchNoDelay();
      try {
        const s = await connectTarget(opts({ tls: { mode: tlsMode } }));
        close(s);
        const toTarget = watch.calls.filter((call) => call.remotePort === PG_PORT);
        assert.deepEqual(
          toTarget.map((call) => call.noDelay),
          [true],
          `tls ${tlsMode}`,
        );
      } finally {
        watch.restore();
      }
    }
  });

  it('logs in with SCRAM-SHA-256 in plaintext', async () => {
    const s = await connectTarget(opts({ user: 'warden_scram', password: ROLES.scram }));
    try {
      assert.equal(s.authMethod, 'SCRAM-SHA-256');
      assert.deepEqual(await query(s, 'select current_user'), [['warden_scram']]);
    } finally {
      close(s);
    }
  });

  it('logs in again with the SCRAM key it derived at the first login, and PostgreSQL accepts it', async () => {
    const login = async () => {
      const s = await connectTarget(opts({ user: 'warden_scram', password: ROLES.scram }));
      try {
        assert.deepEqual(await query(s, 'select current_user'), [['warden_scram']]);
      } finally {
        close(s);
      }
    };
    await login();
    const before = SALTED.hits;
    await login();
    await login();
    assert.equal(SALTED.hits - before, 2, 'both later logins used the kept key');
  });

  it('logs in with SCRAM-SHA-256-PLUS over verified TLS, bound to the server certificate', async () => {
    const ca = readFileSync(CA_PEM, 'utf8');
    for (const server_name of [undefined, 'localhost']) {
      const s = await connectTarget(
        opts({ user: 'warden_scram', password: ROLES.scram, tls: { mode: 'verify-full', ca, server_name } }),
      );
      try {
        assert.equal(s.authMethod, 'SCRAM-SHA-256-PLUS');
        assert.ok(s.socket instanceof tls.TLSSocket);
        assert.deepEqual(await query(s, 'select ssl::text from pg_stat_ssl where pid = pg_backend_pid()'), [
          ['true'],
        ]);
      } finally {
        close(s);
      }
    }
  });

  it('encrypts without verifying under tls require', async () => {
    const s = await connectTarget(
      opts({ user: 'warden_scram', password: ROLES.scram, tls: { mode: 'require' } }),
    );
    try {
      assert.equal(s.authMethod, 'SCRAM-SHA-256-PLUS');
      assert.deepEqual(await query(s, 'select ssl::text from pg_stat_ssl where pid = pg_backend_pid()'), [
        ['true'],
      ]);
    } finally {
      close(s);
    }
  });

  it('logs in with MD5 and with a cleartext password', async () => {
    for (const [user, password, method] of [
      ['warden_md5', ROLES.md5, 'md5'],
      ['warden_clear', ROLES.clear, 'cleartext'],
    ] as const) {
      const s = await connectTarget(opts({ user, password }));
      try {
        assert.equal(s.authMethod, method);
        assert.deepEqual(await query(s, 'select current_user'), [[user]]);
      } finally {
        close(s);
      }
    }
  });

  it('reports a wrong password as 28P01 without ever repeating the password', async () => {
    for (const user of ['warden_scram', 'warden_md5', 'warden_clear']) {
      const password = `Wr0ng-${user}-s3cret`;
      const err = await refused(opts({ user, password }), '28P01');
      assert.equal(err.fields.get('C'), '28P01');
      assert.ok(!err.message.includes(password) && !err.stack?.includes(password), err.message);
      assert.ok(![...err.fields.values()].some((v) => v.includes(password)));
    }
  });

  it('says so when the server asks for a password the connection does not have', async () => {
    const err = await refused(opts({ user: 'warden_scram' }), '28000');
    assert.match(err.message, /asks for a password/);
  });

  it('reports an unknown database as 3D000 with the server fields', async () => {
    const err = await refused(opts({ database: 'warden_no_such_db' }), '3D000');
    assert.match(err.fields.get('M') ?? '', /warden_no_such_db/);
  });

  it('refuses a server certificate from another CA or for another name under verify-full', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-target-'));
    try {
      const other = readFileSync(selfSignedCert(dir, 'Some other CA').cert, 'utf8');
      const base = { user: 'warden_scram', password: ROLES.scram };
      const err = await refused(opts({ ...base, tls: { mode: 'verify-full', ca: other } }), '08001');
      assert.match(err.message, /TLS/);
      const ca = readFileSync(CA_PEM, 'utf8');
      const wrongName = await refused(
        opts({ ...base, tls: { mode: 'verify-full', ca, server_name: 'db.example.com' } }),
        '08001',
      );
      assert.match(wrongName.message, /db\.example\.com/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('connecting to a misbehaving or absent target', () => {
  const servers: net.Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });
  const serve = async (step: Parameters<typeof fakeServer>[0]) => {
    const s = await fakeServer(step);
    servers.push(s);
    return opts({ port: portOf(s), user: 'u', password: 'pw' });
  };

  it('fails with 08001 when TLS is required and the server answers N', async () => {
    const o = await serve((sock) => sock.write('N'));
    const err = await refused({ ...o, tls: { mode: 'require' } }, '08001');
    assert.match(err.message, /does not accept TLS/);
  });

  it('refuses bytes injected after the server accepts TLS', async () => {
    const o = await serve((sock) => sock.write(Buffer.concat([Buffer.from('S'), readyForQuery('I')])));
    await refused({ ...o, tls: { mode: 'require' } }, '08P01');
  });

  it('fails with 08001 fast when nothing listens on the port', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = portOf(probe);
    await new Promise((resolve) => probe.close(resolve));
    const started = Date.now();
    await refused(opts({ port, connectTimeoutMs: 2000 }), '08001');
    assert.ok(Date.now() - started < 2000);
  });

  it('gives up with 08001 within the timeout when the server never answers', async () => {
    const o = await serve(() => {});
    const started = Date.now();
    const err = await refused({ ...o, connectTimeoutMs: 300 }, '08001');
    assert.match(err.message, /timed out after 300 ms .*authentication/);
    assert.ok(Date.now() - started < 1500);
  });

  it('names an authentication method it does not support', async () => {
    const o = await serve((sock) => sock.write(message(Back.Authentication, int32(7))));
    const err = await refused(o, '28000');
    assert.match(err.message, /GSSAPI/);
  });

  it('refuses a SCRAM server that cannot prove it knows the password', async () => {
    for (const skipFinal of [false, true]) {
      const framer = new MessageFramer();
      const o = await serve((sock, chunk, n) => {
        if (n === 0) {
          sock.write(message(Back.Authentication, int32(10), 'SCRAM-SHA-256', ''));
          return;
        }
        const [m] = framer.push(chunk);
        const body = m!.body.toString('utf8');
        if (n === 1) {
          const nonce = /r=([^,]+)/.exec(body)![1];
          const first = `r=${nonce}impostor,s=${Buffer.from('salt').toString('base64')},i=4096`;
          sock.write(message(Back.Authentication, int32(11), Buffer.from(first)));
        } else if (skipFinal) {
          sock.write(Buffer.concat([message(Back.Authentication, int32(0)), readyForQuery('I')]));
        } else {
          const forged = `v=${Buffer.alloc(32, 7).toString('base64')}`;
          sock.write(message(Back.Authentication, int32(12), Buffer.from(forged)));
        }
      });
      const err = await refused(o, '28000');
      assert.match(err.message, skipFinal ? /skipped/ : /server signature/);
    }
  });

  it('refuses a SCRAM server that asks for 2^31-1 rounds instead of running them for minutes', async () => {
    const framer = new MessageFramer();
    const o = await serve((sock, chunk, n) => {
      if (n === 0) {
        sock.write(message(Back.Authentication, int32(10), 'SCRAM-SHA-256', ''));
        return;
      }
      const nonce = /r=([^,]+)/.exec(framer.push(chunk)[0]!.body.toString('utf8'))![1];
      const first = `r=${nonce}x,s=${Buffer.from('fresh salt').toString('base64')},i=2147483647`;
      sock.write(message(Back.Authentication, int32(11), Buffer.from(first)));
    });
    const before = SALTED.derivations;
    const err = await refused({ ...o, user: 'warden_scram', password: 'any' }, '28000');
    assert.match(err.message, /asks for 2147483647 SCRAM iterations, more than this client runs/);
    assert.equal(SALTED.derivations, before, 'no PBKDF2 started');
  });
});
