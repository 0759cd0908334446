import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import pg from 'pg';
import {
  acceptClient,
  type ClientHandshakeOptions,
  type ClientHello,
  HandshakeError,
} from './client-handshake.js';
import {
  authenticationOk,
  Back,
  backendKeyData,
  CANCEL_REQUEST,
  Front,
  GSSENC_REQUEST,
  int16,
  int32,
  MessageFramer,
  message,
  parameterStatus,
  readNoticeFields,
  readQuery,
  readyForQuery,
  SSL_REQUEST,
} from './codec.js';

// ---- a tiny server that runs acceptClient and then plays PostgreSQL for one query ----------

interface Outcome {
  hello?: ClientHello;
  error?: HandshakeError;
  /** 'data' listeners on the returned socket: any left over would swallow the caller's bytes. */
  dataListeners?: number;
  /** For a plain socket: listeners added and not removed by acceptClient. */
  addedListeners?: number;
  /** The first simple query the client sent after login. */
  query?: Promise<string>;
}

interface TestServer {
  port: number;
  next(): Promise<Outcome>;
  close(): Promise<void>;
}

async function startServer(opts: ClientHandshakeOptions): Promise<TestServer> {
  const outcomes: Outcome[] = [];
  const waiters: Array<(o: Outcome) => void> = [];
  const push = (o: Outcome): void => {
    const w = waiters.shift();
    if (w) w(o);
    else outcomes.push(o);
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const count = (s: net.Socket): number =>
      ['data', 'end', 'close', 'error'].reduce((n, e) => n + s.listenerCount(e), 0);
    const before = count(socket);
    acceptClient(socket, opts).then(
      (hello) => {
        const s = hello.kind === 'startup' ? hello.socket : socket;
        const outcome: Outcome = { hello, dataListeners: s.listenerCount('data') };
        if (s === socket) outcome.addedListeners = count(socket) - before;
        if (hello.kind === 'startup') outcome.query = new Promise((resolve) => serve(hello, resolve));
        else socket.destroy();
        push(outcome);
      },
      (error: HandshakeError) => push({ error }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => {
      const o = outcomes.shift();
      return o ? Promise.resolve(o) : new Promise((resolve) => waiters.push(resolve));
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Finishes the login the way the caller of acceptClient will, then answers one simple query. */
function serve(hello: Extract<ClientHello, { kind: 'startup' }>, onQuery: (text: string) => void): void {
  const s = hello.socket;
  s.on('error', () => {});
  s.write(
    Buffer.concat([
      authenticationOk(),
      parameterStatus('server_version', '15.0'),
      parameterStatus('client_encoding', 'UTF8'),
      backendKeyData(4242, 77),
      readyForQuery('I'),
    ]),
  );
  const framer = new MessageFramer();
  const onData = (chunk: Buffer): void => {
    for (const m of framer.push(chunk)) {
      if (m.type === Front.Terminate) s.end();
      if (m.type !== Front.Query) continue;
      onQuery(readQuery(m.body));
      s.write(
        Buffer.concat([
          message(
            Back.RowDescription,
            int16(1),
            '?column?',
            int32(0),
            int16(0),
            int32(23),
            int16(4),
            int32(-1),
            int16(0),
          ),
          message(Back.DataRow, int16(1), int32(1), Buffer.from('1')),
          message(Back.CommandComplete, 'SELECT 1'),
          readyForQuery('I'),
        ]),
      );
    }
  };
  if (hello.rest.length > 0) onData(hello.rest);
  s.on('data', onData);
  s.resume();
}

// ---- clients ------------------------------------------------------------------------------

interface PsqlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function psql(port: number, sslmode: string, password = 'tok-psql'): Promise<PsqlResult> {
  const args = [
    '-X',
    '-w',
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'alice',
    '-d',
    'mydb',
    '-c',
    'select 1',
  ];
  const child = spawn('psql', args, {
    env: { PATH: process.env.PATH, PGPASSWORD: password, PGSSLMODE: sslmode, PGCONNECT_TIMEOUT: '10' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A raw TCP client for the bytes no well-behaved driver sends. */
class RawClient {
  readonly socket: net.Socket;
  private received = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  readonly closed: Promise<Buffer>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve(this.received)));
  }

  /** Resolves once at least `n` bytes have arrived in total (or the socket closed). */
  async waitFor(n: number): Promise<Buffer> {
    while (this.received.length < n && !this.socket.destroyed) {
      await Promise.race([new Promise<void>((r) => (this.waiter = r)), this.closed]);
    }
    return this.received;
  }
}

function startupPacket(params: Record<string, string>, version = 196608): Buffer {
  const pairs = Object.entries(params).flat();
  const body = Buffer.concat([...pairs.map((p) => Buffer.from(`${p}\u0000`)), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(version, 4);
  return Buffer.concat([head, body]);
}

function request(code: number, ...ints: number[]): Buffer {
  const b = Buffer.alloc(8 + ints.length * 4);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(code, 4);
  for (const [i, v] of ints.entries()) b.writeInt32BE(v, 8 + i * 4);
  return b;
}

const passwordMessage = (p: string): Buffer => message(Front.PasswordMessage, p);
const AUTH_CLEARTEXT = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);

/** The SQLSTATE and message of the single ErrorResponse in `bytes`. */
function fatalIn(bytes: Buffer): { code?: string; message?: string; severity?: string } {
  const errors = new MessageFramer().push(bytes).filter((m) => m.type === Back.ErrorResponse);
  assert.equal(errors.length, 1, `one ErrorResponse in ${bytes.toString('hex')}`);
  const f = readNoticeFields(errors[0]!.body);
  return { code: f.get('C'), message: f.get('M'), severity: f.get('S') };
}

/** Generous: a hang should fail one test, not stall the run. */
const LIMIT = { timeout: 20_000 };

// ---- tests --------------------------------------------------------------------------------

describe('postgres client handshake', () => {
  let dir: string;
  let ctx: tls.SecureContext;
  let open: TestServer; // TLS offered, plaintext allowed
  let strict: TestServer; // TLS offered, plaintext refused
  let noTls: TestServer;
  let quick: TestServer; // 300 ms login timeout

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-pg-hs-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
      ].concat(['-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    ctx = tls.createSecureContext({
      cert: readFileSync(join(dir, 'cert.pem')),
      key: readFileSync(join(dir, 'key.pem')),
    });
    open = await startServer({ tls: ctx, allowPlaintextPassword: true, loginTimeoutMs: 10_000 });
    strict = await startServer({ tls: ctx, allowPlaintextPassword: false, loginTimeoutMs: 10_000 });
    noTls = await startServer({ allowPlaintextPassword: true, loginTimeoutMs: 10_000 });
    quick = await startServer({ tls: ctx, allowPlaintextPassword: true, loginTimeoutMs: 300 });
  });

  after(async () => {
    await Promise.all([open, strict, noTls, quick].map((s) => s?.close()));
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

  it("answers GSSENCRequest with 'N' and accepts the startup packet that follows", LIMIT, async () => {
    const c = new RawClient(noTls.port);
    c.socket.write(request(GSSENC_REQUEST));
    assert.equal((await c.waitFor(1)).toString('latin1', 0, 1), 'N');
    c.socket.write(startupPacket({ user: 'carol' }));
    assert.deepEqual((await c.waitFor(1 + AUTH_CLEARTEXT.length)).subarray(1), AUTH_CLEARTEXT);
    c.socket.write(passwordMessage('tok-carol'));
    const { hello } = await noTls.next();
    assert.ok(hello?.kind === 'startup');
    assert.deepEqual(hello.params, { user: 'carol', database: 'carol' });
    c.socket.destroy();
  });

  it('parses a CancelRequest without answering it', LIMIT, async () => {
    const c = new RawClient(open.port);
    c.socket.write(request(CANCEL_REQUEST, 4242, -559038737));
    const { hello } = await open.next();
    assert.deepEqual(hello, { kind: 'cancel', pid: 4242, secret: -559038737 });
    assert.equal((await c.closed).length, 0);
  });

  it('refuses protocol 2.0 with the old-style error PostgreSQL sends such clients', LIMIT, async () => {
    const c = new RawClient(open.port);
    const v2 = Buffer.alloc(296);
    v2.writeInt32BE(296, 0);
    v2.writeInt32BE(0x00020000, 4);
    v2.write('alice', 8);
    c.socket.write(v2);
    const got = await c.closed;
    assert.equal(got.toString('latin1', 0, 1), 'E');
    assert.match(
      got.toString('utf8'),
      /FATAL: {2}unsupported frontend protocol 2\.0: server supports 3\.0 to 3\.0\n\0$/,
    );
    assert.equal((await open.next()).error?.code, '0A000');
  });

  it(
    'answers a 3.1 startup with NegotiateProtocolVersion listing unknown _pq_ options, then continues',
    LIMIT,
    async () => {
      const c = new RawClient(open.port);
      c.socket.write(startupPacket({ user: 'dave', '_pq_.compression': 'on' }, 0x00030001));
      const expected = message(0x76, int32(196608), int32(1), '_pq_.compression');
      const got = await c.waitFor(expected.length + AUTH_CLEARTEXT.length);
      assert.deepEqual(got, Buffer.concat([expected, AUTH_CLEARTEXT]));
      c.socket.write(passwordMessage('tok-dave'));
      const { hello } = await open.next();
      assert.ok(hello?.kind === 'startup');
      assert.deepEqual(hello.params, { user: 'dave', database: 'dave' });
      c.socket.destroy();
    },
  );
  it(
    'answers garbage with a FATAL protocol violation, closes, and keeps serving the next client',
    LIMIT,
    async () => {
      const zeroLength = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]);
      const oneGiB = request(0x40000000);
      oneGiB.writeInt32BE(0x40000000, 0);
      const http = Buffer.from('GET / HTTP/1.1\r\nHost: warden\r\n\r\n');
      const noise = Buffer.from('7f3a9c01d2e4b5a6978812ff00aa55cc', 'hex');
      const badLayout = startupPacket({ user: 'x' }).subarray(0, -1);
      badLayout.writeInt32BE(badLayout.length, 0);
      for (const bytes of [zeroLength, oneGiB, http, noise, badLayout]) {
        const c = new RawClient(open.port);
        c.socket.write(bytes);
        const f = fatalIn(await c.closed);
        assert.deepEqual([f.severity, f.code], ['FATAL', '08P01'], bytes.toString('hex'));
        assert.equal((await open.next()).error?.code, '08P01');
      }
      const client = new pg.Client({ host: '127.0.0.1', port: open.port, user: 'alice', password: 'tok' });
      await client.connect();
      await client.end();
      assert.equal((await open.next()).hello?.kind, 'startup');
    },
  );

  it('refuses plaintext bytes sent behind an SSLRequest before the TLS handshake', LIMIT, async () => {
    const c = new RawClient(open.port);
    c.socket.write(Buffer.concat([request(SSL_REQUEST), startupPacket({ user: 'mallory' })]));
    const f = fatalIn(await c.closed);
    assert.equal(f.message, 'received unencrypted data after SSL request');
    assert.equal((await open.next()).error?.code, '08P01');
  });

  it(
    'refuses a startup packet without user, an empty password and a non-password message',
    LIMIT,
    async () => {
      const noUser = new RawClient(open.port);
      noUser.socket.write(startupPacket({ database: 'mydb' }));
      assert.equal(
        fatalIn(await noUser.closed).message,
        'no PostgreSQL user name specified in startup packet',
      );
      assert.equal((await open.next()).error?.code, '28000');

      const empty = new RawClient(open.port);
      empty.socket.write(startupPacket({ user: 'alice' }));
      await empty.waitFor(AUTH_CLEARTEXT.length);
      empty.socket.write(passwordMessage(''));
      assert.equal(fatalIn((await empty.closed).subarray(AUTH_CLEARTEXT.length)).code, '28P01');
      assert.equal((await open.next()).error?.code, '28P01');

      const query = new RawClient(open.port);
      query.socket.write(startupPacket({ user: 'alice' }));
      await query.waitFor(AUTH_CLEARTEXT.length);
      query.socket.write(message(Front.Query, 'select 1'));
      const f = fatalIn((await query.closed).subarray(AUTH_CLEARTEXT.length));
      assert.equal(f.message, 'expected password response, got message type "Q"');
      assert.equal((await open.next()).error?.code, '08P01');
    },
  );

  it('returns the bytes a client pipelined after its password in rest', LIMIT, async () => {
    const c = new RawClient(open.port);
    c.socket.write(startupPacket({ user: 'erin', database: 'orders' }));
    await c.waitFor(AUTH_CLEARTEXT.length);
    const pipelined = message(Front.Query, 'select 1');
    c.socket.write(Buffer.concat([passwordMessage('tok-erin'), pipelined]));
    const { hello, query } = await open.next();
    assert.ok(hello?.kind === 'startup');
    assert.deepEqual(hello.rest, pipelined);
    assert.equal(await query, 'select 1', 'the server answered the pipelined query');
    c.socket.destroy();
  });

  it('accepts direct TLS (no SSLRequest) when the client negotiates ALPN postgresql', LIMIT, async () => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: open.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['postgresql'],
    });
    s.on('error', () => {});
    await new Promise((resolve) => s.once('secureConnect', resolve));
    s.write(Buffer.concat([startupPacket({ user: 'frank' })]));
    await new Promise((resolve) => s.once('data', resolve));
    s.write(passwordMessage('tok-frank'));
    const { hello } = await open.next();
    assert.ok(hello?.kind === 'startup');
    assert.equal(hello.tls, true);
    assert.equal(hello.password, 'tok-frank');
    s.destroy();
  });

  it('cancels a login that stalls, before and after the startup packet', LIMIT, async () => {
    const silent = new RawClient(quick.port);
    const f = fatalIn(await silent.closed);
    assert.deepEqual([f.code, f.message], ['57014', 'canceling authentication due to timeout']);
    assert.equal((await quick.next()).error?.code, '57014');

    const halfway = new RawClient(quick.port);
    halfway.socket.write(startupPacket({ user: 'alice' }));
    await halfway.waitFor(AUTH_CLEARTEXT.length);
    halfway.socket.write(passwordMessage('tok').subarray(0, 4));
    assert.equal(fatalIn((await halfway.closed).subarray(AUTH_CLEARTEXT.length)).code, '57014');
    assert.equal((await quick.next()).error?.code, '57014');

    const tlsStall = new RawClient(quick.port);
    tlsStall.socket.write(request(SSL_REQUEST));
    assert.equal((await tlsStall.closed).toString('latin1'), 'S', 'nothing in plaintext after the S');
    assert.equal((await quick.next()).error?.code, '57014');
  });

  it('rejects without a FATAL when the client disconnects mid-handshake', LIMIT, async () => {
    const c = new RawClient(open.port);
    c.socket.write(startupPacket({ user: 'alice' }));
    await c.waitFor(AUTH_CLEARTEXT.length);
    c.socket.resetAndDestroy();
    const { error } = await open.next();
    assert.ok(error instanceof HandshakeError);
    assert.equal(error.code, '08006');
  });
});
