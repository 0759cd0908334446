// Warden as a client of the real PostgreSQL server: opens the connection (TCP, optional TLS), logs in
// with the credentials the connection record holds, and hands back a socket that is ready for queries.
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import {
  Back,
  CANCEL_REQUEST,
  Front,
  int32,
  message,
  PROTOCOL_V3,
  ProtocolError,
  Reader,
  readNoticeFields,
  SSL_REQUEST,
} from './codec.js';
import { MessageQueue } from './message-queue.js';
import {
  type ChannelBinding,
  SCRAM_SHA_256,
  SCRAM_SHA_256_PLUS,
  ScramClient,
  ScramError,
  tlsServerEndPoint,
} from './scram.js';

export interface TargetOptions {
  host: string;
  port: number;
  database: string;
  user: string;
  /** Never logged, never put in an error message. */
  password: string | null;
  /** `require` encrypts without checking who answers; `verify-full` checks the chain against `ca` and the name. */
  tls: { mode: 'disable' | 'require' | 'verify-full'; ca?: string; server_name?: string };
  /** Startup parameters forwarded from the client (application_name, client_encoding, DateStyle, options, …). */
  params: Record<string, string>;
  /** Limit for the whole connect, TLS and login; default 10 s. */
  connectTimeoutMs?: number;
}

export type TargetAuthMethod =
  | 'trust'
  | 'cleartext'
  | 'md5'
  | typeof SCRAM_SHA_256
  | typeof SCRAM_SHA_256_PLUS;

export interface TargetSession {
  /** Paused, with no listeners of ours left: attach 'data' and 'error' handlers, then resume(). */
  socket: net.Socket | tls.TLSSocket;
  /** ParameterStatus values the server sent during startup, in order (forward them to the client). */
  parameters: Array<[string, string]>;
  backendKey: { pid: number; secret: number };
  transactionStatus: 'I' | 'T' | 'E';
  /** How the server let us in, for the session record. */
  authMethod: TargetAuthMethod;
  /** Bytes already received after ReadyForQuery (normally empty). */
  rest: Buffer;
}

/** Why a target connection failed: the server's ErrorResponse fields when it sent one. */
export class TargetError extends Error {
  override name = 'TargetError';
  constructor(
    message: string,
    /** SQLSTATE: the server's, or 08001 (could not connect), 08006 (connection lost), 08P01, 28000. */
    readonly code: string,
    readonly fields: Map<string, string> = new Map(),
  ) {
    super(message);
  }
}

const NEGOTIATE_PROTOCOL_VERSION = 0x76; // 'v'
/** The connection record decides these, never the client; protocol extensions are negotiated per hop. */
const NOT_FORWARDED = new Set(['user', 'database', 'replication']);
const UNSUPPORTED_AUTH: Record<number, string> = {
  2: 'Kerberos V5',
  6: 'SCM credentials',
  7: 'GSSAPI',
  8: 'GSSAPI',
  9: 'SSPI',
};

export async function connectTarget(o: TargetOptions): Promise<TargetSession> {
  const timeoutMs = o.connectTimeoutMs ?? 10_000;
  const where = `${o.host}:${o.port}`;
  const attempt: Attempt = { phase: 'TCP connect' };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TargetError(
            `timed out after ${timeoutMs} ms connecting to ${where} (${attempt.phase})`,
            '08001',
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([handshake(o, attempt), deadline]);
  } catch (err) {
    if (attempt.socket) {
      attempt.socket.on('error', () => {}); // late errors of an abandoned socket are expected
      attempt.socket.destroy();
    }
    throw asTargetError(err, where);
  } finally {
    clearTimeout(timer);
  }
}

interface Attempt {
  phase: string;
  socket?: net.Socket;
}

async function handshake(o: TargetOptions, attempt: Attempt): Promise<TargetSession> {
  const startup = startupMessage(o); // first, so a bad parameter fails before any network traffic
  let socket: net.Socket = await openTcp(o, attempt);
  if (o.tls.mode !== 'disable') {
    attempt.phase = 'TLS negotiation';
    socket = await startTls(socket, o);
    attempt.socket = socket;
  }
  attempt.phase = 'authentication';
  const inbox = new MessageQueue(socket, (err) =>
    err
      ? new TargetError(`connection to ${o.host}:${o.port} lost: ${err.message}`, '08006')
      : new TargetError(`${o.host}:${o.port} closed the connection during startup`, '08006'),
  );
  socket.write(startup);
  const authMethod = await authenticate(inbox, socket, o);
  attempt.phase = 'startup';
  const parameters: Array<[string, string]> = [];
  let backendKey = { pid: 0, secret: 0 };
  for (;;) {
    const m = await inbox.next();
    const r = new Reader(m.body);
    switch (m.type) {
      case Back.ParameterStatus:
        parameters.push([r.cstring(), r.cstring()]);
        break;
      case Back.BackendKeyData:
        backendKey = { pid: r.int32(), secret: r.int32() };
        break;
      case Back.NoticeResponse:
      case NEGOTIATE_PROTOCOL_VERSION:
        break;
      case Back.ErrorResponse:
        throw serverError(m.body);
      case Back.ReadyForQuery: {
        const status = String.fromCharCode(r.bytes(1)[0]!);
        if (status !== 'I' && status !== 'T' && status !== 'E') {
          throw new ProtocolError(`ReadyForQuery with unknown status ${JSON.stringify(status)}`);
        }
        return {
          socket,
          parameters,
          backendKey,
          transactionStatus: status,
          authMethod,
          rest: inbox.detach(),
        };
      }
      default:
        throw new ProtocolError(`unexpected message ${typeName(m.type)} during startup`);
    }
  }
}

function startupMessage(o: TargetOptions): Buffer {
  const pairs: Array<[string, string]> = [
    ['user', o.user],
    ['database', o.database],
  ];
  for (const [k, v] of Object.entries(o.params)) {
    if (!NOT_FORWARDED.has(k.toLowerCase()) && !k.startsWith('_pq_.')) pairs.push([k, v]);
  }
  for (const [k, v] of pairs) {
    if (k.includes('\0') || v.includes('\0')) {
      throw new TargetError(`startup parameter ${JSON.stringify(k)} contains a NUL byte`, '08001');
    }
  }
  const body = Buffer.from(`${pairs.map(([k, v]) => `${k}\0${v}\0`).join('')}\0`, 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(PROTOCOL_V3, 4);
  return Buffer.concat([head, body]);
}

function openTcp(o: TargetOptions, attempt: Attempt): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: o.host, port: o.port });
    attempt.socket = socket;
    const refused = (err: Error) =>
      reject(new TargetError(`could not connect to ${o.host}:${o.port}: ${err.message}`, '08001'));
    socket.once('error', refused);
    socket.once('connect', () => {
      socket.off('error', refused);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

async function startTls(socket: net.Socket, o: TargetOptions): Promise<tls.TLSSocket> {
  const where = `${o.host}:${o.port}`;
  const request = Buffer.alloc(8);
  request.writeInt32BE(8, 0);
  request.writeInt32BE(SSL_REQUEST, 4);
  socket.write(request);
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const fail = (err?: Error) =>
      reject(
        new TargetError(
          `${where} closed the connection during the TLS request${err ? `: ${err.message}` : ''}`,
          '08006',
        ),
      );
    const closed = () => fail();
    socket.once('error', fail);
    socket.once('close', closed);
    socket.once('data', (chunk: Buffer) => {
      socket.off('error', fail);
      socket.off('close', closed);
      resolve(chunk);
    });
  });
  if (answer[0] === 0x4e /* N */) {
    throw new TargetError(`${where} does not accept TLS, but tls mode is ${o.tls.mode}`, '08001');
  }
  if (answer[0] !== 0x53 /* S */)
    throw new TargetError(`${where} answered the TLS request with garbage`, '08P01');
  // Bytes after 'S' were sent before encryption started: an attacker's injection (CVE-2021-23222).
  if (answer.length > 1) throw new TargetError(`${where} sent unencrypted data after accepting TLS`, '08P01');

  const verify = o.tls.mode === 'verify-full';
  const name = o.tls.server_name ?? o.host;
  const secure = tls.connect({
    socket,
    // SNI carries host names only (RFC 6066); an IP is still checked against the certificate below.
    ...(net.isIP(name) ? {} : { servername: name }),
    rejectUnauthorized: verify,
    ...(verify && o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
    checkServerIdentity: verify ? (_host, cert) => tls.checkServerIdentity(name, cert) : () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) =>
      reject(new TargetError(`TLS with ${where} failed: ${err.message}`, '08001'));
    secure.once('error', failed);
    secure.once('secureConnect', () => {
      secure.off('error', failed);
      resolve();
    });
  });
  return secure;
}

async function authenticate(
  inbox: MessageQueue,
  socket: net.Socket,
  o: TargetOptions,
): Promise<TargetAuthMethod> {
  let method: TargetAuthMethod = 'trust';
  let scram: ScramClient | null = null;
  let scramVerified = false;
  const password = (why: string): string => {
    if (o.password === null) {
      throw new TargetError(
        `${o.host}:${o.port} asks for a password (${why}) but the connection has none`,
        '28000',
      );
    }
    return o.password;
  };
  for (;;) {
    const m = await inbox.next();
    if (m.type === Back.ErrorResponse) throw serverError(m.body);
    if (m.type === NEGOTIATE_PROTOCOL_VERSION) continue;
    if (m.type !== Back.Authentication) {
      throw new ProtocolError(`expected an authentication request, got ${typeName(m.type)}`);
    }
    const r = new Reader(m.body);
    const code = r.int32();
    switch (code) {
      case 0:
        // Without the server's final SCRAM message it never proved it knows the password.
        if (scram && !scramVerified) throw new ScramError('server skipped the end of the SCRAM exchange');
        return method;
      case 3:
        method = 'cleartext';
        socket.write(message(Front.PasswordMessage, password('cleartext')));
        break;
      case 5: {
        method = 'md5';
        const salt = r.bytes(4);
        const inner = md5Hex(Buffer.from(password('md5') + o.user, 'utf8'));
        socket.write(
          message(Front.PasswordMessage, `md5${md5Hex(Buffer.concat([Buffer.from(inner), salt]))}`),
        );
        break;
      }
      case 10: {
        const offered: string[] = [];
        for (let mech = r.cstring(); mech !== ''; mech = r.cstring()) offered.push(mech);
        scram = new ScramClient({
          password: password('SCRAM'),
          channelBinding: channelBinding(socket, offered),
        });
        if (!offered.includes(scram.mechanism)) {
          throw new TargetError(
            `${o.host}:${o.port} offers only unsupported SASL mechanisms: ${offered.join(', ')}`,
            '28000',
          );
        }
        method = scram.mechanism === SCRAM_SHA_256_PLUS ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256;
        const first = Buffer.from(scram.clientFirst(), 'utf8');
        socket.write(message(Front.PasswordMessage, scram.mechanism, int32(first.length), first));
        break;
      }
      case 11:
        if (!scram) throw new ProtocolError('SASL continue without a SASL exchange');
        socket.write(message(Front.PasswordMessage, Buffer.from(await scram.clientFinal(rest(r)), 'utf8')));
        break;
      case 12:
        if (!scram) throw new ProtocolError('SASL final without a SASL exchange');
        scram.verifyServerFinal(rest(r));
        scramVerified = true;
        break;
      default:
        throw new TargetError(
          `${o.host}:${o.port} asks for ${UNSUPPORTED_AUTH[code] ?? `authentication method ${code}`}, which Warden does not support`,
          '28000',
        );
    }
  }
}

/** Bind to the certificate when we can; libpq does the same under channel_binding=prefer. */
function channelBinding(socket: net.Socket, offered: string[]): ChannelBinding {
  if (!(socket instanceof tls.TLSSocket)) return { kind: 'none' };
  const cert = socket.getPeerX509Certificate();
  const data = cert ? tlsServerEndPoint(cert.raw) : null;
  if (!data) return { kind: 'none' };
  return offered.includes(SCRAM_SHA_256_PLUS) ? { kind: 'bound', data } : { kind: 'not-offered' };
}

const rest = (r: Reader): string => r.bytes(r.remaining).toString('utf8');
const md5Hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const typeName = (t: number): string => JSON.stringify(String.fromCharCode(t));

function serverError(body: Buffer): TargetError {
  const fields = readNoticeFields(body);
  const text = fields.get('M') ?? 'unknown error';
  return new TargetError(`the target refused the connection: ${text}`, fields.get('C') ?? '08006', fields);
}

function asTargetError(err: unknown, where: string): TargetError {
  if (err instanceof TargetError) return err;
  if (err instanceof ScramError)
    return new TargetError(`SCRAM with ${where} failed: ${err.message}`, '28000');
  if (err instanceof ProtocolError)
    return new TargetError(`${where} broke the protocol: ${err.message}`, '08P01');
  return new TargetError(
    `connection to ${where} failed: ${err instanceof Error ? err.message : String(err)}`,
    '08006',
  );
}

/**
 * Asks the target to cancel what its backend `key` is running: a CancelRequest on a connection
 * of its own (the protocol's only way). `done` runs once the target closed that connection, which
 * PostgreSQL does after it signalled the backend, or once the attempt failed or took over 5 s.
 */
export function cancelTarget(
  address: { host: string; port: number },
  key: { pid: number; secret: number },
  done?: () => void,
): void {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST, 4);
  packet.writeInt32BE(key.pid, 8);
  packet.writeInt32BE(key.secret, 12);
  const s = net.connect({ host: address.host, port: address.port }, () => s.end(packet));
  s.setTimeout(5_000, () => s.destroy());
  s.on('error', () => undefined);
  if (done) s.once('close', done);
}
