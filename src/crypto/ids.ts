// Time-ordered unique ids (UUID version 7, RFC 9562): 48 bits of Unix milliseconds, then 74
// random bits. Rows keyed by them are appended at the end of their index instead of landing on
// a random page, which is what keeps a store's inserts cheap at tens of thousands a second.
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 256;
const pool = Buffer.alloc(16 * POOL_IDS);
let next = POOL_IDS;
const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A UUIDv7: unique, and ordered by creation time to the millisecond. */
export function timeOrderedId(now = Date.now()): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const b = pool.subarray(next * 16, next * 16 + 16);
  next++;
  // 48-bit big-endian milliseconds (split: bitwise operators work on 32 bits).
  const high = Math.floor(now / 2 ** 32);
  const low = now >>> 0;
  b[0] = (high >>> 8) & 0xff;
  b[1] = high & 0xff;
  b.writeUInt32BE(low, 2);
  b[6] = 0x70 | (b[6]! & 0x0f); // version 7
  b[8] = 0x80 | (b[8]! & 0x3f); // RFC 9562 variant
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += hex[b[i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}
