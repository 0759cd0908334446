// Replacement styles: how a sensitive value is rewritten once a column rule or detector selects it.
// `redact` hides even the length; `keepLast` keeps a suffix for support work; `tokenize` keeps joinability.
import { createHmac } from 'node:crypto';

export type MaskStyle = 'redact' | 'keep-last-4' | { keepLast: number } | 'tokenize';

/** Fixed marker rather than same-length stars, so a redacted value reveals nothing, not even its length. */
export const REDACTED = '[masked]';

/** A style's rewrite; `constant` is set when the output ignores the value, so callers may encode it once. */
export type Replacer = ((value: string) => string) & { readonly constant?: string };

// Separators survive keep-last so "4111 1111 1111 1111" reads as "**** **** **** 1111".
const SEPARATOR = /[\s-]/;
const NOT_SEPARATORS = /[^\s-]/gu;

const isSeparator = (unit: number): boolean =>
  unit < 128
    ? unit === 32 || unit === 45 || (unit >= 9 && unit <= 13)
    : SEPARATOR.test(String.fromCharCode(unit));

const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;

/**
 * Masks all but the last `n` non-separator characters with `*`, keeping spaces and dashes in place.
 * A value with no more than `n` such characters is masked entirely: keeping all of it would reveal it.
 * Characters are code points (an emoji is one `*`). The kept suffix is found walking back from the end,
 * and the masked head is built whole (a run of stars, or one replace), not character by character.
 */
export function keepLast(value: string, n: number): string {
  let cut = value.length;
  let seen = 0;
  for (let i = value.length - 1; i >= 0 && seen < n; i--) {
    const unit = value.charCodeAt(i);
    if (isSeparator(unit)) continue;
    if (unit >= 0xdc00 && unit <= 0xdfff && i > 0 && isHighSurrogate(value.charCodeAt(i - 1))) i--;
    if (++seen === n) cut = i;
  }
  // The head's characters; with no separator among them (an email, a token) it is a run of stars.
  let chars = 0;
  let separators = 0;
  for (let i = 0; i < cut; i++) {
    const unit = value.charCodeAt(i);
    if (isSeparator(unit)) separators++;
    else if (!(unit >= 0xdc00 && unit <= 0xdfff && i > 0 && isHighSurrogate(value.charCodeAt(i - 1))))
      chars++;
  }
  if (chars === 0) return value.replace(NOT_SEPARATORS, '*'); // nothing before the suffix: keep none of it
  const head = separators === 0 ? '*'.repeat(chars) : value.slice(0, cut).replace(NOT_SEPARATORS, '*');
  return head + value.slice(cut);
}

/**
 * `tok_` + the first 16 hex digits of HMAC-SHA256(key, value): equal inputs join, the value stays hidden.
 * Node's own HMAC on purpose: a hand-written SHA-256 with a cached key midstate halves the cost
 * per value (about 1 µs), but a gateway's key handling stays on the platform's crypto.
 */
export function tokenize(value: string, key: string | Buffer): string {
  return `tok_${createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 16)}`;
}

export class MaskSpecError extends Error {
  override name = 'MaskSpecError';
}

export function replacerFor(style: MaskStyle, key?: string | Buffer): Replacer {
  if (style === 'redact') return Object.assign(() => REDACTED, { constant: REDACTED });
  if (style === 'keep-last-4') return (v) => keepLast(v, 4);
  if (style === 'tokenize') {
    if (key === undefined || key.length === 0) {
      throw new MaskSpecError('mask style "tokenize" needs a non-empty tokenization key (tokenKey)');
    }
    const k = key;
    return (v) => tokenize(v, k);
  }
  const n = style.keepLast;
  if (!Number.isInteger(n) || n < 0) {
    throw new MaskSpecError(`mask style keepLast: expected a non-negative integer, got ${String(n)}`);
  }
  return (v) => keepLast(v, n);
}
