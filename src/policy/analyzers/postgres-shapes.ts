// The shape of a statement: its normalized text cut at the constants the normalizer replaced, so
// a text of the same shape shows where its own constants sit without another parse.

import { scanSync } from 'libpg-query';
import { charOffsets, type Span } from './postgres-literals.js';

/** The normalized text between constants: `segments[k]` precedes constant k, the last one ends it. */
export interface Shape {
  segments: string[];
}

/**
 * The shape of `sql` from its normalized `key`, or null when it cannot be told for certain. The
 * key copies the text except each constant, which becomes `$n`; an original parameter reads the
 * same in both, so a `$n` of the key that the text does not repeat is a replaced constant.
 */
export function shapeOf(sql: string, key: string): { shape: Shape; constants: Span[] } | null {
  let tokens: Array<{ start: number; end: number; tokenName: string }>;
  try {
    tokens = scanSync(key).tokens;
  } catch {
    return null;
  }
  const toChars = charOffsets(key);
  const segments: string[] = [];
  let keyAt = 0;
  let delta = 0;
  for (const t of tokens) {
    if (t.tokenName !== 'PARAM') continue;
    const [start, end] = [toChars(t.start), toChars(t.end)];
    const param = key.slice(start, end);
    const at = start + delta;
    if (sql.startsWith(param, at) && !isDigit(sql[at + param.length])) continue;
    const constantEnd = constantAt(sql, at);
    if (constantEnd < 0) return null;
    segments.push(key.slice(keyAt, start));
    keyAt = end;
    delta += constantEnd - at - param.length;
  }
  segments.push(key.slice(keyAt));
  const shape = { segments };
  const constants = constantsOf(sql, shape);
  return constants ? { shape, constants } : null;
}

/** Where each constant of `sql` sits, when `sql` has this shape; null when it has not. */
export function constantsOf(sql: string, shape: Shape): Span[] | null {
  const spans: Span[] = [];
  let at = 0;
  const last = shape.segments.length - 1;
  for (let k = 0; k <= last; k++) {
    const segment = shape.segments[k] as string;
    if (!sql.startsWith(segment, at)) return null;
    at += segment.length;
    if (k === last) break;
    const end = constantAt(sql, at);
    if (end < 0) return null;
    spans.push({ start: at, end });
    at = end;
  }
  return at === sql.length ? spans : null;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isWordChar = (c: string | undefined): boolean =>
  c !== undefined &&
  (isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c >= '\u0080');

/**
 * The end of the constant token starting at `at`, or -1. A token this does not know fails the
 * caller, which then parses the text afresh, so this errs towards "unknown", never guesses.
 */
function constantAt(sql: string, at: number): number {
  const c = sql[at];
  const next = sql[at + 1];
  if (c === "'") return quoted(sql, at + 1, false);
  if ((c === 'e' || c === 'E') && next === "'") return quoted(sql, at + 2, true);
  if ((c === 'b' || c === 'B' || c === 'x' || c === 'X') && next === "'") return quoted(sql, at + 2, false);
  if (c === '$') return dollarQuoted(sql, at);
  if (c === '-') {
    let i = at + 1;
    while (sql[i] === ' ' || sql[i] === '\t' || sql[i] === '\n' || sql[i] === '\r') i++;
    return isDigit(sql[i]) || (sql[i] === '.' && isDigit(sql[i + 1])) ? numberAt(sql, i) : -1;
  }
  if (isDigit(c) || (c === '.' && isDigit(next))) return numberAt(sql, at);
  for (const word of ['true', 'false']) {
    if (sql.slice(at, at + word.length).toLowerCase() === word && !isWordChar(sql[at + word.length])) {
      return at + word.length;
    }
  }
  return -1;
}

/** A quoted body from `i` (after the opening quote) to its closing quote; `''` is a quote. */
function quoted(sql: string, i: number, backslashes: boolean): number {
  while (i < sql.length) {
    const c = sql[i];
    if (backslashes && c === '\\') i += 2;
    else if (c === "'") {
      if (sql[i + 1] !== "'") return i + 1;
      i += 2;
    } else i++;
  }
  return -1;
}

function dollarQuoted(sql: string, at: number): number {
  let i = at + 1;
  if (isDigit(sql[i])) return -1;
  while (isWordChar(sql[i])) i++;
  if (sql[i] !== '$') return -1;
  const tag = sql.slice(at, i + 1);
  const close = sql.indexOf(tag, i + 1);
  return close < 0 ? -1 : close + tag.length;
}

/** Digits, a fraction, an exponent, `0x…` and `_` separators: everything up to a non-word character. */
function numberAt(sql: string, i: number): number {
  while (i < sql.length) {
    const c = sql[i];
    if ((c === 'e' || c === 'E') && (sql[i + 1] === '+' || sql[i + 1] === '-') && isDigit(sql[i + 2])) i += 3;
    else if (isWordChar(c) || c === '.') i++;
    else break;
  }
  return i;
}
