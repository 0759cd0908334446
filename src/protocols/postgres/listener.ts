// The PostgreSQL listener: accepts stock clients, authenticates the caller by the password it
// sends (API key, OIDC token or Warden token), opens the target with the sealed credentials,
// then hands both sockets to the engine. Cancel requests are mapped to the right backend.
import { createHash, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { AuditLog } from '../../audit/log.js';
import type { Config } from '../../config/schema.js';
import { orphanAtBirth, sessionLimits } from '../../gateway/lifetime-watch.js';
import type { LiveSessions } from '../../gateway/live-sessions.js';
import { Session, type SessionDeps } from '../../gateway/session.js';
import type { Authenticator } from '../../identity/authenticate.js';
import { AuthError } from '../../identity/errors.js';
import { type Identity, scopeCovers } from '../../identity/identity.js';
import type { AccessGrants } from '../../reviews/access-grants.js';
import type { GrantedSessions } from '../../reviews/granted-sessions.js';
import type { Connections, TargetCredentials } from '../../store/connections.js';
import { isUnavailable } from '../../store/store.js';
import { openCatalog } from './catalog.js';
import { acceptClient, type ClientHello, HandshakeError, sendFatal } from './client-handshake.js';
import { authenticationOk, backendKeyData, parameterStatus, readyForQuery } from './codec.js';
import { runEngine } from './engine.js';
import { POOLED_APPLICATION_NAME, TargetPool } from './pool.js';
import { traceFromStartup } from './startup-trace.js';
import { cancelTarget, connectTarget, TargetError, type TargetSession } from './target.js';
import { traceComment } from './trace-comment.js';

export interface PostgresListenerDeps {
  config: Config;
  authenticator: Authenticator;
  connections: Connections;
  audit: AuditLog;
  session: SessionDeps;
  /** Where live sessions register, so an admin can kill them. */
  live: LiveSessions;
  /** Just-in-time access: who may open a connection with `access: jit`, and the sessions under each grant. */
  access?: { grants: AccessGrants; sessions: GrantedSessions };
  log: Logger;
}

export interface PostgresListener {
  host: string;
  port: number;
  close(): Promise<void>;
}

interface Live {
  session: Session;
  client: Socket;
  target: TargetSession;
  targetAddress: { host: string; port: number };
  /** The client's CancelRequests sent on to the target that it has not yet taken. */
  cancels: number;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** What the target's own logs and pg_stat_activity show: who is really behind the session. */
export function targetApplicationName(
  app: string | undefined,
  identity: Identity,
  sessionId: string,
): string {
  const via = identity.chain.length > 0 ? ` via ${identity.chain.join('>')}` : '';
  const who = identity.rootSubject !== identity.subject ? `${identity.rootSubject}${via}` : identity.subject;
  // PostgreSQL keeps 63 bytes; the session id goes first so it survives truncation of a long name.
  return `${app ? `${app} ` : ''}[warden s=${sessionId.slice(0, 8)} ${who}]`;
}

/**
 * Startup parameters that also set `warden.session` on the target: a session (an agent) reads its
 * own id with `current_setting('warden.session')`, to name it as the parent of tokens it mints.
 * Pooled connections are labelled after their login instead (TargetPool.label).
 */
function withSessionSetting(params: Record<string, string>, sessionId: string): Record<string, string> {
  const setting = `-c warden.session=${sessionId}`;
  return { ...params, options: params.options ? `${params.options} ${setting}` : setting };
}

export async function startPostgresListener(deps: PostgresListenerDeps): Promise<PostgresListener> {
  const cfg = deps.config.listeners.postgres;
  const tls: SecureContext | undefined = cfg.tls
    ? createSecureContext({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) })
    : undefined;
  const allowPlaintextPassword = cfg.allow_plaintext_password || LOOPBACK.has(cfg.host);
  /** Our BackendKeyData (pid.secret) → the live session, for cancel requests. */
  const live = new Map<string, Live>();
  /** Server connections kept for connections with `pool: session`. */
  const pool = new TargetPool({ maxIdle: cfg.pool.max_idle, idleTimeoutMs: cfg.pool.idle_timeout });
  const sockets = new Set<Socket>();

  const refused = (socket: Socket, code: string, message: string, audit: Record<string, unknown>) => {
    sendFatal(socket, code, message);
    deps.audit.record({
      type: 'gateway.refused',
      actor: { subject: String(audit.subject ?? 'unknown'), kind: 'unknown', chain: [] },
      target: audit.connection ? `connection:${String(audit.connection)}` : null,
      outcome: 'denied',
      payload: { protocol: 'postgres', code, message, address: socket.remoteAddress ?? null },
    });
  };

  const serve = async (socket: Socket) => {
    const hello = await acceptClient(socket, {
      ...(tls ? { tls } : {}),
      allowPlaintextPassword,
      loginTimeoutMs: cfg.login_timeout,
    });
    if (hello.kind === 'cancel') {
      socket.destroy();
      const hit = live.get(`${hello.pid}.${hello.secret}`);
      // A statement held for review never reached the target: cancelling withdraws it (its review
      // is cancelled). Otherwise the target's own key: the client only ever saw ours.
      if (hit && !hit.session.withdraw()) {
        hit.cancels++;
        cancelTarget(hit.targetAddress, hit.target.backendKey, () => hit.cancels--);
      }
      return;
    }
    const client = hello.socket;
    client.on('error', () => undefined);
    try {
      await open(client, hello);
    } catch (err) {
      // After the handshake the client may speak TLS: errors go to its socket, not the raw one.
      if (isUnavailable(err)) {
        deps.log.warn({ err: (err as Error).message }, 'postgres login refused: the store is unreachable');
        // Queued, and written once the store is back.
        refused(client, '57P03', 'Warden cannot reach its store right now; try again shortly (warden)', {
          connection: hello.params.database,
        });
      } else {
        deps.log.error({ err: (err as Error).message }, 'postgres session failed');
        sendFatal(client, 'XX000', 'internal error in Warden; see its log (warden)');
      }
    }
  };

  const open = async (client: Socket, hello: Extract<ClientHello, { kind: 'startup' }>) => {
    const name = hello.params.database ?? '';
    const found = await deps.connections.forGateway(name);
    if (found?.view.protocol !== 'postgres') {
      return refused(client, '3D000', `connection "${name}" does not exist (warden)`, { connection: name });
    }
    const conn = found.view;
    let identity: Identity;
    try {
      identity = await deps.authenticator.authenticate(hello.password);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return refused(client, '28P01', `authentication failed: ${err.message} (warden)`, { connection: name });
    }
    if (!scopeCovers(identity.scope, name)) {
      return refused(client, '28000', `your credential does not cover connection "${name}" (warden)`, {
        connection: name,
        subject: identity.subject,
      });
    }
    const limits = sessionLimits(deps.config.sessions, conn);
    const orphan = await orphanAtBirth(deps.session.sessions, identity.parentSessionId, limits);
    if (orphan) {
      return refused(
        client,
        '28000',
        `cannot open a session: ${orphan} (sessions.end_with_parent) (warden)`,
        {
          connection: name,
          subject: identity.subject,
        },
      );
    }
    // A connection with `access: jit` needs a grant in force; without a way to check, nobody gets in.
    let admission: Awaited<ReturnType<AccessGrants['admit']>> | undefined;
    if (conn.access === 'jit') {
      try {
        if (!deps.access) throw new Error('this gateway cannot check access grants');
        admission = await deps.access.grants.admit(identity, name, client.remoteAddress ?? null);
      } catch (err) {
        deps.log.error({ err: (err as Error).message }, 'cannot check access grants; refusing the session');
        return sendFatal(
          client,
          '57P03',
          'Warden cannot check access grants right now; try again shortly (warden)',
        );
      }
    }
    if (admission && 'refusal' in admission) {
      return refused(client, '28000', `${admission.refusal} (warden)`, {
        connection: name,
        subject: identity.subject,
      });
    }
    // A traceparent rides in the startup options or application_name; the target never sees it.
    const { trace, params: startup } = traceFromStartup(hello.params);
    const session = new Session(deps.session, identity, conn, {
      address: client.remoteAddress ?? null,
      application: startup.application_name ?? null,
      trace,
    });
    try {
      await session.open();
    } catch (err) {
      deps.log.error({ err: (err as Error).message }, 'cannot record a new session; refusing it');
      // Its row and `session.opened` stay queued until the store takes them; so does how it ended.
      void session.close('error', `refused: Warden could not record the session (${(err as Error).message})`);
      return sendFatal(
        client,
        '57P03',
        'Warden cannot record sessions right now; try again shortly (warden)',
      );
    }
    let creds: TargetCredentials;
    try {
      creds = found.credentials();
    } catch (err) {
      // A sealed secret that does not open (sealed under a key this gateway lacks, or changed in
      // the store): the session is recorded as failed, not left open.
      const message = `could not open connection "${name}": its stored credentials cannot be opened (warden)`;
      deps.log.error({ err: (err as Error).message, connection: name }, 'cannot open stored credentials');
      sendFatal(client, '08001', message);
      await session.close('error', message);
      return;
    }
    const forwarded = { ...startup };
    for (const k of ['user', 'database', 'replication']) delete forwarded[k];
    const applicationName = targetApplicationName(startup.application_name, identity, session.id);
    forwarded.application_name = applicationName;
    const targetOptions = {
      host: conn.target.host,
      port: conn.target.port,
      database: conn.target.database ?? name,
      user: creds.user ?? hello.params.user ?? 'postgres',
      password: creds.password,
      tls: conn.target.tls,
      params: forwarded,
    };
    // A parked server connection serves only a session that would have opened the same one.
    const poolKey = conn.pool === 'session' ? poolKeyOf(name, targetOptions) : null;
    /** A new server connection; a pooled one is labelled after its login (TargetPool.label says why). */
    const connectNew = async (): Promise<TargetSession> => {
      if (poolKey === null) {
        return connectTarget({ ...targetOptions, params: withSessionSetting(forwarded, session.id) });
      }
      const opened = await connectTarget({
        ...targetOptions,
        params: { ...forwarded, application_name: POOLED_APPLICATION_NAME },
      });
      try {
        await pool.label(opened, applicationName, session.id);
      } catch (err) {
        opened.socket.destroy();
        throw err;
      }
      return opened;
    };
    let target: TargetSession;
    try {
      target =
        (poolKey !== null ? await pool.take(poolKey, applicationName, session.id) : null) ??
        (await connectNew());
    } catch (err) {
      const code = err instanceof TargetError ? err.code : '08001';
      const message = `could not open connection "${name}": ${(err as Error).message} (warden)`;
      sendFatal(client, code, message);
      await session.close('error', message);
      return;
    }
    if (client.destroyed) {
      target.socket.destroy();
      await session.close('client', 'the client left during startup');
      return;
    }
    // The client sees the target's parameters (its own application_name back) and our own key.
    const key = { pid: randomInt(1, 2 ** 31 - 1), secret: randomInt(0, 2 ** 31 - 1) };
    const hello2 = [authenticationOk()];
    for (const [k, v] of target.parameters) {
      hello2.push(parameterStatus(k, k === 'application_name' ? (hello.params.application_name ?? '') : v));
    }
    hello2.push(backendKeyData(key.pid, key.secret), readyForQuery(target.transactionStatus));
    client.write(Buffer.concat(hello2));
    const entry: Live = {
      session,
      client,
      target,
      targetAddress: { host: conn.target.host, port: conn.target.port },
      cancels: 0,
    };
    live.set(`${key.pid}.${key.secret}`, entry);
    const catalog = openCatalog({
      host: conn.target.host,
      port: conn.target.port,
      database: conn.target.database ?? name,
      user: creds.user ?? hello.params.user ?? 'postgres',
      ...(typeof creds.password === 'string' ? { password: creds.password } : {}),
      tls: conn.target.tls,
      applicationName: `warden catalog s=${session.id.slice(0, 8)}`,
    });
    const engine = runEngine(client, target.socket, session, {
      maxMessage: cfg.max_message,
      clientRest: hello.rest,
      targetRest: target.rest,
      resolveTables: catalog.resolve,
      resolveFunction: catalog.resolveFunction,
      warn: (text, fields) => deps.log.warn(fields, text),
      ...(trace && deps.config.tracing.sql_comments ? { traceComment: traceComment(trace.outgoing) } : {}),
      ...(poolKey !== null
        ? {
            // A cancel still on its way would stop what the backend runs next, in someone else's session.
            release: (socket: Socket) =>
              entry.cancels > 0 ? pool.discard(socket) : pool.release(poolKey, target, socket),
          }
        : {}),
      cancel: (done) => cancelTarget(entry.targetAddress, target.backendKey, done),
      onClose: (reason, detail) => {
        live.delete(`${key.pid}.${key.secret}`);
        deps.live.remove(session.id);
        deps.access?.sessions.release(session.id);
        void catalog.close();
        void session.close(reason, detail);
      },
    });
    deps.live.add(
      session.id,
      (text, cause) => engine.kill(text, cause),
      {
        via: identity.via,
        id: identity.tokenId,
        subjects: [identity.subject, identity.rootSubject, ...identity.chain],
      },
      {
        startedAt: session.startedAt.getTime(),
        parentSessionId: identity.parentSessionId,
        limits,
        idleSince: engine.idleSince,
      },
    );
    if (admission) deps.access?.sessions.hold(session.id, admission.grant);
  };

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    serve(socket).catch((err: unknown) => {
      if (err instanceof HandshakeError) {
        deps.log.debug({ err: err.message, address: socket.remoteAddress }, 'postgres handshake failed');
        deps.audit.record({
          type: 'gateway.refused',
          actor: { subject: 'unknown', kind: 'unknown', chain: [] },
          target: null,
          outcome: 'denied',
          payload: {
            protocol: 'postgres',
            code: err.code,
            message: err.message,
            address: socket.remoteAddress ?? null,
          },
        });
        return;
      }
      deps.log.error({ err: (err as Error).message }, 'postgres connection failed before startup');
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.port;
  return {
    host: cfg.host,
    port,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      pool.close();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/**
 * What a pooled server connection is: its target, login and startup parameters except the
 * application_name (set per session). The password enters as a digest, never in clear.
 */
function poolKeyOf(
  name: string,
  o: {
    host: string;
    port: number;
    database: string;
    user: string;
    password?: string | null;
    tls: unknown;
    params: Record<string, string>;
  },
): string {
  const { application_name: _, ...params } = o.params;
  const sorted = Object.keys(params)
    .sort()
    .map((k) => [k, params[k]]);
  const secret = createHash('sha256')
    .update(o.password ?? '')
    .digest('base64');
  return JSON.stringify([name, o.host, o.port, o.database, o.user, secret, o.tls, sorted]);
}
