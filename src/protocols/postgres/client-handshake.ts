// Warden as a PostgreSQL server during startup: negotiates TLS, reads the startup packet (or a
// cancel request) and asks for the caller's credential as a cleartext password, nothing more.
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import {
  authenticationCleartextPassword,
  CANCEL_REQUEST,
  errorResponse,
  Front,
  GSSENC_REQUEST,
  MessageFramer,
  negotiateProtocolVersion,
  PROTOCOL_V3,
  ProtocolError,
  Reader,
  readStartupParams,
  SSL_REQUEST,
} from './codec.js';

export interface ClientHandshakeOptions {
  /** When set, SSLRequest is answered 'S' and the socket upgraded; otherwise 'N'. */
  tls?: SecureContext;
  /** Allow asking for a cleartext password over a non-TLS socket (loopback-only listeners or explicit config). */
  allowPlaintextPassword: boolean;
  /** The whole handshake must finish within this (default 60 s, like authentication_timeout). */
  loginTimeoutMs?: number;
  /** Cap for the startup packet (default 10 000 bytes, like PostgreSQL). */
  maxStartupBytes?: number;
}

export type ClientHello =
  | {
      kind: 'startup';
      /** The channel to keep talking on: the TLS socket after an upgrade. Paused, no listeners of ours. */
      socket: Socket | TLSSocket;
      tls: boolean;
      /** user, database (defaults to user), application_name, options, … without `_pq_.` options. */
      params: Record<string, string>;
      password: string;
      /** Bytes the client already sent after the password message. */
      rest: Buffer;
    }
  | { kind: 'cancel'; pid: number; secret: number };

/**
 * A `replication` startup value asking PostgreSQL for a walsender, as PostgreSQL reads it: a true
 * boolean (physical) or `database` (logical). Anything else opens a normal session there too.
 */
const REPLICATION = /^(database|t|tr|tru|true|y|ye|yes|on|1)$/i;

/** A refused or failed handshake. A FATAL has been sent when the channel allowed it; the socket is closed. */
export class HandshakeError extends Error {
  override name = 'HandshakeError';
  constructor(
    /** SQLSTATE. */
    readonly code: string,
    message: string,
    readonly detail?: string,
    /** False when the client must not (or cannot) get an ErrorResponse. */
    readonly tell = true,
  ) {
    super(message);
  }
}

const DEFAULT_LOGIN_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_STARTUP = 10_000;
/** PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: a bearer token fits, a flood does not. */
const MAX_PASSWORD_MESSAGE = 65_535;
/** How long a FATAL gets to reach a client that does not read before the socket is destroyed. */
const CLOSE_GRACE_MS = 2_000;
const TLS_RECORD_HANDSHAKE = 0x16;

/**
 * Runs the startup phase on a fresh connection. Resolves with the startup parameters and the
 * password (the caller verifies it and writes AuthenticationOk itself), or with a cancel request.
 * Rejects with HandshakeError after answering FATAL and closing the socket.
 */
export async function acceptClient(socket: Socket, opts: ClientHandshakeOptions): Promise<ClientHello> {
  socket.setNoDelay(true);
  const hs = new Handshake(socket, opts);
  try {
    const hello = await hs.run();
    hs.dispose();
    return hello;
  } catch (e) {
    hs.dispose();
    const err = asHandshakeError(e);
    hs.close(err);
    throw err;
  }
}

/** Sends a FATAL ErrorResponse and closes the socket once it is flushed. */
export function sendFatal(socket: Socket, code: string, message: string, detail?: string): void {
  closeWith(socket, errorResponse({ severity: 'FATAL', code, message, detail }));
}

function closeWith(socket: Socket, bytes: Buffer | undefined): void {
  // The socket is going away; a late ECONNRESET must not become an uncaught 'error'.
  socket.on('error', () => {});
  if (bytes === undefined || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const grace = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  socket.once('close', () => clearTimeout(grace));
  socket.end(bytes, () => socket.destroy());
}

function asHandshakeError(e: unknown): HandshakeError {
  if (e instanceof HandshakeError) return e;
  if (e instanceof ProtocolError) return new HandshakeError('08P01', e.message);
  return new HandshakeError('08P01', e instanceof Error ? e.message : String(e));
}

/** One connection's startup, as a small state machine over a buffer fed by 'data' events. */
class Handshake {
  private channel: Socket;
  /** False between answering 'S' and the end of the TLS handshake: no plaintext may be written then. */
  private channelUsable = true;
  private tls = false;
  /** Protocol major version the client asked for; a pre-3 client gets errors in the old format. */
  private major = 3;
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private failure: HandshakeError | undefined;
  private abort: (e: HandshakeError) => void = () => {};
  private readonly aborted: Promise<never>;
  private readonly timer: NodeJS.Timeout;
  private readonly maxStartup: number;

  constructor(
    socket: Socket,
    private readonly opts: ClientHandshakeOptions,
  ) {
    this.channel = socket;
    this.maxStartup = opts.maxStartupBytes ?? DEFAULT_MAX_STARTUP;
    this.aborted = new Promise<never>((_, reject) => {
      this.abort = reject;
    });
    // Nobody may be awaiting when the abort happens; the rejection is observed through race().
    this.aborted.catch(() => {});
    // PostgreSQL only logs this one (57014) because it cannot write from its signal handler;
    // Warden can, and a client that wakes up should learn why it was dropped.
    this.timer = setTimeout(
      () => this.fail(new HandshakeError('57014', 'canceling authentication due to timeout')),
      opts.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS,
    );
    this.attach(socket);
    if (socket.destroyed) this.onGone();
  }

  async run(): Promise<ClientHello> {
    let sslDone = false;
    let gssDone = false;
    for (;;) {
      if (!this.tls && this.opts.tls && !sslDone && (await this.peekByte()) === TLS_RECORD_HANDSHAKE) {
        await this.upgrade(this.opts.tls, true);
        sslDone = true;
        continue;
      }
      const body = await this.readStartupPacket();
      const code = body.readInt32BE(0);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        const ssl = code === SSL_REQUEST;
        if (body.length !== 4 || (ssl ? sslDone : gssDone) || this.tls) {
          throw new HandshakeError('08P01', `unexpected ${ssl ? 'SSL' : 'GSSENC'} request`);
        }
        // Bytes behind the request would be read as if they came through the encrypted channel
        // (CVE-2021-23214), so PostgreSQL refuses them and so does Warden.
        if (this.buf.length > 0 || this.channel.readableLength > 0) {
          throw new HandshakeError(
            '08P01',
            `received unencrypted data after ${ssl ? 'SSL' : 'GSSAPI encryption'} request`,
          );
        }
        if (ssl && this.opts.tls) await this.upgrade(this.opts.tls, false);
        else this.channel.write('N');
        if (ssl) sslDone = true;
        else gssDone = true;
        continue;
      }
      if (code === CANCEL_REQUEST) {
        if (body.length !== 12) throw new HandshakeError('08P01', 'invalid length of cancel request packet');
        return { kind: 'cancel', pid: body.readInt32BE(4), secret: body.readInt32BE(8) };
      }
      return this.startup(code, body.subarray(4));
    }
  }

  /** Removes every listener and the timer; the socket is left paused with its unread bytes. */
  dispose(): void {
    clearTimeout(this.timer);
    this.detach(this.channel);
  }

  /** Answers a failure the way the channel allows, then closes it. */
  close(err: HandshakeError): void {
    let bytes: Buffer | undefined;
    if (!err.tell || !this.channelUsable) bytes = undefined;
    else if (this.major < 3) bytes = v2Error(err.message);
    else
      bytes = errorResponse({ severity: 'FATAL', code: err.code, message: err.message, detail: err.detail });
    closeWith(this.channel, bytes);
  }

  private async startup(version: number, payload: Buffer): Promise<ClientHello> {
    const major = version >>> 16;
    const minor = version & 0xffff;
    this.major = major;
    if (major !== PROTOCOL_V3 >>> 16) {
      throw new HandshakeError(
        '0A000',
        `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`,
      );
    }
    const params: Record<string, string> = {};
    const unknownOptions: string[] = [];
    for (const [name, value] of readStartupParams(payload)) {
      // `_pq_.` names are protocol extensions, not session settings; Warden implements none yet.
      if (name.startsWith('_pq_.')) unknownOptions.push(name);
      else params[name] = value;
    }
    if (minor > 0 || unknownOptions.length > 0) {
      // A full version number, not just the minor: libpq compares it as such.
      this.channel.write(negotiateProtocolVersion(PROTOCOL_V3, unknownOptions));
    }
    if (!params.user)
      throw new HandshakeError('28000', 'no PostgreSQL user name specified in startup packet');
    if (!params.database) params.database = params.user;
    // Its commands (IDENTIFY_SYSTEM, START_REPLICATION) are not SQL, and its stream bypasses every
    // statement check: refused here, rather than opened as a plain session that fails on them.
    if (REPLICATION.test(params.replication ?? '')) {
      throw new HandshakeError(
        '0A000',
        'replication connections are not supported through Warden',
        'Warden relays SQL sessions only: connect replication clients (pg_basebackup, pg_recvlogical, subscriptions) to the database server directly.',
      );
    }

    if (!this.tls && !this.opts.allowPlaintextPassword) {
      throw new HandshakeError(
        '28000',
        'Warden accepts credentials on this listener only over TLS',
        'The password is your Warden token or API key; it is not sent over an unencrypted connection. ' +
          'Connect with sslmode=require (or verify-full), or ask an administrator to allow plaintext on this listener.',
      );
    }
    this.channel.write(authenticationCleartextPassword());
    const { body, rest } = await this.readPasswordMessage();
    const r = new Reader(body);
    const password = r.cstring();
    if (r.remaining !== 0) throw new HandshakeError('08P01', 'invalid password packet size');
    if (password === '') {
      throw new HandshakeError(
        '28P01',
        `password authentication failed for user "${params.user}"`,
        'The password was empty; Warden expects a Warden token or API key as the password.',
      );
    }
    return { kind: 'startup', socket: this.channel, tls: this.tls, params, password, rest };
  }

  private async readStartupPacket(): Promise<Buffer> {
    await this.fill(4);
    const len = this.buf.readInt32BE(0);
    if (len < 8 || len > this.maxStartup)
      throw new HandshakeError('08P01', 'invalid length of startup packet');
    await this.fill(len);
    const body = this.buf.subarray(4, len);
    this.buf = this.buf.subarray(len);
    return body;
  }

  private async readPasswordMessage(): Promise<{ body: Buffer; rest: Buffer }> {
    await this.fill(1);
    const type = this.buf[0]!;
    if (type === Front.Terminate) {
      throw new HandshakeError('08006', 'client ended the session during authentication', undefined, false);
    }
    if (type !== Front.PasswordMessage) {
      throw new HandshakeError(
        '08P01',
        `expected password response, got message type ${JSON.stringify(String.fromCharCode(type))}`,
      );
    }
    for (;;) {
      // A fresh framer per look: it checks the length as soon as 5 bytes are here and leaves the
      // buffer ours, so whatever follows the password can be handed back untouched.
      const [m] = new MessageFramer(MAX_PASSWORD_MESSAGE).push(this.buf);
      if (m) return { body: m.body, rest: this.buf.subarray(m.raw.length) };
      await this.fill(this.buf.length + 1);
    }
  }

  private async peekByte(): Promise<number> {
    await this.fill(1);
    return this.buf[0]!;
  }

  /** Waits until at least `n` bytes are buffered. */
  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      if (this.failure) throw this.failure;
      await Promise.race([
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
        this.aborted,
      ]);
    }
  }

  /**
   * Answers 'S' (unless the client opened with TLS directly) and runs the TLS server handshake
   * on the same connection; afterwards every byte flows through the TLS socket.
   */
  private async upgrade(ctx: SecureContext, direct: boolean): Promise<void> {
    const raw = this.channel;
    this.detach(raw);
    if (direct) {
      // The bytes read so far are the start of the ClientHello; give them back to the socket,
      // whose buffered data the TLS socket reads first.
      raw.unshift(this.buf);
      this.buf = Buffer.alloc(0);
    } else {
      raw.write('S');
    }
    // Direct TLS (PostgreSQL 17 sslnegotiation=direct) requires the 'postgresql' ALPN protocol,
    // so that a TLS connection meant for another service cannot be replayed into this one.
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: ctx,
      ALPNProtocols: ['postgresql'],
    });
    this.channel = secure;
    this.channelUsable = false;
    // A raw-socket error after the takeover surfaces on the TLS socket; this keeps it from being uncaught.
    raw.on('error', () => {});
    this.attach(secure);
    let onSecure: () => void = () => {};
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          onSecure = resolve;
          secure.once('secure', onSecure);
        }),
        this.aborted,
      ]);
    } finally {
      secure.removeListener('secure', onSecure);
    }
    if (direct && secure.alpnProtocol !== 'postgresql') {
      throw new HandshakeError(
        '08P01',
        'received direct SSL connection request without ALPN protocol negotiation extension',
        undefined,
        false,
      );
    }
    this.tls = true;
    this.channelUsable = true;
  }

  private fail(err: HandshakeError): void {
    if (this.failure) return;
    this.failure = err;
    this.abort(err);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  };

  private readonly onGone = (): void => {
    this.fail(
      new HandshakeError('08006', 'client closed the connection during the handshake', undefined, false),
    );
  };

  private readonly onError = (e: Error): void => {
    const what = this.channelUsable
      ? 'connection error during the handshake'
      : 'could not accept SSL connection';
    this.fail(new HandshakeError('08006', `${what}: ${e.message}`, undefined, false));
  };

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('end', this.onGone);
    s.on('close', this.onGone);
    s.on('error', this.onError);
    s.resume();
  }

  private detach(s: Socket): void {
    // Pause first: a flowing stream with no 'data' listener drops bytes.
    s.pause();
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onGone);
    s.removeListener('close', this.onGone);
    s.removeListener('error', this.onError);
  }
}

/** The pre-3.0 error format PostgreSQL still uses to tell an old client it is not supported. */
function v2Error(text: string): Buffer {
  return Buffer.concat([Buffer.from('E', 'latin1'), Buffer.from(`FATAL:  ${text}\n\u0000`, 'utf8')]);
}
