// Session pooling (`pool: session` on a connection), as PgBouncer's session mode does it: when a
// client leaves while its target connection is idle, that connection is reset with DISCARD ALL
// (temporary tables, prepared statements, settings, LISTENs and advisory locks all go), its dblink
// connections are closed, and it is parked.
// The next session on the same connection with the same startup parameters takes it, re-labelled
// with its own application_name, instead of paying for a new backend and a new login.
import type { Socket } from 'node:net';
import { Back, Front, message, Reader, readDataRow, readNoticeFields } from './codec.js';
import { MessageQueue } from './message-queue.js';
import type { TargetSession } from './target.js';

export interface PoolOptions {
  /** Most parked connections per key; more are closed. */
  maxIdle: number;
  /** A parked connection unused for this long is closed. */
  idleTimeoutMs: number;
  /** Longest wait for the target to answer a reset or a re-label. */
  queryTimeoutMs?: number;
}

/** The application_name a pooled connection opens with; each session's own is SET (TargetPool.label). */
export const POOLED_APPLICATION_NAME = '[warden pool]';

/**
 * DISCARD ALL leaves dblink's connections open (the extension keeps them, not PostgreSQL): the next
 * session, maybe someone else, could query through them as whoever logged them in. Named ones are
 * listed; the unnamed one can only be tried. Every function and operator is schema-qualified: the
 * search_path is the session's startup one, and a function the last session created must not run.
 */
const CLOSE_DBLINKS = `DO $warden$
DECLARE s name;
BEGIN
  SELECT n.nspname INTO s FROM pg_catalog.pg_extension e
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
    WHERE e.extname OPERATOR(pg_catalog.=) 'dblink';
  IF s IS NOT NULL THEN
    EXECUTE pg_catalog.format(
      'SELECT %1$I.dblink_disconnect(c) FROM pg_catalog.unnest(%1$I.dblink_get_connections()) c', s);
    BEGIN
      EXECUTE pg_catalog.format('SELECT %I.dblink_disconnect()', s);
    EXCEPTION WHEN connection_does_not_exist THEN NULL;
    END;
  END IF;
END $warden$`;

/** Whether the target database has dblink: `t` or `f`. */
const DBLINK_INSTALLED = `SELECT EXISTS (SELECT FROM pg_catalog.pg_extension
  WHERE extname OPERATOR(pg_catalog.=) 'dblink')`;

interface Parked {
  target: TargetSession;
  timer: NodeJS.Timeout;
  onGone: () => void;
}

/**
 * A SQL string literal for the target, whatever its standard_conforming_strings and client_encoding.
 * Printable ASCII only (anything else becomes `?`, as PostgreSQL shows it in application_name): the
 * target reads our bytes in the session's client_encoding, where the bytes of a UTF-8 character may
 * end in a backslash (GBK, SJIS, BIG5…) and turn our escaping into a way out of the string.
 */
function literal(value: string): string {
  const ascii = value.replace(/[^\x20-\x7e]/g, '?');
  return `E'${ascii.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/**
 * Runs one simple query on an idle, detached target socket and waits for its ReadyForQuery.
 * ParameterStatus updates are applied to `target.parameters`; anything else than success
 * (an error, a transaction left open, a timeout, a closed socket) rejects. The socket is left
 * paused, with no listeners of ours.
 */
async function simpleQuery(
  target: TargetSession,
  sql: string,
  timeoutMs: number,
): Promise<Array<string | null>> {
  const inbox = new MessageQueue(
    target.socket,
    (err) => new Error(err?.message ?? 'the target closed the connection'),
  );
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to "${sql}" within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    target.socket.write(message(Front.Query, sql));
    target.socket.resume();
    let failure: string | null = null;
    const firstValues: Array<string | null> = [];
    for (;;) {
      const m = await Promise.race([inbox.next(), deadline]);
      const r = new Reader(m.body);
      if (m.type === Back.ParameterStatus) setParameter(target, r.cstring(), r.cstring());
      else if (m.type === Back.DataRow) firstValues.push(readDataRow(m.body)[0]?.toString('utf8') ?? null);
      else if (m.type === Back.ErrorResponse) failure = readNoticeFields(m.body).get('M') ?? 'error';
      else if (m.type === Back.ReadyForQuery) {
        const status = String.fromCharCode(r.bytes(1)[0]!);
        if (failure !== null) throw new Error(failure);
        if (status !== 'I') throw new Error(`the connection was left in transaction state ${status}`);
        if (inbox.detach().length > 0) throw new Error('the target sent more than asked for');
        return firstValues;
      }
    }
  } finally {
    clearTimeout(timer);
    inbox.detach();
  }
}

/** Ends a server connection as a client should, so the server logs no unexpected EOF. */
function terminate(socket: Socket): void {
  socket.on('error', () => undefined); // nobody is left to care about a late reset
  if (!socket.destroyed) socket.end(message(Front.Terminate));
}

function setParameter(target: TargetSession, name: string, value: string): void {
  const at = target.parameters.findIndex(([k]) => k === name);
  if (at >= 0) target.parameters[at] = [name, value];
  else target.parameters.push([name, value]);
}

export class TargetPool {
  private readonly parked = new Map<string, Parked[]>();
  private closed = false;
  /** Sessions served by a parked connection, and connections parked, since start. */
  reused = 0;
  resets = 0;

  constructor(private readonly opts: PoolOptions) {}

  private get timeoutMs(): number {
    return this.opts.queryTimeoutMs ?? 5_000;
  }

  /** How many connections are parked (all keys). */
  get idle(): number {
    let n = 0;
    for (const list of this.parked.values()) n += list.length;
    return n;
  }

  /**
   * A parked connection for `key`, re-labelled with `applicationName` and the session's id
   * (`warden.session`), or null when there is none that still works (the caller then opens a new one).
   */
  async take(key: string, applicationName: string, sessionId: string): Promise<TargetSession | null> {
    const list = this.parked.get(key);
    while (list && list.length > 0) {
      const p = list.pop()!;
      if (list.length === 0) this.parked.delete(key);
      this.unpark(p);
      try {
        await this.label(p.target, applicationName, sessionId);
      } catch {
        p.target.socket.destroy();
        continue;
      }
      this.reused++;
      p.target.transactionStatus = 'I';
      p.target.rest = Buffer.alloc(0);
      return p.target;
    }
    return null;
  }

  /**
   * Names the session a connection serves: `application_name` and `warden.session` are SET, never
   * given at startup, so a RESET ALL in any session brings back POOLED_APPLICATION_NAME and no
   * session id, not the name and id of whoever opened the connection (and may have left).
   */
  async label(target: TargetSession, applicationName: string, sessionId: string): Promise<void> {
    await simpleQuery(
      target,
      `SET application_name = ${literal(applicationName)}; SET warden.session = ${literal(sessionId)}`,
      this.timeoutMs,
    );
  }

  /**
   * Takes back a connection a session has finished with (idle, outside a transaction): resets it
   * and parks it, or closes it when it cannot be reset or the pool is full or closed.
   */
  release(key: string, target: TargetSession, socket: Socket): void {
    target.socket = socket;
    if (this.closed || (this.parked.get(key)?.length ?? 0) >= this.opts.maxIdle) {
      terminate(socket);
      return;
    }
    // A parked connection says so in pg_stat_activity (RESET ALL brought back POOLED_APPLICATION_NAME),
    // once its reset is done: the label comes last.
    // The dblink clean-up only where the extension is: a DO block is compiled on every run, which
    // cost the target about 0.3 ms of CPU on each release.
    simpleQuery(target, 'DISCARD ALL', this.timeoutMs)
      .then(() => simpleQuery(target, DBLINK_INSTALLED, this.timeoutMs))
      .then(([installed]) =>
        simpleQuery(
          target,
          `${installed === 't' ? `${CLOSE_DBLINKS}; ` : ''}SET application_name = '[warden pool: idle]'`,
          this.timeoutMs,
        ),
      )
      .then(
        () => this.park(key, target),
        () => socket.destroy(),
      );
  }

  /** Closes a connection a session has finished with that must serve nobody else. */
  discard(socket: Socket): void {
    terminate(socket);
  }

  private park(key: string, target: TargetSession): void {
    const list = this.parked.get(key) ?? [];
    if (this.closed || list.length >= this.opts.maxIdle) {
      terminate(target.socket);
      return;
    }
    const socket = target.socket;
    const p: Parked = {
      target,
      // A parked connection the target drops (restart, idle timeout) just leaves the pool.
      onGone: () => this.drop(key, p),
      timer: setTimeout(() => this.drop(key, p), this.opts.idleTimeoutMs),
    };
    p.timer.unref();
    socket.on('error', p.onGone);
    socket.on('close', p.onGone);
    list.push(p);
    this.parked.set(key, list);
    this.resets++;
  }

  private unpark(p: Parked): void {
    clearTimeout(p.timer);
    p.target.socket.removeListener('error', p.onGone);
    p.target.socket.removeListener('close', p.onGone);
  }

  private drop(key: string, p: Parked): void {
    const list = this.parked.get(key);
    const at = list?.indexOf(p) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.parked.delete(key);
    this.unpark(p);
    terminate(p.target.socket);
  }

  /** Closes every parked connection; connections released later are closed too. */
  close(): void {
    this.closed = true;
    for (const [key, list] of [...this.parked]) for (const p of [...list]) this.drop(key, p);
  }
}
