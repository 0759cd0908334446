// Test fixtures for the client handshake: a server that runs acceptClient and then plays
// PostgreSQL for one query, real clients (psql), a raw TCP client and byte builders.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  acceptClient,
  type ClientHandshakeOptions,
  type ClientHello,
  type HandshakeError,
} from './client-handshake.js';
import {
  authenticationOk,
  Back,
  backendKeyData,
  Front,
  int16,
  int32,
  MessageFramer,
  message,
  parameterStatus,
  readNoticeFields,
  readQuery,
  readyForQuery,
} from './codec.js';

/** A throwaway self-signed certificate for localhost, written into `dir`. */
export function selfSignedContext(dir: string): tls.SecureContext {
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  const req = 'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost';
  execFileSync('openssl', [...req.split(' '), '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return tls.createSecureContext({ cert: readFileSync(cert), key: readFileSync(key) });
}

// ---- a tiny server that runs acceptClient and then plays PostgreSQL for one query ----------

export interface Outcome {
  hello?: ClientHello;
  error?: HandshakeError;
  /** 'data' listeners on the returned socket: any left over would swallow the caller's bytes. */
  dataListeners?: number;
  /** For a plain socket: listeners added and not removed by acceptClient. */
  addedListeners?: number;
  /** The first simple query the client sent after login. */
  query?: Promise<string>;
}

export interface TestServer {
  port: number;
  next(): Promise<Outcome>;
  close(): Promise<void>;
}

export async function startServer(opts: ClientHandshakeOptions): Promise<TestServer> {
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
export function serve(
  hello: Extract<ClientHello, { kind: 'startup' }>,
  onQuery: (text: string) => void,
): void {
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

export interface PsqlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function psql(port: number, sslmode: string, password = 'tok-psql'): Promise<PsqlResult> {
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
export class RawClient {
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

export function startupPacket(params: Record<string, string>, version = 196608): Buffer {
  const pairs = Object.entries(params).flat();
  const body = Buffer.concat([...pairs.map((p) => Buffer.from(`${p}\u0000`)), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(version, 4);
  return Buffer.concat([head, body]);
}

export function request(code: number, ...ints: number[]): Buffer {
  const b = Buffer.alloc(8 + ints.length * 4);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(code, 4);
  for (const [i, v] of ints.entries()) b.writeInt32BE(v, 8 + i * 4);
  return b;
}

export const passwordMessage = (p: string): Buffer => message(Front.PasswordMessage, p);
export const AUTH_CLEARTEXT = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);

/** The SQLSTATE and message of the single ErrorResponse in `bytes`. */
export function fatalIn(bytes: Buffer): { code?: string; message?: string; severity?: string } {
  const errors = new MessageFramer().push(bytes).filter((m) => m.type === Back.ErrorResponse);
  assert.equal(errors.length, 1, `one ErrorResponse in ${bytes.toString('hex')}`);
  const f = readNoticeFields(errors[0]!.body);
  return { code: f.get('C'), message: f.get('M'), severity: f.get('S') };
}

/** Generous: a hang should fail one test, not stall the run. */
export const LIMIT = { timeout: 20_000 };
