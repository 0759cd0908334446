// Replacement styles: how a sensitive value is rewritten once a column rule or detector selects it.
// `redact` hides even the length; `keepLast` keeps a suffix for support work; `tokenize` keeps joinability.
import { createHmac } from 'node:crypto';
import { chaskeyHex, chaskeyHexInto, chaskeyKey } from '../../crypto/chaskey.js';

export type MaskStyle = 'redact' | 'keep-last-4' | { keepLast: number } | 'tokenize';

/** Fixed marker rather than same-length stars, so a redacted value reveals nothing, not even its length. */
export const REDACTED = '[masked]';

/**
 * A style's rewrite. `constant` is set when the output ignores the value, so callers may encode it once;
 * `fromBytes`, when the style can read the value's UTF-8 bytes in place (no decoding): it returns what
 * the replacer returns for the text those bytes hold, or undefined when the caller must decode them.
 */
export type Replacer = ((value: string) => string) & {
  readonly constant?: string;
  readonly fromBytes?: (bytes: Uint8Array, start: number, end: number) => string | undefined;
  /** Where fromBytes's answer always has one size: it written as UTF-8 bytes (see BytesWriter). */
  readonly fromBytesInto?: BytesWriter;
};

/**
 * fromBytes's answer as UTF-8 bytes, always `size` of them: asked first whether it `accepts` the
 * value (where fromBytes would return undefined, it does not), then, when the message around it is
 * written, to `write` them at `dst[at]`.
 */
export interface BytesWriter {
  readonly size: number;
  accepts(bytes: Uint8Array, start: number, end: number): boolean;
  write(bytes: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void;
}

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

/** UTF-8 bytes of a value being tokenized; values that might not fit get their own buffer. */
const scratch = Buffer.allocUnsafeSlow(4096);

/**
 * The tokenizer for `key`: `tok_` + 16 hex digits (the first 8 tag bytes) of Chaskey-12 of the
 * value's UTF-8 bytes, under a 128-bit key derived from `key` once (HMAC-SHA256 with a fixed label).
 * Equal inputs join; without the key a token says nothing about its value. A MAC that is a
 * pseudorandom function on 32-bit words rather than one HMAC per value (about 2 µs through
 * node:crypto) or SipHash-2-4 (64-bit words, split in two halves in JavaScript): a masked column may
 * see a million values per query.
 */
export function tokenizer(key: string | Buffer): Replacer {
  const k = chaskeyKey(createHmac('sha256', key).update(TOKEN_KEY_LABEL).digest().subarray(0, 16));
  const fromText = (value: string): string => {
    if (value.length * 3 <= scratch.length) {
      return `tok_${chaskeyHex(k, scratch, 0, scratch.write(value, 0, 'utf8'))}`;
    }
    return `tok_${chaskeyHex(k, Buffer.from(value, 'utf8'))}`;
  };
  // Only ASCII is hashed in place: other bytes might not be valid UTF-8, and their decoded text
  // (with U+FFFD) would encode to different bytes, so the same value would get another token.
  const fromBytes = (bytes: Uint8Array, start: number, end: number): string | undefined => {
    return isAscii(bytes, start, end) ? `tok_${chaskeyHex(k, bytes, start, end)}` : undefined;
  };
  // The same token as bytes: a million rows need no token strings, nor their encoding back to bytes.
  const fromBytesInto: BytesWriter = {
    size: TOKEN_PREFIX.length + 16,
    accepts: isAscii,
    write(bytes, start, end, dst, at) {
      for (let i = 0; i < TOKEN_PREFIX.length; i++) dst[at + i] = TOKEN_PREFIX[i]!;
      chaskeyHexInto(k, bytes, start, end, dst, at + TOKEN_PREFIX.length);
    },
  };
  return Object.assign(fromText, { fromBytes, fromBytesInto });
}

const TOKEN_PREFIX = Buffer.from('tok_');

/** Whether `bytes[start, end)` is all ASCII: their bits ORed four at a time, with one test at the end. */
function isAscii(bytes: Uint8Array, start: number, end: number): boolean {
  let bits = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) bits |= bytes[i]! | bytes[i + 1]! | bytes[i + 2]! | bytes[i + 3]!;
  for (; i < end; i++) bits |= bytes[i]!;
  return bits < 0x80;
}

const TOKEN_KEY_LABEL = 'warden tokenize: chaskey-12 key v2';

/** One value's token (derives the key each call: for tests and one-offs; masks use `tokenizer`). */
export function tokenize(value: string, key: string | Buffer): string {
  return tokenizer(key)(value);
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
    return tokenizer(key);
  }
  const n = style.keepLast;
  if (!Number.isInteger(n) || n < 0) {
    throw new MaskSpecError(`mask style keepLast: expected a non-negative integer, got ${String(n)}`);
  }
  return (v) => keepLast(v, n);
}
