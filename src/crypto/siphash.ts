// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudorandom function with a 128-bit key and a
// 64-bit output, built for short inputs. Masking uses it to tokenize values: one HMAC-SHA256 through
// node:crypto costs about 2.5 µs per value (a native object per call), which is most of a masked
// result's time at a million rows; this costs a few hundred nanoseconds. JavaScript has no 64-bit
// integer arithmetic without BigInt allocations, so each 64-bit word is kept as two 32-bit halves.
// Checked against the reference implementation's 64 published test vectors (siphash.test.ts).

/** A 16-byte key, read as two little-endian 64-bit words (k0, k1), split into 32-bit halves. */
export interface SipKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

export function sipKey(key: Uint8Array): SipKey {
  if (key.length !== 16) throw new RangeError(`SipHash needs a 16-byte key, got ${key.length} bytes`);
  const at = (i: number) => (key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24)) >>> 0;
  return { k0lo: at(0), k0hi: at(4), k1lo: at(8), k1hi: at(12) };
}

/** Of `data[start, end)`: the 64-bit result as 16 lowercase hex digits, as the reference prints it. */
export function sipHashHex(key: SipKey, data: Uint8Array, start = 0, end = data.length): string {
  sipHash(key, data, start, end);
  return hex8(out[0]!) + hex8(out[1]!);
}

/**
 * Of `data[start, end)`: the same 16 hex digits as sipHashHex, written as ASCII bytes at `dst[at]`,
 * so a caller writing bytes needs no string.
 */
export function sipHashHexInto(
  key: SipKey,
  data: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  at: number,
): void {
  sipHash(key, data, start, end);
  hexInto(out[0]!, dst, at);
  hexInto(out[1]!, dst, at + 8);
}

/** ASCII codes of the lowercase hex digits. */
const DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

function hexInto(n: number, dst: Uint8Array, at: number): void {
  for (let shift = 28, i = at; shift >= 0; shift -= 4, i++) dst[i] = DIGITS[(n >>> shift) & 0xf]!;
}

/** Two hex digits per byte: Number#toString(16) converts through floating point and costs more than the hash. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

const hex8 = (n: number): string =>
  HEX[n >>> 24]! + HEX[(n >>> 16) & 0xff]! + HEX[(n >>> 8) & 0xff]! + HEX[n & 0xff]!;

/** [hi, lo] of the last result; reused so a call allocates nothing. */
const out = new Uint32Array(2);

/** SipHash-2-4 of `data[start, end)`; the result's halves are left in `out`. */
function sipHash(key: SipKey, data: Uint8Array, start: number, end: number): void {
  const length = end - start;
  // v0..v3 as (hi, lo) pairs, initialised with the constants "somepseudorandomlygeneratedbytes".
  let v0h = (key.k0hi ^ 0x736f6d65) >>> 0;
  let v0l = (key.k0lo ^ 0x70736575) >>> 0;
  let v1h = (key.k1hi ^ 0x646f7261) >>> 0;
  let v1l = (key.k1lo ^ 0x6e646f6d) >>> 0;
  let v2h = (key.k0hi ^ 0x6c796765) >>> 0;
  let v2l = (key.k0lo ^ 0x6e657261) >>> 0;
  let v3h = (key.k1hi ^ 0x74656462) >>> 0;
  let v3l = (key.k1lo ^ 0x79746573) >>> 0;
  let t = 0;

  const blocks = start + length - (length & 7);
  let mh = 0;
  let ml = 0;
  // Each 8-byte block (2 rounds), then a last one holding the 0–7 remaining bytes and the length's
  // low byte on top (2 rounds), then finalisation (4 rounds): one loop, so SipRound is written once.
  for (let i = start; ; i += 8) {
    const finalising = i > blocks;
    if (finalising) {
      v2l = (v2l ^ 0xff) >>> 0;
    } else if (i < blocks) {
      ml = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
      mh = (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24)) >>> 0;
    } else {
      ml = 0;
      mh = (length & 0xff) << 24;
      for (let j = 0; j < end - blocks; j++) {
        const b = data[i + j]!;
        if (j < 4) ml |= b << (8 * j);
        else mh |= b << (8 * (j - 4));
      }
      ml >>>= 0;
      mh >>>= 0;
    }
    if (!finalising) {
      v3h = (v3h ^ mh) >>> 0;
      v3l = (v3l ^ ml) >>> 0;
    }
    for (let r = finalising ? 4 : 2; r > 0; r--) {
      // SipRound, with 64-bit additions carried by hand and rotations split across the halves.
      t = (v0l + v1l) >>> 0;
      v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      t = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
      v1h = (t ^ v0h) >>> 0;
      v1l = (v1l ^ v0l) >>> 0;
      t = v0h;
      v0h = v0l;
      v0l = t;
      t = (v2l + v3l) >>> 0;
      v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      t = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
      v3h = (t ^ v2h) >>> 0;
      v3l = (v3l ^ v2l) >>> 0;
      t = (v0l + v3l) >>> 0;
      v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      t = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
      v3h = (t ^ v0h) >>> 0;
      v3l = (v3l ^ v0l) >>> 0;
      t = (v2l + v1l) >>> 0;
      v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      t = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
      v1h = (t ^ v2h) >>> 0;
      v1l = (v1l ^ v2l) >>> 0;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    if (finalising) break;
    v0h = (v0h ^ mh) >>> 0;
    v0l = (v0l ^ ml) >>> 0;
  }
  out[0] = v0h ^ v1h ^ v2h ^ v3h;
  out[1] = v0l ^ v1l ^ v2l ^ v3l;
}
