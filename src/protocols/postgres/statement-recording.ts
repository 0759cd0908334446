// Turns one PostgreSQL session's traffic into statement events for the recorder: timing from the
// statement's message to its completion, rows, bytes and a sample of the rows as the client got them.
import type { Command, Session } from '../../gateway/session.js';
import type { Decision } from '../../policy/decide.js';
import type { MaskSet } from '../../policy/mask/mask-set.js';
import { errorWithheldBy, withheldErrorMessage } from '../../policy/mask/withheld-errors.js';
import { maskErrorText, maskParams, maskStatementText } from '../../recording/params.js';
import { isoTime } from '../../time.js';
import type { SentBytes } from './chunk-output.js';
import {
  Back,
  type FieldDescription,
  type Message,
  readBindParams,
  readCommandTag,
  readDataRow,
  readNoticeFields,
} from './codec.js';
import type { Result, ResultEvent } from './results.js';
import { encodingOf } from './row-mask.js';

interface Running {
  start: number;
  params: Array<string | null> | null;
  rows: number;
  bytes: number;
  sample: Array<Array<string | null>> | null;
}

/** A value as text: text format as UTF-8, binary as PostgreSQL's hex bytea notation. */
const asText = (v: Buffer, format: number): string =>
  format === 1 ? `\\x${v.toString('hex')}` : v.toString('utf8');

/** A result value as text: text-like types are UTF-8 in binary format too, the rest hex. */
function fieldText(v: Buffer, f: FieldDescription | undefined): string {
  const encoding = encodingOf(f);
  if (encoding === 'opaque') return asText(v, 1);
  return v.toString('utf8', encoding === 'jsonb' ? 1 : 0);
}

/** The row count a CommandComplete tag ends with (`SELECT 3`, `INSERT 0 1`), or null (`BEGIN`). */
function tagRows(m: Message): number | null {
  if (m.type !== Back.CommandComplete) return null;
  const last = readCommandTag(m.body).split(' ').pop() ?? '';
  return /^\d+$/.test(last) ? Number(last) : null;
}

export class StatementRecording {
  private readonly running = new WeakMap<Result<Command>, Running>();
  /** When a simple query's current statement started: the Query, then each previous completion. */
  private readonly queryStart = new WeakMap<Command, number>();
  /** Commands recorded when refused: the target's error for their marker is not a second event. */
  private readonly refusedCommands = new WeakSet<Command>();
  private readonly sampleRows: number;
  private lastResult: Result<Command> | null = null;
  private lastRun: Running | null = null;

  constructor(private readonly session: Session) {
    this.sampleRows = session.sampleRows;
  }

  private maskSet(d: Decision): MaskSet | null {
    return this.session.masksFor(d);
  }

  queried(c: Command): void {
    this.queryStart.set(c, performance.now());
  }

  /** A Bind of a known statement: its portal's result starts now, with these parameters. */
  bound(result: Result<Command>, body: Buffer): void {
    this.started(result, readBindParams(body));
  }

  /** An allowed FunctionCall: its result starts now, with its arguments as parameters. */
  called(result: Result<Command>, args: ReadonlyArray<{ format: number; value: Buffer | null }>): void {
    this.started(result, args);
  }

  private started(
    result: Result<Command>,
    args: ReadonlyArray<{ format: number; value: Buffer | null }>,
  ): void {
    const d = result.command.decision;
    const values = args.map((p) => (p.value === null ? null : asText(p.value, p.format)));
    this.lastResult = null;
    this.running.set(result, {
      start: performance.now(),
      params: maskParams(values, d, this.maskSet(d)),
      rows: 0,
      bytes: 0,
      sample: null,
    });
  }

  /** A statement Warden refused: recorded now, with its decision and the error the client gets. */
  refused(c: Command, code: string, message: string): void {
    this.refusedCommands.add(c);
    this.emit(c, performance.now(), null, {
      rows: null,
      bytes: 0,
      sample: null,
      error: `${code}: ${message}`,
    });
  }

  /** Whether rows of `ev` can be counted in bulk: the sample of their result is complete (COPY has none). */
  countsRows(ev: ResultEvent<Command>): boolean {
    if (ev.kind !== 'row' || this.refusedCommands.has(ev.result.command)) return true;
    return this.sampleRows === 0 || this.run(ev.result).rows >= this.sampleRows;
  }

  /** `count` rows of `ev`, `bytes` in all, sent as received (a RowRun), once `countsRows` allowed it. */
  countRows(ev: ResultEvent<Command>, count: number, bytes: number): void {
    if ((ev.kind !== 'row' && ev.kind !== 'copy-data') || this.refusedCommands.has(ev.result.command)) return;
    const run = this.run(ev.result);
    run.rows += count;
    run.bytes += bytes;
  }

  /**
   * Every target message, with the bytes the client got for it (after masks and limits); those bytes
   * are looked at only for the sample rows, the rest only counted.
   */
  observe(ev: ResultEvent<Command>, m: Message, sent: SentBytes): void {
    if (ev.kind === 'other' || this.refusedCommands.has(ev.result.command)) return;
    const r = ev.result;
    const length = sent.lastLength;
    switch (ev.kind) {
      case 'row':
      case 'copy-data': {
        if (length === 0) return;
        const run = this.run(r);
        run.rows++;
        run.bytes += length;
        if (ev.kind === 'row' && run.rows <= this.sampleRows) {
          const fields = r.fields ?? [];
          const row = readDataRow(sent.lastBytes().subarray(5)).map((v, i) =>
            v === null ? null : fieldText(v, fields[i]),
          );
          run.sample ??= [];
          run.sample.push(row);
        }
        return;
      }
      case 'end':
        // A function's value is its result: its bytes count like a row's.
        if (m.type === Back.FunctionCallResponse) this.run(r).bytes += length;
        this.finish(r, { rows: this.rowsOf(r, m), error: null });
        return;
      case 'error': {
        const f = readNoticeFields(m.body);
        const d = r.command.decision;
        const rule = errorWithheldBy(d, r.statement, f);
        const text =
          rule !== null ? withheldErrorMessage(rule) : maskErrorText(f.get('M') ?? '', d, this.maskSet(d));
        this.finish(r, { rows: null, error: `${f.get('C') ?? 'XX000'}: ${text}` });
        return;
      }
      default:
        return;
    }
  }

  private run(r: Result<Command>): Running {
    // Rows come in long runs of one result: its entry is kept at hand.
    if (r === this.lastResult && this.lastRun !== null) return this.lastRun;
    let run = this.running.get(r);
    if (!run) {
      run = {
        start: this.queryStart.get(r.command) ?? performance.now(),
        params: null,
        rows: 0,
        bytes: 0,
        sample: null,
      };
      this.running.set(r, run);
    }
    this.lastResult = r;
    this.lastRun = run;
    return run;
  }

  /** Rows the client got when it got rows (a limit may have cut them), else the tag's count. */
  private rowsOf(r: Result<Command>, m: Message): number | null {
    const run = this.running.get(r);
    return run && run.rows > 0 ? run.rows : tagRows(m);
  }

  private finish(r: Result<Command>, o: { rows: number | null; error: string | null }): void {
    const run = this.run(r);
    this.running.delete(r);
    this.lastResult = null;
    this.lastRun = null;
    const now = performance.now();
    // The next statement of a simple query starts when this one completes.
    if (this.queryStart.has(r.command)) this.queryStart.set(r.command, now);
    this.emit(
      r.command,
      run.start,
      run.params,
      { rows: o.rows, bytes: run.bytes, sample: run.sample, error: o.error },
      now,
    );
  }

  private emit(
    c: Command,
    start: number,
    params: Array<string | null> | null,
    o: {
      rows: number | null;
      bytes: number;
      sample: Array<Array<string | null>> | null;
      error: string | null;
    },
    end = start,
  ): void {
    const d = c.decision;
    this.session.record({
      time: isoTime(performance.timeOrigin + start),
      duration_ms: Math.max(0, Math.round((end - start) * 1000) / 1000),
      text: maskStatementText(c.text, d, this.maskSet(d), c.facts),
      params,
      decision: d.action,
      rules: d.rules,
      rows: o.rows,
      bytes: o.bytes,
      error: o.error,
      sample: this.sampleRows > 0 ? o.sample : null,
    });
  }
}
