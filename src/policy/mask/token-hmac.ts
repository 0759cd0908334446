// HMAC-SHA256 tokens with the key's padded blocks hashed once: a `tokenize` column costs two SHA-256
// compressions per short value instead of a `createHmac` (key setup, two native hash contexts) per value.
// Node exposes no SHA-256 midstate, so the compression is here; tests hold it equal to `createHmac`.
import { createHash } from 'node:crypto';

// biome-ignore format: the round constants read best as a table
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const W = new Int32Array(64);

/** One SHA-256 compression of the 64-byte block at `off` into `st`. */
function compress(st: Int32Array, b: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + i * 4;
    W[i] = (b[j]! << 24) | (b[j + 1]! << 16) | (b[j + 2]! << 8) | b[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15]!;
    const y = W[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = st[0]!;
  let b1 = st[1]!;
  let c = st[2]!;
  let d = st[3]!;
  let e = st[4]!;
  let f = st[5]!;
  let g = st[6]!;
  let h = st[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b1) ^ (a & c) ^ (b1 & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b1;
    b1 = a;
    a = (t1 + t2) | 0;
  }
  st[0] = (st[0]! + a) | 0;
  st[1] = (st[1]! + b1) | 0;
  st[2] = (st[2]! + c) | 0;
  st[3] = (st[3]! + d) | 0;
  st[4] = (st[4]! + e) | 0;
  st[5] = (st[5]! + f) | 0;
  st[6] = (st[6]! + g) | 0;
  st[7] = (st[7]! + h) | 0;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const state = new Int32Array(8);
// The outer block: 32 bytes of inner digest, then padding for 64 + 32 bytes (768 bits) in all.
const outer = Buffer.alloc(64);
outer[32] = 0x80;
outer[62] = 0x03;
let scratch = Buffer.alloc(256);

/**
 * `(value) => 'tok_' + first 16 hex digits of HMAC-SHA256(key, value)`, the value as UTF-8; the same
 * output as `createHmac('sha256', key)` (RFC 2104: a key longer than the block is hashed first).
 */
export function hmacTokenizer(key: string | Buffer): (value: string) => string {
  let k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (k.length > 64) k = createHash('sha256').update(k).digest();
  const padded = (x: number) => {
    const block = Buffer.alloc(64, x);
    for (let i = 0; i < k.length; i++) block[i] = block[i]! ^ k[i]!;
    return block;
  };
  const innerStart = Int32Array.from(IV);
  const outerStart = Int32Array.from(IV);
  compress(innerStart, padded(0x36), 0);
  compress(outerStart, padded(0x5c), 0);

  return (value) => {
    if (scratch.length < value.length * 3 + 72) scratch = Buffer.alloc(value.length * 6 + 72);
    const n = scratch.write(value, 0, 'utf8');
    // Inner hash: the value after the ipad block, then 0x80, zeros and the bit length of ipad + value.
    const end = (((n + 8) >> 6) + 1) * 64;
    scratch[n] = 0x80;
    for (let i = n + 1; i < end - 8; i++) scratch[i] = 0;
    const bits = (n + 64) * 8;
    scratch.writeUInt32BE(Math.floor(bits / 0x100000000), end - 8);
    scratch.writeUInt32BE(bits >>> 0, end - 4);
    state.set(innerStart);
    for (let off = 0; off < end; off += 64) compress(state, scratch, off);
    // Outer hash: the 32-byte inner digest after the opad block, padded to one block (768 bits in all).
    for (let i = 0; i < 8; i++) outer.writeInt32BE(state[i]!, i * 4);
    state.set(outerStart);
    compress(state, outer, 0);
    const w0 = state[0]!;
    const w1 = state[1]!;
    return `tok_${HEX[(w0 >>> 24) & 255]}${HEX[(w0 >>> 16) & 255]}${HEX[(w0 >>> 8) & 255]}${HEX[w0 & 255]}${HEX[(w1 >>> 24) & 255]}${HEX[(w1 >>> 16) & 255]}${HEX[(w1 >>> 8) & 255]}${HEX[w1 & 255]}`;
  };
}
