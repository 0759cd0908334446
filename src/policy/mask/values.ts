// The Masker: column rules by result metadata plus detectors on free text, for rows and JSON.
// Column globs are compiled once and resolved to a per-result-shape plan, so no regex runs per cell for them.
import { globRegExp } from '../glob.js';
import { ALL_DETECTORS, type DetectorName, detect, isDetectorName, type Span } from './detectors.js';
import { MaskSpecError, type MaskStyle, type Replacer, replacerFor } from './styles.js';

export interface MaskSpec {
  /** Globs on `table.column` or bare `column`, case-insensitive; `*` matches any run of characters. */
  columns?: string[];
  /** Detectors run on text not covered by a column rule. Omitted: all detectors; `[]`: none. */
  detectors?: DetectorName[];
  style: MaskStyle;
}

export interface ColumnRef {
  table: string | null;
  name: string;
}

/** Per result shape: which columns are masked whole; the rest go through detectors. */
export interface RowPlan {
  readonly masked: readonly boolean[];
  /** Whether values of columns not masked whole may change too (a rule runs detectors). */
  readonly scans: boolean;
  /** Per column masked whole: the replacement when it ignores the value (redact), so it is encoded once. */
  readonly constants: ReadonlyArray<string | undefined>;
  /** Per column masked whole: its replacer's reading of UTF-8 bytes in place, where the style has one. */
  readonly fromBytes: ReadonlyArray<Replacer['fromBytes']>;
  /** Per column masked whole: the same, written as bytes where the style can (Replacer.fromBytesInto). */
  readonly fromBytesInto: ReadonlyArray<Replacer['fromBytesInto']>;
  mask(values: ReadonlyArray<string | null>): Array<string | null>;
  /** One value of column `i`, as `mask` would give it; lets a caller decode only the values it masks. */
  maskAt(i: number, value: string): string;
}

interface ColumnGlob {
  table: RegExp | null; // null: pattern had no table part
  tableIsWildcard: boolean;
  column: RegExp;
}

function compileGlob(pattern: string): ColumnGlob {
  const dot = pattern.lastIndexOf('.');
  if (dot < 0) return { table: null, tableIsWildcard: true, column: globRegExp(pattern) };
  const table = pattern.slice(0, dot);
  return {
    table: globRegExp(table),
    tableIsWildcard: /^\*+$/.test(table),
    column: globRegExp(pattern.slice(dot + 1)),
  };
}

function globMatches(g: ColumnGlob, table: string | null, name: string): boolean {
  if (!g.column.test(name)) return false;
  if (g.table === null) return true;
  // A column of unknown origin (an expression, a driver without table oids) only meets `*.col` rules.
  if (table === null) return g.tableIsWildcard;
  // A schema-qualified table (`public.users`, as a catalog names it) also meets a pattern without schema.
  const dot = table.indexOf('.');
  return g.table.test(table) || (dot >= 0 && g.table.test(table.slice(dot + 1)));
}

const PLAN_CACHE_LIMIT = 256;

export class Masker {
  readonly detectors: readonly DetectorName[];
  readonly replace: Replacer;
  private readonly globs: ColumnGlob[];
  private readonly plans = new Map<string, RowPlan>();

  constructor(spec: MaskSpec, tokenKey?: string | Buffer) {
    this.replace = replacerFor(spec.style, tokenKey);
    for (const d of spec.detectors ?? []) {
      if (!isDetectorName(d)) {
        throw new MaskSpecError(
          `mask detectors: unknown detector "${String(d)}"; accepted: ${ALL_DETECTORS.join(', ')}`,
        );
      }
    }
    this.detectors = spec.detectors ?? ALL_DETECTORS;
    this.globs = (spec.columns ?? []).map(compileGlob);
  }

  /** True when a column rule covers `table.name` (or bare `name`). */
  matchesColumn(table: string | null, name: string): boolean {
    return this.globs.some((g) => globMatches(g, table, name));
  }

  /** Detector spans in `text`, sorted and non-overlapping. */
  spans(text: string): Span[] {
    return this.detectors.length === 0 ? [] : detect(text, this.detectors);
  }

  /** Rewrites `text` with every span replaced in the masker's style. */
  applySpans(text: string, spans: readonly Span[]): string {
    if (spans.length === 0) return text;
    let out = '';
    let at = 0;
    for (const s of spans) {
      out += text.slice(at, s.start) + this.replace(text.slice(s.start, s.end));
      at = s.end;
    }
    return out + text.slice(at);
  }

  /** Masks detector matches inside free text. */
  maskText(text: string): string {
    return this.applySpans(text, this.spans(text));
  }

  /** The plan for one result shape; cached, so engines may call it per row or hold it per result. */
  plan(columns: readonly ColumnRef[]): RowPlan {
    const key = columns.map((c) => `${c.table ?? '\u0000'}\u0001${c.name}`).join('\u0002');
    const hit = this.plans.get(key);
    if (hit) return hit;
    const masked = columns.map((c) => this.matchesColumn(c.table, c.name));
    const runDetectors = this.detectors.length > 0;
    const maskAt = (i: number, v: string): string => {
      if (masked[i]) return this.replace(v);
      return runDetectors ? this.maskText(v) : v;
    };
    const plan: RowPlan = {
      masked,
      scans: runDetectors,
      constants: masked.map((m) => (m ? this.replace.constant : undefined)),
      fromBytes: masked.map((m) => (m ? this.replace.fromBytes : undefined)),
      fromBytesInto: masked.map((m) => (m ? this.replace.fromBytesInto : undefined)),
      mask: (values) => values.map((v, i) => (v === null ? null : maskAt(i, v))),
      maskAt,
    };
    if (this.plans.size >= PLAN_CACHE_LIMIT) this.plans.delete(this.plans.keys().next().value as string);
    this.plans.set(key, plan);
    return plan;
  }

  maskRow(columns: readonly ColumnRef[], values: ReadonlyArray<string | null>): Array<string | null> {
    return this.plan(columns).mask(values);
  }

  /**
   * Same structure back: string leaves pass through detectors; any value under a key that a column glob
   * matches (the parent key stands in for the table) is masked whole, numbers and booleans as strings.
   */
  maskJson(value: unknown): unknown {
    return this.walk(value, null, false);
  }

  private walk(value: unknown, parentKey: string | null, whole: boolean): unknown {
    if (value === null || value === undefined) return value;
    if (typeof value === 'string') return whole ? this.replace(value) : this.maskText(value);
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      return whole ? this.replace(String(value)) : value;
    }
    if (Array.isArray(value)) return value.map((v) => this.walk(v, parentKey, whole));
    if (typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        out[k] = this.walk(v, k, whole || this.matchesColumn(parentKey, k));
      }
      return out;
    }
    return value;
  }
}

export function createMasker(spec: MaskSpec, tokenKey?: string | Buffer): Masker {
  return new Masker(spec, tokenKey);
}
