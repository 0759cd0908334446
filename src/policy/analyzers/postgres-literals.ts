// Where a constant the parser located starts and ends in the text, from PostgreSQL's own scanner,
// and what value a constant token stands for, so a masked column's literal can be replaced in place.

import { scanSync } from 'libpg-query';

export interface Span {
  start: number;
  end: number;
}

/**
 * Spans of constants at the parser's `locations` (byte offsets in UTF-8), as UTF-16 offsets of
 * `sql`. A negative number is two tokens (`-` and the digits) the parser reads as one constant.
 * Locations that start no token are left out; so is everything when the text does not scan.
 */
export function constantSpans(sql: string, locations: readonly number[]): Map<number, Span> {
  const spans = new Map<number, Span>();
  if (locations.length === 0) return spans;
  let tokens: Array<{ start: number; end: number; text: string; tokenName: string }>;
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return spans;
  }
  const wanted = new Set(locations);
  const toChars = charOffsets(sql);
  tokens.forEach((t, i) => {
    if (!wanted.has(t.start)) return;
    const next = tokens[i + 1];
    const signed =
      (t.text === '-' || t.text === '+') &&
      next &&
      (next.tokenName === 'ICONST' || next.tokenName === 'FCONST');
    const end = signed ? next.end : t.end;
    spans.set(t.start, { start: toChars(t.start), end: toChars(end) });
  });
  return spans;
}

/** Byte offset → UTF-16 offset; the identity for ASCII text, the common case. */
export function charOffsets(sql: string): (byte: number) => number {
  if (Buffer.byteLength(sql) === sql.length) return (byte) => byte;
  const bytes = Buffer.from(sql);
  return (byte) => bytes.subarray(0, byte).toString('utf8').length;
}

/**
 * The value a constant token stands for, as the server stores it in text form: `'O''Brien'` is
 * O'Brien, `E'a\nb'` has a newline, `$$x$$` is x, `-5` is -5. Null for bit strings, hex and
 * Unicode-escaped strings, whose value this does not decode (they are masked whole instead).
 */
export function constantValue(token: string): string | null {
  const first = token[0];
  if (first === "'") return token.slice(1, -1).replaceAll("''", "'");
  if ((first === 'e' || first === 'E') && token[1] === "'") return unescapeE(token.slice(2, -1));
  if (first === '$') {
    const close = token.indexOf('$', 1);
    const tag = token.slice(0, close + 1);
    return close > 0 && token.length >= 2 * tag.length
      ? token.slice(tag.length, token.length - tag.length)
      : null;
  }
  if (first === '-' || first === '+') {
    const rest = token.slice(1).trimStart();
    return first === '-' ? `-${rest}` : rest;
  }
  if (first !== undefined && ((first >= '0' && first <= '9') || first === '.')) return token;
  const lower = token.toLowerCase();
  return lower === 'true' || lower === 'false' ? lower : null;
}

const E_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** An E'…' body: backslash escapes and doubled quotes (octal and Unicode escapes kept as written). */
function unescapeE(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    const next = body[i + 1];
    if (c === '\\' && next !== undefined) {
      out += E_ESCAPES[next] ?? next;
      i++;
    } else if (c === "'" && next === "'") {
      out += "'";
      i++;
    } else out += c;
  }
  return out;
}
