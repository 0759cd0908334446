import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keepLast } from './styles.js';

// The definition keepLast is held to: code points, separators kept, the first (significant - n) masked.
function reference(value: string, n: number): string {
  const separator = /[\s-]/;
  const chars = Array.from(value);
  const significant = chars.filter((c) => !separator.test(c)).length;
  let keepFrom = significant > n ? significant - n : Number.POSITIVE_INFINITY;
  let out = '';
  for (const c of chars) {
    if (separator.test(c)) {
      out += c;
      continue;
    }
    out += keepFrom <= 0 ? c : '*';
    keepFrom--;
  }
  return out;
}

const PIECES = [
  'a',
  '1',
  '-',
  ' ',
  '\t',
  '\u00a0',
  '\u3000',
  '\u2028',
  '\ufeff',
  'é',
  '😀',
  '\ud800',
  '\udc00',
];

describe('keepLast', () => {
  it('agrees with the character-by-character definition on random strings of separators, emoji and surrogates', () => {
    let seed = 42;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    for (let t = 0; t < 20_000; t++) {
      let s = '';
      const len = Math.floor(next() * 14);
      for (let i = 0; i < len; i++) s += PIECES[Math.floor(next() * PIECES.length)];
      const n = Math.floor(next() * 6);
      assert.equal(keepLast(s, n), reference(s, n), `keepLast(${JSON.stringify(s)}, ${n})`);
    }
  });
});
