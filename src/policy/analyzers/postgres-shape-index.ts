// The normalized key of a statement text without the parser, when the text has the shape of one
// the parser already normalized and differs from it only in plain constants of the same kinds:
// `… WHERE aid = 41` after `… WHERE aid = 7`. The parser's normalization costs tens of
// microseconds a statement, and drivers that inline values (pgbench, ORMs without bind
// parameters) send a new text every time.

import { constantsOf, type Shape, shapeOf } from './postgres-shapes.js';

/**
 * The kinds of constant a text may change and keep its key: digits, digits after a minus sign,
 * and a quoted string without backslashes (whose end no setting can move). Others (E'…', $$…$$,
 * numbers with a fraction or exponent, true/false) are left to the parser. Digits are of two
 * kinds: PostgreSQL makes an Integer of digits that fit 32 bits and a Float of longer ones, and
 * the normalizer treats them apart (it keeps `ORDER BY 1`, a column position, but replaces
 * `ORDER BY 10000000000`).
 */
type ConstantKind = 'int' | 'wide' | '-int' | '-wide' | 'string';

const DIGITS = /^-?[0-9]+$/;
const INT4_MAX = '2147483647';

/** Whether the digits `text` (no sign) fit PostgreSQL's Integer: at most 2^31 - 1. */
function fitsInt4(digits: string): boolean {
  let i = 0;
  while (i < digits.length - 1 && digits[i] === '0') i++;
  const value = digits.slice(i);
  return value.length < INT4_MAX.length || (value.length === INT4_MAX.length && value <= INT4_MAX);
}

function kindOf(text: string): ConstantKind | null {
  if (DIGITS.test(text)) {
    const negative = text[0] === '-';
    const int = fitsInt4(negative ? text.slice(1) : text);
    return negative ? (int ? '-int' : '-wide') : int ? 'int' : 'wide';
  }
  if (text.length >= 2 && text[0] === "'" && text.at(-1) === "'" && !text.includes('\\')) return 'string';
  return null;
}

interface Known {
  shape: Shape;
  kinds: ConstantKind[];
  key: string;
}

/** Most shapes kept; past it the index starts over (the parser refills it). */
const MAX_SHAPES = 2_000;
/** Most distinct lengths of text before a first constant tried per lookup. */
const MAX_LENGTHS = 32;

export class ShapeIndex {
  /** Known shapes by the text before their first constant. */
  private readonly byHead = new Map<string, Known[]>();
  /** The lengths of those heads, most recently added first. */
  private lengths: number[] = [];
  private count = 0;

  /**
   * Remembers the shape of `sql`, whose normalized key (the parser's) is `key`, so that texts of
   * that shape get the key from `keyOf`. Texts with no constant, or with one of a kind this does
   * not vouch for, are not kept.
   */
  add(sql: string, key: string, shape?: Shape): void {
    const known = shape ?? shapeOf(sql, key)?.shape;
    if (!known || known.segments.length < 2) return;
    const spans = constantsOf(sql, known);
    if (!spans) return;
    const kinds: ConstantKind[] = [];
    for (const s of spans) {
      const kind = kindOf(sql.slice(s.start, s.end));
      if (kind === null) return;
      kinds.push(kind);
    }
    if (this.count >= MAX_SHAPES) this.clear();
    const head = known.segments[0] as string;
    const entries = this.byHead.get(head);
    if (entries?.some((e) => e.key === key)) return;
    if (entries) entries.push({ shape: known, kinds, key });
    else this.byHead.set(head, [{ shape: known, kinds, key }]);
    this.count++;
    if (!this.lengths.includes(head.length)) {
      this.lengths.unshift(head.length);
      if (this.lengths.length > MAX_LENGTHS) this.lengths.pop();
    }
  }

  /**
   * The normalized key of `sql` when it has a known shape with every constant of the kind the
   * parsed text had there (so the parser would replace the same constants, in the same places):
   * what the parser's normalization would return. Null otherwise: ask the parser.
   */
  keyOf(sql: string): string | null {
    // The parser reads a C string: a text with a NUL has no key (see normalizedText).
    if (sql.includes('\u0000')) return null;
    for (const length of this.lengths) {
      if (length >= sql.length) continue;
      const entries = this.byHead.get(sql.slice(0, length));
      if (!entries) continue;
      for (const e of entries) {
        const spans = constantsOf(sql, e.shape);
        if (spans?.every((s, k) => kindOf(sql.slice(s.start, s.end)) === e.kinds[k])) return e.key;
      }
    }
    return null;
  }

  get size(): number {
    return this.count;
  }

  private clear(): void {
    this.byHead.clear();
    this.lengths = [];
    this.count = 0;
  }
}
