// Time-ordered unique ids (UUID version 7, RFC 9562): 48 bits of Unix milliseconds, then 74
// random bits. Rows keyed by them are appended at the end of their index instead of landing on
// a random page, which is what keeps a store's inserts cheap at tens of thousands a second.
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 256;
const pool = Buffer.alloc(16 * POOL_IDS);
let next = POOL_IDS;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;
/** The id being spelled out: written in place and read as one string (one allocation per id). */
const text = Buffer.alloc(36);

/** A UUIDv7: unique, and ordered by creation time to the millisecond. */
export function timeOrderedId(now = Date.now()): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const at = next * 16;
  next++;
  // 48-bit big-endian milliseconds (split: bitwise operators work on 32 bits).
  const high = Math.floor(now / 2 ** 32);
  pool[at] = (high >>> 8) & 0xff;
  pool[at + 1] = high & 0xff;
  pool.writeUInt32BE(now >>> 0, at + 2);
  pool[at + 6] = 0x70 | (pool[at + 6]! & 0x0f); // version 7
  pool[at + 8] = 0x80 | (pool[at + 8]! & 0x3f); // RFC 9562 variant
  let o = 0;
  for (let i = 0; i < 16; i++) {
    const byte = pool[at + i]!;
    text[o++] = HEX[byte >> 4]!;
    text[o++] = HEX[byte & 0x0f]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) text[o++] = DASH;
  }
  return text.toString('latin1', 0, 36);
}
