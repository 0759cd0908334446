// Applies a decision's masks and row limit to the results it produced: plans each result shape
// once (resolving table OIDs through the catalog when a rule names tables), then rewrites rows.
import type { Command } from '../../gateway/session.js';
import type { Decision } from '../../policy/decide.js';
import { globRegExp } from '../../policy/glob.js';
import { fieldPositions } from '../../policy/lineage.js';
import type { DerivedField, MaskRuleSpec, MaskSet } from '../../policy/mask/mask-set.js';
import type { RowPlan } from '../../policy/mask/values.js';
import { errorWithheldBy, withheldErrorMessage } from '../../policy/mask/withheld-errors.js';
import type { ChunkOutput } from './chunk-output.js';
import {
  Back,
  type ErrorFields,
  errorResponse,
  type FieldDescription,
  Frame,
  type Message,
  noticeResponse,
  type RowRun,
  readCommandTag,
  readCopyResponse,
  readDataRow,
  readNoticeFields,
} from './codec.js';
import type { Result, ResultEvent } from './results.js';
import { commandCompleteWithRows, maskCopyRow, RowMasker } from './row-mask.js';

/** `schema.table` for each table OID it knows; OIDs it does not know are left out. */
export type TableResolver = (oids: number[]) => Promise<Map<number, string>>;

export interface RewriteDeps {
  masksFor(decision: Decision): MaskSet | null;
  resolveTables?: TableResolver;
  warn(message: string, fields: Record<string, unknown>): void;
}

interface ResultState {
  /** Null when no value of this result can change: rows pass as received. */
  masker: RowMasker | null;
  copyPlan: RowPlan | null;
  /** A text-format COPY OUT: one row per CopyData, so rows can be counted and masked. */
  copyText: boolean;
  rows: number;
  dropped: number;
}

interface QualifiedColumn {
  column: RegExp;
  style: MaskRuleSpec['style'];
}

const EMPTY = Buffer.alloc(0);

/** Whether a decision can change any result at all; most cannot, and their bytes pass untouched. */
const touches = (d: Decision): boolean => d.masks.length > 0 || d.limits.rows !== null;

/** Column patterns whose table part is not a wildcard: only the catalog can tell if they apply. */
function qualifiedColumns(d: Decision): QualifiedColumn[] {
  return d.masks.flatMap((m) =>
    (m.columns ?? []).flatMap((p) => {
      const dot = p.lastIndexOf('.');
      if (dot < 0 || /^\*+$/.test(p.slice(0, dot))) return [];
      return [{ column: globRegExp(p.slice(dot + 1)), style: m.style }];
    }),
  );
}

export class ResultRewriter {
  private readonly states = new WeakMap<Result<Command>, ResultState>();
  /** Column patterns of each decision's masks, compiled once (decisions are shared per statement shape). */
  private readonly qualified = new WeakMap<Decision, QualifiedColumn[]>();
  /** Table OID → `schema.table`, for this session's target. */
  private readonly tables = new Map<number, string>();
  /**
   * The last masker made with nothing left to resolve, and what it was made for: a statement run
   * again with new constants (`pgbench -S`) has the same facts and decision and describes the same
   * fields, and its rows need the same masker, not a new plan.
   */
  private lastShape:
    | {
        decision: Decision;
        facts: unknown;
        statement: number;
        fields: FieldDescription[];
        masker: RowMasker | null;
      }
    | undefined;
  private lastResult: Result<Command> | null = null;
  private lastState: ResultState | undefined;

  constructor(private readonly deps: RewriteDeps) {}

  /**
   * Appends the bytes for target message `m` to `out`, or returns a promise of them while the catalog
   * is asked about the result's tables. A row that changes is written straight into `out`'s buffer.
   */
  rewriteInto(m: Message, ev: ResultEvent<Command>, out: ChunkOutput): Promise<Buffer> | undefined {
    if (ev.kind === 'other' || !touches(ev.result.command.decision)) {
      out.pass(m);
      return undefined;
    }
    if (ev.kind === 'row') {
      const r = ev.result;
      // Rows come in long runs of one result: the last one's state is kept at hand.
      const state = r === this.lastResult ? this.lastState : this.states.get(r);
      if (state) {
        this.lastResult = r;
        this.lastState = state;
        this.rowInto(m, r, state, out);
        return undefined;
      }
    }
    const b = this.rewrite(m, ev);
    if (b instanceof Promise) return b;
    if (b === m.raw) out.pass(m);
    else out.put(m, b);
    return undefined;
  }

  /**
   * Appends the rows of `run` to `out` when its result's plan is all they need: each row passed or
   * masked, none past the row limit (the rows are counted towards it). Returns the bytes sent for
   * them, or -1, with nothing appended, when the run must go row by row through `rewriteInto` (the
   * plan is not made yet, or the limit falls within the run). Throws ProtocolError on a bad row.
   */
  runInto(ev: ResultEvent<Command>, run: RowRun, out: ChunkOutput): number {
    // Rows no statement expects pass as they came, as in rewriteInto.
    if (
      ev.kind === 'other' ||
      ((ev.kind === 'row' || ev.kind === 'copy-data') && !touches(ev.result.command.decision))
    ) {
      out.pass(run);
      return run.end - run.start;
    }
    if (ev.kind !== 'row' && ev.kind !== 'copy-data') return -1;
    const r = ev.result;
    const state = r === this.lastResult ? this.lastState : this.states.get(r);
    if (!state) return -1;
    if (ev.kind === 'copy-data') {
      // Binary COPY data is not cut at rows: it passes, uncounted, as in `rewrite`.
      if (state.copyText && (state.copyPlan !== null || this.overLimitWithin(r, state, run.count))) return -1;
      if (state.copyText) state.rows += run.count;
      out.pass(run);
      return run.end - run.start;
    }
    if (this.overLimitWithin(r, state, run.count)) return -1;
    this.lastResult = r;
    this.lastState = state;
    state.rows += run.count;
    const masker = state.masker;
    if (masker === null) {
      out.pass(run);
      return run.end - run.start;
    }
    const chunk = run.chunk;
    let sent = 0;
    for (let at = run.start; at < run.end; ) {
      const end = run.endOf(at);
      const size = masker.measure(chunk, at, end);
      if (size < 0) {
        out.passBytes(chunk, at, end);
        sent += end - at;
      } else {
        masker.writeRowTo(out, end - at, size);
        sent += size;
      }
      at = end;
    }
    return sent;
  }

  /** The bytes for target message `m`: its own, a rewritten one, none (a dropped row), or a later answer. */
  rewrite(m: Message, ev: ResultEvent<Command>): Buffer | Promise<Buffer> {
    if (ev.kind === 'other' || !touches(ev.result.command.decision)) return m.raw;
    const r = ev.result;
    const state = this.states.get(r);
    switch (ev.kind) {
      case 'fields':
        return state ? m.raw : then(this.prepare(r, r.fields ?? []), () => m.raw);
      case 'row': {
        if (state) return this.row(m, r, state);
        const fields = r.fields ?? this.unknownShape(r, readDataRow(m.body).length);
        return then(this.prepare(r, fields, r.fields === null), (s) => this.row(m, r, s));
      }
      case 'copy':
        return then(state ?? this.prepare(r, r.fields ?? []), (s) => {
          const copy = readCopyResponse(m.body);
          s.copyText = copy.format === 0;
          s.copyPlan = s.copyText ? this.copyPlan(r.command.decision, copy.columns.length) : null;
          return m.raw;
        });
      case 'copy-data':
        if (!state?.copyText) return m.raw;
        if (this.overLimit(r, state)) return EMPTY;
        return state.copyPlan ? maskCopyRow(m.raw, m.body, state.copyPlan) : m.raw;
      case 'end':
        return state ? this.end(m, r, state) : m.raw;
      case 'suspended':
        return m.raw;
      case 'error':
        return withholdError(m, r);
    }
  }

  private row(m: Message, r: Result<Command>, s: ResultState): Buffer {
    if (this.overLimit(r, s)) return EMPTY;
    if (!s.masker) return m.raw;
    // From the received chunk where the framer left the row: no view of it is made to read it.
    const out = m instanceof Frame ? s.masker.mask(m.chunk, m.start, m.end) : s.masker.mask(m.raw);
    return out ?? m.raw;
  }

  private rowInto(m: Message, r: Result<Command>, s: ResultState, out: ChunkOutput): void {
    const masker = s.masker;
    if (this.overLimit(r, s)) out.put(m, EMPTY);
    else if (masker === null) out.pass(m);
    else {
      const size =
        m instanceof Frame ? masker.measure(m.chunk, m.start, m.end) : masker.measure(m.raw, 0, m.raw.length);
      if (size < 0) out.pass(m);
      else masker.writeTo(out, m, size);
    }
  }

  /** Whether the row limit falls within the next `count` rows (they must then go one by one). */
  private overLimitWithin(r: Result<Command>, s: ResultState, count: number): boolean {
    const limit = r.command.decision.limits.rows;
    return limit !== null && s.rows + count > limit;
  }

  /** Counts a row; true when it is past the limit and must be dropped. */
  private overLimit(r: Result<Command>, s: ResultState): boolean {
    const limit = r.command.decision.limits.rows;
    if (limit !== null && s.rows >= limit) {
      // Keep reading and dropping: cancelling would race the client's own next statement.
      s.dropped++;
      return true;
    }
    s.rows++;
    return false;
  }

  private end(m: Message, r: Result<Command>, s: ResultState): Buffer {
    if (s.dropped === 0 || m.type !== Back.CommandComplete) return m.raw;
    const d = r.command.decision;
    const notice = noticeResponse({
      severity: 'NOTICE',
      code: '01000',
      message: `result stopped after ${s.rows} rows by rule "${d.rowLimitRule ?? 'limit'}" (warden)`,
      detail: `${s.dropped} more rows were not sent.`,
    });
    return Buffer.concat([notice, commandCompleteWithRows(readCommandTag(m.body), s.rows)]);
  }

  private maskSet(d: Decision): MaskSet | null {
    return this.deps.masksFor(d);
  }

  /** Rows with no RowDescription for them: their fields have no names, so masking fails closed. */
  private unknownShape(r: Result<Command>, count: number): FieldDescription[] {
    if (this.maskSet(r.command.decision)) {
      this.deps.warn('rows without a row description; masking every field', { fields: count });
    }
    return Array.from({ length: count }, () => ({ name: '', tableOid: 0, column: 0, typeOid: 0, format: 0 }));
  }

  private prepare(
    r: Result<Command>,
    fields: FieldDescription[],
    unknown = false,
  ): ResultState | Promise<ResultState> {
    const d = r.command.decision;
    const last = this.lastShape;
    if (
      !unknown &&
      last?.decision === d &&
      last.facts === r.command.facts &&
      last.statement === r.statement &&
      sameFields(last.fields, fields)
    ) {
      const s: ResultState = { masker: last.masker, copyPlan: null, copyText: false, rows: 0, dropped: 0 };
      this.states.set(r, s);
      return s;
    }
    const set = this.maskSet(d);
    let qualified = set ? this.qualified.get(d) : [];
    if (qualified === undefined) {
      qualified = qualifiedColumns(d);
      this.qualified.set(d, qualified);
    }
    const missing = [
      ...new Set(
        fields
          .filter((f) => f.tableOid !== 0 && !this.tables.has(f.tableOid))
          .filter((f) => qualified.some((q) => q.column.test(f.name)))
          .map((f) => f.tableOid),
      ),
    ];
    const done = (failClosed: boolean) => {
      const s = this.build(r, fields, failClosed ? qualified : [], unknown);
      this.states.set(r, s);
      if (!failClosed && !unknown) {
        this.lastShape = {
          decision: d,
          facts: r.command.facts,
          statement: r.statement,
          fields,
          masker: s.masker,
        };
      }
      return s;
    };
    if (missing.length === 0) return done(false);
    if (!this.deps.resolveTables) return done(true);
    return this.deps.resolveTables(missing).then(
      (names) => {
        for (const oid of missing) this.tables.set(oid, names.get(oid) ?? '');
        return done(false);
      },
      (err: Error) => {
        this.deps.warn('cannot resolve result table names; masking every field a column rule could name', {
          err: err.message,
        });
        return done(true);
      },
    );
  }

  /** `failClosed`: patterns to apply by column name alone; `unknown`: nameless fields, all masked. */
  private build(
    r: Result<Command>,
    fields: FieldDescription[],
    failClosed: QualifiedColumn[],
    unknown: boolean,
  ): ResultState {
    const base = { copyPlan: null, copyText: false, rows: 0, dropped: 0 };
    const d = r.command.decision;
    const set = this.maskSet(d);
    if (!set) return { ...base, masker: null };
    const columns = fields.map((f) => ({ table: this.tables.get(f.tableOid) || null, name: f.name }));
    const derived: DerivedField[] = [];
    fields.forEach((f, i) => {
      const hit = failClosed.find((q) => q.column.test(f.name));
      if (hit || unknown) derived.push({ field: i, style: hit?.style ?? d.masks[0]!.style });
    });
    derived.push(...this.derivedFields(r, fields));
    const plan = set.plan(columns, derived);
    const scans = set.scans;
    return {
      ...base,
      masker: scans || plan.masked.some(Boolean) ? new RowMasker(fields, plan, scans) : null,
    };
  }

  /** Fields computed from a masked column (`upper(ssn)`), placed by the statement's outputs. */
  private derivedFields(r: Result<Command>, fields: FieldDescription[]): DerivedField[] {
    const { decision: d, facts } = r.command;
    const mine = d.derived.filter((x) => x.statement === r.statement);
    if (mine.length === 0 || facts.protocol_kind !== 'sql') return [];
    const positions = fieldPositions(facts.statements[r.statement]?.outputs ?? [], fields.length);
    return mine.flatMap((x) => {
      const at = positions[x.output];
      if (at !== null && at !== undefined) return [{ field: at, style: x.style }];
      // The count does not fit the outputs: mask every field of that name, or all of them.
      const named = fields.flatMap((f, i) => (f.name === x.name ? [i] : []));
      this.deps.warn('cannot place a derived masked column; masking by name', { name: x.name });
      return (named.length > 0 ? named : fields.map((_, i) => i)).map((field) => ({ field, style: x.style }));
    });
  }

  /** COPY text rows carry no column names: only detectors apply (lineage refuses COPY of masked columns). */
  private copyPlan(d: Decision, count: number): RowPlan | null {
    const set = this.maskSet(d);
    if (!set?.scans) return null;
    return set.plan(Array.from({ length: count }, () => ({ table: null, name: '' })));
  }
}

/** The fields of an error that name objects, never values: what clients read a violation by (`n`). */
const NAME_FIELDS = ['s', 't', 'c', 'd', 'n'] as const;

/**
 * An error that could quote a masked value, with its severity, SQLSTATE and the names it is about
 * (schema, table, column, data type, constraint) kept: `users_pkey` tells an upsert which key clashed.
 */
function withholdError(m: Message, r: Result<Command>): Buffer {
  if (r.command.decision.errorsWithheld.length === 0) return m.raw;
  const f = readNoticeFields(m.body);
  const rule = errorWithheldBy(r.command.decision, r.statement, f);
  if (rule === null) return m.raw;
  const severity = (f.get('V') ?? f.get('S') ?? 'ERROR') as ErrorFields['severity'];
  const names = NAME_FIELDS.flatMap((k) => {
    const name = f.get(k);
    return name === undefined ? [] : [[k, name] as [typeof k, string]];
  });
  return errorResponse({ severity, code: f.get('C') ?? 'XX000', message: withheldErrorMessage(rule), names });
}

/** Whether two row descriptions describe the same fields. */
function sameFields(a: readonly FieldDescription[], b: readonly FieldDescription[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.name !== y.name ||
      x.tableOid !== y.tableOid ||
      x.column !== y.column ||
      x.typeOid !== y.typeOid ||
      x.format !== y.format
    ) {
      return false;
    }
  }
  return true;
}

function then<T>(v: T | Promise<T>, f: (v: T) => Buffer): Buffer | Promise<Buffer> {
  return v instanceof Promise ? v.then(f) : f(v);
}
