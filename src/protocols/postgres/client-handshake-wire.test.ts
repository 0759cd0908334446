import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import pg from 'pg';
import { watchNoDelay } from '../../testing/no-delay.js';
import {
  AUTH_CLEARTEXT,
  fatalIn,
  LIMIT,
  passwordMessage,
  RawClient,
  request,
  selfSignedContext,
  startServer,
  startupPacket,
  type TestServer,
} from './client-handshake.harness.js';
import { HandshakeError } from './client-handshake.js';
import { CANCEL_REQUEST, Front, GSSENC_REQUEST, int32, message, SSL_REQUEST } from './codec.js';

// The bytes no well-behaved driver sends: other request codes, old and newer protocol versions,
// garbage, stalls and hang-ups. Each must end in a FATAL (or a silent close) and a rejected promise.
describe('postgres client handshake on the wire', () => {
  let dir: string;
  let open: TestServer; // TLS offered, plaintext allowed
  let noTls: TestServer;
  let quick: TestServer; // 300 ms login timeout

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-pg-hs-'));
    const ctx = selfSignedContext(dir);
    open = await startServer({ tls: ctx, allowPlaintextPassword: true, loginTimeoutMs: 10_000 });
    noTls = await startServer({ allowPlaintextPassword: true, loginTimeoutMs: 10_000 });
    quick = await startServer({ tls: ctx, allowPlaintextPassword: true, loginTimeoutMs: 300 });
  });

  after(async () => {
    await Promise.all([open, noTls, quick].map((s) => s?.close()));
    rmSync(dir, { recursive: true, force: true });
  });

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

  it('turns Nagle off (TCP_NODELAY) on the client socket as soon as it is accepted', LIMIT, async () => {
    const watch = watchNoDelay();
    try {
      const c = new RawClient(noTls.port);
      c.socket.write(startupPacket({ user: 'dave' }));
      await c.waitFor(AUTH_CLEARTEXT.length);
      c.socket.destroy();
      await noTls.next();
      const accepted = watch.calls.filter((call) => call.localPort === noTls.port);
      assert.deepEqual(
        accepted.map((call) => call.noDelay),
        [true],
      );
    } finally {
      watch.restore();
    }
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
      const overCap = Buffer.alloc(8);
      overCap.writeInt32BE(10_001, 0);
      overCap.writeInt32BE(196608, 4);
      const http = Buffer.from('GET / HTTP/1.1\r\nHost: warden\r\n\r\n');
      const noise = Buffer.from('7f3a9c01d2e4b5a6978812ff00aa55cc', 'hex');
      const badLayout = startupPacket({ user: 'x' }).subarray(0, -1);
      badLayout.writeInt32BE(badLayout.length, 0);
      for (const bytes of [zeroLength, oneGiB, overCap, http, noise, badLayout]) {
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

  it(
    'accepts direct TLS (no SSLRequest) only when the client negotiates ALPN postgresql',
    LIMIT,
    async () => {
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

      const noAlpn = tls.connect({ host: '127.0.0.1', port: open.port, rejectUnauthorized: false });
      noAlpn.on('error', () => {});
      await new Promise((resolve) => noAlpn.once('close', resolve));
      assert.equal((await open.next()).error?.code, '08P01');
    },
  );

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
