// Drives one PostgreSQL session after both handshakes: relays messages both ways with
// backpressure, asks the session about every statement (simple Query and extended Parse), and
// answers a refused one with PostgreSQL's own error flow so the connection stays usable.
// A fast-path FunctionCall is judged as the SELECT of the function its OID names.
import type { Socket } from 'node:net';
import type { EndCause } from '../../gateway/live-sessions.js';
import type { CloseReason, Command, Session } from '../../gateway/session.js';
import type { FunctionResolver } from './catalog.js';
import { ChunkOutput, sentBuffer } from './chunk-output.js';
import {
  Back,
  errorResponse,
  Front,
  type Message,
  MessageFramer,
  message,
  ProtocolError,
  ROW_RUN,
  RowRun,
  readExecute,
  readFunctionCall,
  readNoticeFields,
  readParse,
  readQuery,
} from './codec.js';
import { DurationLimits } from './duration-limit.js';
import { judgeFunctionCall } from './function-call.js';
import { REFUSED, Refusals, refusalText } from './refusals.js';
import { ResultRewriter, type TableResolver } from './result-rewrite.js';
import { ResultTracker } from './results.js';
import { StatementRecording } from './statement-recording.js';
import { commentedParse, commentedQuery } from './trace-comment.js';

export interface EngineOptions {
  maxMessage?: number;
  onClose?: (reason: EngineCloseReason, detail?: string) => void;
  /** Table OIDs → `schema.table`, for mask rules that name tables; without it such rules fail closed. */
  resolveTables?: TableResolver;
  /** Function OIDs → `schema.name`, for FunctionCall messages; without it they are refused (fail closed). */
  resolveFunction?: FunctionResolver;
  /** Where masking problems are reported (they never reach the client). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
  /**
   * Session pooling: when the client leaves (Terminate or a closed socket) while the target
   * connection is idle (no answer outstanding, outside a transaction), the target socket is
   * handed here, detached and paused, instead of being closed. The Terminate is not forwarded.
   */
  release?: (target: Socket) => void;
  /**
   * Sends a CancelRequest to the target backend, `done` once the target took it: duration limits
   * are enforced only with it.
   */
  cancel?: (done: () => void) => void;
  /** A comment carrying the session's trace, added to every statement sent (`tracing.sql_comments`). */
  traceComment?: string;
}

type EngineCloseReason = Exclude<CloseReason, 'shutdown'>;

export interface EngineHandle {
  /** Ends the session now: the client gets a FATAL with `message`, the target connection closes. */
  kill(message: string, cause?: EndCause): void;
  /**
   * Epoch ms of the client's last bytes; null while the session is busy: a statement (or Sync)
   * not yet answered by ReadyForQuery, which covers one running, held for review, or still
   * delivering its result.
   */
  idleSince(): number | null;
}

/**
 * What PostgreSQL itself sends for each: admin_shutdown (pg_terminate_backend) for an end
 * decided by someone or something else, idle_session_timeout for an idle session.
 */
const END_CODES: Record<EndCause, { code: string; reason: EngineCloseReason }> = {
  killed: { code: '57P01', reason: 'killed' },
  idle: { code: '57P05', reason: 'timed_out' },
  max_duration: { code: '57P01', reason: 'timed_out' },
  orphaned: { code: '57P01', reason: 'orphaned' },
};

/** Promises of statements held for review: the relay keeps reading the client while one waits. */
const reviewHolds = new WeakSet<Promise<Buffer>>();

/** What a client may send behind a statement held for review before it is no longer read. */
const MAX_HELD_INPUT = 1024 * 1024;

/** `messages` with each RowRun cut into its rows: a copy of a run would no longer be one. */
function rowsOfRuns(messages: Message[]): Message[] {
  return messages.some((m) => m instanceof RowRun)
    ? messages.flatMap((m) => (m instanceof RowRun ? m.rows() : [m]))
    : messages;
}

/**
 * Ends our side of a socket that is still open. Node answers end() on a socket already finished or
 * destroyed with an error object (a stack trace captured, then dropped): on every session's close.
 */
function endSocket(s: Socket): void {
  if (!s.destroyed && !s.writableEnded) s.end();
}

/** Statement kinds that close or open portals by name. */
const PORTAL_KINDS = new Set(['declare_cursor', 'close_portal', 'do', 'call']);

/**
 * Whether a command may close or open portals by name: SQL DECLARE and CLOSE, and SQL the gateway
 * cannot read (a DO block, EXECUTE of a string). Not seen: a function already on the server that
 * closes and reopens a cursor under a portal's name.
 */
function touchesPortals(c: Command): boolean {
  if (c.facts.protocol_kind !== 'sql') return true;
  return c.facts.unparseable !== null || c.facts.statements.some((s) => s.opaque || PORTAL_KINDS.has(s.kind));
}

function copyMessage(m: Message): Message {
  const raw = Buffer.from(m.raw);
  return { type: m.type, raw, body: raw.subarray(5) };
}

export function runEngine(
  client: Socket,
  target: Socket,
  session: Session,
  opts: EngineOptions & { clientRest?: Buffer; targetRest?: Buffer } = {},
): EngineHandle {
  const fromClient = new MessageFramer(opts.maxMessage);
  const { traceComment } = opts;
  const fromTarget = new MessageFramer(opts.maxMessage, true);
  /** Markers sent to the target, oldest first, with the error the client gets instead. */
  const refusals = new Refusals();
  const tracker = new ResultTracker<Command>(touchesPortals);
  const rewriter = new ResultRewriter({
    masksFor: (d) => session.masksFor(d),
    ...(opts.resolveTables ? { resolveTables: opts.resolveTables } : {}),
    warn: (text, fields) => opts.warn?.(text, { session: session.id, ...fields }),
  });
  const recording = session.recording ? new StatementRecording(session) : null;
  /** While a duration limit's cancel is on its way, the client's next statements wait (DurationLimits). */
  let held = false;
  let resumeClient: () => void = () => undefined;
  const cancel = opts.cancel;
  const durations = cancel
    ? new DurationLimits({
        tracker,
        cancel,
        hold: () => {
          held = true;
          client.pause();
        },
        release: () => {
          held = false;
          resumeClient();
        },
        stopped: (c, text) => session.limited(c, text),
      })
    : null;
  let ended = false;
  /** The client said goodbye (Terminate): whoever's socket closes first, the client ended it. */
  let terminated = false;
  /** Statements held for review and FunctionCalls whose function is looked up: not yet sent, not idle. */
  let judging = 0;
  /** A statement or Sync not yet answered by ReadyForQuery, or not yet sent. */
  const busy = () => judging > 0 || tracker.owed > 0;
  /** The status the last ReadyForQuery gave. */
  let txStatus = 0x49; // 'I': idle, as the handshake left it
  /** The engine's own listeners on the target socket, removed when it is handed back to a pool. */
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter listeners take any arguments
  type Listener = (...args: any[]) => void;
  const targetListeners: Array<[string, Listener]> = [];
  const onTarget = (event: string, fn: Listener) => {
    targetListeners.push([event, fn]);
    target.on(event, fn);
  };

  /** Whether the target connection can serve another session once reset. */
  const reusable = () =>
    opts.release !== undefined &&
    !busy() &&
    txStatus === 0x49 &&
    fromTarget.pending === 0 &&
    // A late cancel would stop whatever the connection runs next, in someone else's session.
    !durations?.cancelling;

  /** Epoch ms of the client's last chunk: a number written per chunk, nothing allocated. */
  let clientActiveAt = Date.now();

  const end = (reason: EngineCloseReason, detail?: string) => {
    if (ended) return;
    ended = true;
    durations?.close();
    if (terminated && reason !== 'error') reason = 'client';
    endSocket(client);
    if (reason === 'client' && reusable() && !target.destroyed) {
      for (const [event, fn] of targetListeners) target.removeListener(event, fn);
      target.pause();
      opts.release?.(target);
    } else {
      endSocket(target);
    }
    opts.onClose?.(reason, detail);
  };

  const refuse = (c: Command, rewrite: (text: string) => Buffer): Buffer => {
    const text = refusalText(c);
    recording?.refused(c, REFUSED, text);
    return rewrite(refusals.add(text));
  };

  /**
   * A FunctionCall, judged once the catalog named its function: a promise, so the client's later
   * messages wait in order. Allowed, it goes out unchanged; refused, as a marker Query (its error
   * and ReadyForQuery are what the client expects for a FunctionCall).
   */
  const callFunction = (m: Message): Promise<Buffer> => {
    // Held across the lookup: a copy, the socket's chunk is not ours to keep.
    const raw = Buffer.from(m.raw);
    const call = readFunctionCall(raw.subarray(5));
    judging++;
    const judged = (name: string | null, failure?: string): Buffer => {
      judging--;
      const c = judgeFunctionCall(session, call.oid, call.args.length, name, failure);
      const result = tracker.sent(m, c);
      if (c.decision.action !== 'allow') return refuse(c, (mk) => message(Front.Query, mk));
      if (result && recording) recording.called(result, call.args);
      durations?.sent();
      return raw;
    };
    if (!opts.resolveFunction) return Promise.resolve(judged(null, 'no catalog connection'));
    return opts.resolveFunction(call.oid).then(
      (name) => judged(name),
      (err: Error) => judged(null, err.message),
    );
  };

  /**
   * A statement held for review: the client's later messages wait behind it (the relay pauses on a
   * promise), and once approvers decide it goes on as approved or refused by `send`.
   */
  const awaitReview = (m: Message, c: Command, send: (m: Message, c: Command) => Buffer): Promise<Buffer> => {
    const kept = copyMessage(m); // held across the wait: the socket's chunk is not ours to keep
    judging++;
    const decided = session.hold(c).then((decided) => {
      judging--;
      return send(kept, decided);
    });
    reviewHolds.add(decided);
    return decided;
  };

  /**
   * An Execute of a portal no Parse and Bind of this session made: one SQL made (PREPARE, then a
   * Bind of it; DECLARE CURSOR), whose rows no decision covers, or none at all. It goes out as an
   * Execute of a marker portal, which the target fails in its place.
   */
  const refuseExecute = (m: Message): Buffer => {
    tracker.sent(m, null);
    const name = readExecute(m.body);
    // Audited and recorded like any refused statement.
    const c = session.refuse(
      `(Execute of portal "${name}")`,
      `portal "${name}" was not bound from a statement Warden checked (it comes from SQL PREPARE or DECLARE, or does not exist): bind a statement sent with Parse, or FETCH from the cursor`,
    );
    // The row count as the client sent it: what follows the name's NUL (its bytes, not its decoding).
    const rows = m.body.subarray(m.body.indexOf(0) + 1);
    return refuse(c, (marker) => message(Front.Execute, marker, rows));
  };

  /** The client's message as it goes to the target: unchanged, or a refused statement's marker. */
  const judge = (m: Message): Buffer | Promise<Buffer> => {
    if (m.type === Front.Query) {
      const query = (m: Message, c: Command): Buffer => {
        tracker.sent(m, c);
        recording?.queried(c);
        durations?.sent();
        if (c.decision.action !== 'allow') return refuse(c, (mk) => message(Front.Query, mk));
        return traceComment ? commentedQuery(m.body, traceComment) : m.raw;
      };
      const c = session.decide(readQuery(m.body));
      return session.holds(c) ? awaitReview(m, c, query) : query(m, c);
    }
    if (m.type === Front.Parse) {
      const p = readParse(m.body);
      const parse = (m: Message, c: Command): Buffer => {
        tracker.sent(m, c);
        if (c.decision.action === 'allow') return traceComment ? commentedParse(m.body, traceComment) : m.raw;
        return refuse(c, (mk) => message(Front.Parse, p.name, mk, Buffer.from([0, 0])));
      };
      const c = session.decide(p.text);
      return session.holds(c) ? awaitReview(m, c, parse) : parse(m, c);
    }
    if (m.type === Front.FunctionCall) return callFunction(m);
    if (m.type === Front.Execute && !tracker.knowsPortal(readExecute(m.body))) return refuseExecute(m);
    const bound = tracker.sent(m, null);
    if (bound && recording) recording.bound(bound, m.body);
    if (m.type === Front.Execute) durations?.sent();
    return m.raw;
  };

  /** The client's word for a target message Warden cannot frame (over max_message, a bad length). */
  const unrelayable = (err: Error): Buffer =>
    errorResponse({
      severity: 'FATAL',
      code: '08P01',
      message: `the database server's reply cannot be relayed: ${err.message} (warden)`,
    });

  /** The client's message as it goes to the target: unchanged, or a refused statement's marker. */
  const outbound = (m: Message): Buffer | Promise<Buffer> => {
    try {
      return judge(m);
    } catch (err) {
      // A statement Warden cannot read cannot be judged: the session ends with a word (fail closed).
      if (err instanceof ProtocolError) {
        client.write(errorResponse({ severity: 'FATAL', code: '08P01', message: err.message }));
      }
      throw err;
    }
  };

  /**
   * The target's message as it goes to the client, appended to `out`: our error in place of a marker's
   * syntax error, result rows masked and limited; a promise while the catalog is asked about a result's tables.
   */
  const inbound = (received: Message, out: ChunkOutput): Promise<Buffer> | undefined => {
    // Runs are taken whole by takeRun or cut into rows by the relay, never seen here as one row.
    if (received.type === ROW_RUN) throw new Error('a run of rows reached the row-by-row path');
    if (received.type === Back.ReadyForQuery) txStatus = received.body[0] ?? 0;
    const ev = tracker.received(received);
    // A statement its duration limit stopped: the target's cancel error becomes ours (client, recording).
    const m = durations?.active ? durations.received(received, ev) : received;
    // The target's error for a refused statement's marker becomes ours; any other error is the
    // statement's own, and goes through the rewriter like its rows (a mask may withhold its text).
    const ours =
      m.type === Back.ErrorResponse && refusals.size > 0
        ? refusals.answer(readNoticeFields(m.body).get('M') ?? '')
        : undefined;
    if (ours) {
      out.put(m, ours);
      return undefined;
    }
    const later = rewriter.rewriteInto(m, ev, out);
    if (!recording || ev.kind === 'other') return later;
    // Recorded from the bytes the client gets, so samples are masked exactly as it saw them.
    if (later) {
      return later.then((b) => {
        recording.observe(ev, m, sentBuffer(b));
        return b;
      });
    }
    recording.observe(ev, m, out);
    return undefined;
  };

  /**
   * Target rows that lie back to back in one chunk, taken as a whole when their result's plan is
   * all they need (passed or masked, no row limit within reach: the rewriter) and its recorded
   * sample is already taken (recording); a duration limit lets rows pass as they are. False: the
   * relay cuts the run into rows, which go through `inbound` one at a time.
   */
  const takeRun = (run: RowRun, out: ChunkOutput): boolean => {
    const ev = tracker.receivedRows(run.rowType);
    if (recording && !recording.countsRows(ev)) return false;
    const sent = rewriter.runInto(ev, run, out);
    if (sent < 0) return false;
    recording?.countRows(ev, run.count, sent);
    return true;
  };

  /** The client's message as it goes to the target, appended to `out` (or a promise of it). */
  const outboundInto = (m: Message, out: ChunkOutput): Promise<Buffer> | undefined => {
    const b = outbound(m);
    if (b instanceof Promise) return b;
    if (b === m.raw) out.pass(m);
    else out.put(m, b);
    return undefined;
  };

  const relay = (
    from: Socket,
    to: Socket,
    framer: MessageFramer,
    map: (m: Message, out: ChunkOutput) => Promise<Buffer> | undefined,
    side: 'client' | 'target',
  ) => {
    /** Messages not yet mapped: left over while a mapping waits (a catalog lookup), in order. */
    let backlog: Message[] = [];
    let waiting = false;
    /** Bytes read from the client while a statement waits for review. */
    let heldInput = 0;
    let draining = false;
    const out = new ChunkOutput();
    const resume = () => {
      if (!waiting && !draining && !ended && !(side === 'client' && held)) from.resume();
    };
    const send = (data: Buffer) => {
      // One 'drain' listener at a time, however many writes came back full meanwhile.
      if (data.length === 0 || to.write(data) || draining) return;
      draining = true;
      from.pause();
      to.once('drain', () => {
        draining = false;
        resume();
      });
    };
    /** Maps and writes messages until one needs to wait; a batch goes out as one write (ChunkOutput). */
    const pump = () => {
      while (backlog.length > 0 && !waiting && !ended) {
        const messages = backlog;
        backlog = [];
        out.begin(messages);
        for (let i = 0; i < messages.length; i++) {
          const m = messages[i]!;
          if (side === 'client' && m.type === Front.Terminate) {
            terminated = true;
            // A pooled target connection lives on: its Terminate is ours to hold back.
            if (opts.release) {
              send(out.take());
              end('client');
              return;
            }
            out.pass(m);
            break;
          }
          let later: Promise<Buffer> | undefined;
          /** Rows of a run cut into rows, after the one whose mapping waits. */
          let rest: Message[] = [];
          try {
            if (m instanceof RowRun) {
              if (takeRun(m, out)) continue;
              // Rows a stage reads one by one: the run's rows are mapped in turn.
              const rows = m.rows();
              for (let k = 0; k < rows.length && !later; k++) {
                later = map(rows[k]!, out);
                if (later) rest = rows.slice(k + 1);
              }
            } else later = map(m, out);
          } catch (err) {
            // A target message Warden cannot read (a malformed row): better no session than a wrong one.
            out.take();
            end('error', (err as Error).message);
            return;
          }
          if (later) {
            waiting = true;
            // A statement held for review may wait minutes: the client is still read (up to a bound),
            // so a client that leaves is noticed and its statement withdrawn, never run later.
            if (reviewHolds.has(later)) heldInput = 0;
            else from.pause();
            // Held across an await: keep copies, the socket's chunk is not ours to keep.
            backlog = rest.concat(rowsOfRuns(messages.slice(i + 1))).map(copyMessage);
            later.then(
              (data) => {
                if (ended) return;
                send(data);
                waiting = false;
                pump();
                resume();
              },
              (err: Error) => end('error', err.message),
            );
            break;
          }
        }
        send(out.take());
      }
    };
    const onData = (chunk: Buffer) => {
      if (side === 'client') clientActiveAt = Date.now();
      let messages: Message[];
      try {
        messages = framer.push(chunk);
      } catch (err) {
        if (err instanceof ProtocolError) {
          client.write(
            side === 'client'
              ? errorResponse({ severity: 'FATAL', code: '08P01', message: err.message })
              : unrelayable(err),
          );
        }
        end('error', (err as Error).message);
        return;
      }
      if (messages.length === 0) return;
      if (!waiting) {
        backlog = messages;
        pump();
        return;
      }
      backlog.push(...rowsOfRuns(messages).map(copyMessage));
      if (side === 'client' && messages.some((m) => m.type === Front.Terminate)) {
        end('client', 'the client left while a statement waited');
        return;
      }
      heldInput += chunk.length;
      if (heldInput > MAX_HELD_INPUT) from.pause();
    };
    if (from === target) onTarget('data', onData);
    else from.on('data', onData);
    return resume;
  };

  resumeClient = relay(client, target, fromClient, outboundInto, 'client');
  relay(target, client, fromTarget, inbound, 'target');
  client.on('close', () => end('client'));
  onTarget('close', () => end('target'));
  client.on('error', (err: Error) => end('error', err.message));
  onTarget('error', (err: Error) => end('error', err.message));
  if (opts.targetRest?.length) target.emit('data', opts.targetRest);
  if (opts.clientRest?.length) client.emit('data', opts.clientRest);
  client.resume();
  target.resume();
  return {
    kill(text: string, cause: EndCause = 'killed') {
      if (ended) return;
      const { code, reason } = END_CODES[cause];
      client.write(errorResponse({ severity: 'FATAL', code, message: `${text} (warden)` }));
      end(reason, text);
    },
    idleSince: () => (busy() ? null : clientActiveAt),
  };
}
