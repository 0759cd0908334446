// Replacement styles: how a sensitive value is rewritten once a column rule or detector selects it.
// `redact` hides even the length; `keepLast` keeps a suffix for support work; `tokenize` keeps joinability.
import { createHmac } from 'node:crypto';

export type MaskStyle = 'redact' | 'keep-last-4' | { keepLast: number } | 'tokenize';

/** Fixed marker rather than same-length stars, so a redacted value reveals nothing, not even its length. */
export const REDACTED = '[masked]';

export type Replacer = (value: string) => string;

// Separators survive keep-last so "4111 1111 1111 1111" reads as "**** **** **** 1111".
const SEPARATOR = /[\s-]/;

/**
 * Masks all but the last `n` non-separator characters with `*`, keeping spaces and dashes in place.
 * A value with no more than `n` such characters is masked entirely: keeping all of it would reveal it.
 */
export function keepLast(value: string, n: number): string {
  const chars = Array.from(value);
  let significant = 0;
  for (const c of chars) if (!SEPARATOR.test(c)) significant++;
  let keepFrom = significant > n ? significant - n : Number.POSITIVE_INFINITY;
  let out = '';
  for (const c of chars) {
    if (SEPARATOR.test(c)) {
      out += c;
      continue;
    }
    out += keepFrom <= 0 ? c : '*';
    keepFrom--;
  }
  return out;
}

/** `tok_` + the first 16 hex digits of HMAC-SHA256(key, value): equal inputs join, the value stays hidden. */
export function tokenize(value: string, key: string | Buffer): string {
  return `tok_${createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 16)}`;
}

export class MaskSpecError extends Error {
  override name = 'MaskSpecError';
}

export function replacerFor(style: MaskStyle, key?: string | Buffer): Replacer {
  if (style === 'redact') return () => REDACTED;
  if (style === 'keep-last-4') return (v) => keepLast(v, 4);
  if (style === 'tokenize') {
    if (key === undefined || key.length === 0) {
      throw new MaskSpecError('mask style "tokenize" needs a non-empty tokenization key (tokenKey)');
    }
    return (v) => tokenize(v, key);
  }
  const n = style.keepLast;
  if (!Number.isInteger(n) || n < 0) {
    throw new MaskSpecError(`mask style keepLast: expected a non-negative integer, got ${String(n)}`);
  }
  return (v) => keepLast(v, n);
}
