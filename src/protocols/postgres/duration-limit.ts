// Enforces `limit: { duration }` on one PostgreSQL session, like statement_timeout but from the
// gateway: times the statement the target is running and, past its limit, has the target cancel it.
import { formatDuration } from '../../config/duration.js';
import type { Command } from '../../gateway/session.js';
import { Back, errorResponse, type Message, readNoticeFields } from './codec.js';
import type { ResultEvent, ResultTracker } from './results.js';

/** SQLSTATE query_canceled: what PostgreSQL answers a cancelled statement with, and what we keep. */
export const QUERY_CANCELED = '57014';

export interface DurationLimitDeps {
  tracker: ResultTracker<Command>;
  /** Sends a CancelRequest for the target's backend; `done` once the target has acted on it (or failed). */
  cancel(done: () => void): void;
  /** Stops, then restarts, forwarding the client's messages to the target. */
  hold(): void;
  release(): void;
  /** A statement stopped by its limit, with the message its client got. */
  stopped(c: Command, message: string): void;
}

/** A duration-limited Query, Execute or FunctionCall the target has not answered yet. */
interface Timed {
  command: Command;
  limitMs: number;
  /** The tracker's expectation of its answer. */
  handle: object;
  /** When it started to run (performance.now()); null while an earlier statement still runs. */
  start: number | null;
  /** A cancel was sent for it: never a second one. */
  cancelled: boolean;
}

/**
 * Statements without a limit never reach this class beyond one check in `sent`, and one that
 * completes in time costs a push and a shift. There is one timer per session, armed while a limited
 * statement is outstanding and left to lapse rather than cleared, so a stream of quick limited
 * statements arms it about once per limit period, not once per statement.
 */
export class DurationLimits {
  /** Oldest first, as the target answers them. */
  private readonly timed: Timed[] = [];
  private timer: NodeJS.Timeout | null = null;
  private due = Number.POSITIVE_INFINITY;
  /** Cancels in flight: the client is held while any is. */
  private holding = 0;
  private closed = false;

  constructor(private readonly deps: DurationLimitDeps) {}

  /** Whether a cancel was sent that the target may not have acted on yet. */
  get cancelling(): boolean {
    return this.holding > 0;
  }

  /** Whether the target's messages need to pass through `received`. */
  get active(): boolean {
    return this.timed.length > 0;
  }

  /** After the tracker saw a Query, Execute or FunctionCall sent: times it when its decision has a duration limit. */
  sent(): void {
    const command = this.deps.tracker.lastCommand();
    const limitMs = command?.decision.limits.durationMs ?? null;
    if (command === null || limitMs === null || command.decision.action !== 'allow') return;
    const handle = this.deps.tracker.newest();
    if (!handle) return;
    this.timed.push({ command, limitMs, handle, start: null, cancelled: false });
    if (this.timed.length === 1) this.check(performance.now());
  }

  /** Every target message while `active`, after the tracker saw it: the message for the client. */
  received(m: Message, ev: ResultEvent<Command>): Message {
    switch (m.type) {
      case Back.CommandComplete:
      case Back.EmptyQueryResponse:
      case Back.PortalSuspended:
      case Back.FunctionCallResponse:
      case Back.ErrorResponse:
      case Back.ReadyForQuery:
        break;
      default:
        return m;
    }
    // A multi-statement Query is timed as a whole (as PostgreSQL before 13 did): PostgreSQL holds
    // its results until the end, so the wire does not tell when each of its statements finished.
    const head = this.timed[0]!;
    const out =
      ev.kind === 'error' && head.cancelled && ev.result.command === head.command
        ? this.stoppedError(m, head)
        : m;
    this.check(performance.now());
    return out;
  }

  /** The session ended: no timer left behind. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timed.length = 0;
  }

  /** Drops answered statements, starts the clock of the one now running, cancels it when overdue. */
  private check(now: number): void {
    let head = this.timed[0];
    for (; head; head = this.timed[0]) {
      const p = this.deps.tracker.progress(head.handle);
      if (p === 'done') {
        this.timed.shift();
        continue;
      }
      // A statement queued behind an unlimited one is not running yet; its clock starts when
      // the one before it is answered (this runs again then).
      if (p === 'running') head.start ??= now;
      break;
    }
    if (!head || head.start === null || head.cancelled) return;
    const due = head.start + head.limitMs;
    if (now >= due) this.stop(head);
    else this.arm(due, now);
  }

  private arm(due: number, now: number): void {
    // A timer due sooner re-checks then and re-arms: cheaper than clearing it per statement.
    if (this.timer && this.due <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(due - now)));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.due = Number.POSITIVE_INFINITY;
    if (!this.closed) this.check(performance.now());
  };

  /**
   * Cancels the statement that is still the oldest unanswered one. A CancelRequest names a
   * backend, not a statement, so the client's next messages are held until the target has
   * signalled its backend: a backend idle between statements then ignores the cancel, and it
   * cannot reach a statement sent afterwards. What remains: the statement finishes on the target
   * while its answer is on the way to us, and the cancel lands on a statement the client had
   * already pipelined behind it, or during the commit that follows it; PostgreSQL's own
   * statement_timeout has no such race, psql's Ctrl-C has the same one.
   */
  private stop(t: Timed): void {
    t.cancelled = true;
    if (this.holding++ === 0) this.deps.hold();
    this.deps.cancel(() => {
      if (--this.holding === 0 && !this.closed) this.deps.release();
    });
  }

  /** The target's cancel error, told as what happened: which rule stopped the statement, after how long. */
  private stoppedError(m: Message, t: Timed): Message {
    if (readNoticeFields(m.body).get('C') !== QUERY_CANCELED) return m;
    const rule = t.command.decision.durationLimitRule ?? 'limit';
    const text = `statement stopped after ${formatDuration(t.limitMs)} by rule "${rule}" (warden)`;
    this.deps.stopped(t.command, text);
    const raw = errorResponse({
      severity: 'ERROR',
      code: QUERY_CANCELED,
      message: text,
      hint: `Make the statement faster, or ask for an exception to rule "${rule}".`,
    });
    return { type: m.type, raw, body: raw.subarray(5) };
  }
}
