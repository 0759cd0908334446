import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { REDACTED, replacerFor, tokenize } from './styles.js';
import { hmacTokenizer } from './token-hmac.js';

// A small seeded generator, so a failure names a case that reproduces.
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'Z', '0', '@', '.', ' ', 'é', 'ß', '✓', '中', '😀', '\u0000', '\ud800', '\udc00', '\n'];

describe('tokens from the precomputed HMAC key', () => {
  it('equal createHmac(sha256) for every value length across block boundaries, UTF-8 and lone surrogates', () => {
    const next = random(1);
    const keys: Array<string | Buffer> = [
      Buffer.alloc(32, 7),
      'key-1',
      Buffer.alloc(64, 0xaa), // exactly one block
      Buffer.alloc(65, 0x5c), // longer than a block: hashed first
      'k'.repeat(200),
      Buffer.from([0]),
    ];
    for (const key of keys) {
      const token = hmacTokenizer(key);
      for (let len = 0; len < 300; len++) {
        let v = '';
        while (v.length < len) v += PIECES[Math.floor(next() * PIECES.length)];
        const want = `tok_${createHmac('sha256', key).update(v, 'utf8').digest('hex').slice(0, 16)}`;
        assert.equal(token(v), want, `key ${JSON.stringify(key.toString())}, value ${JSON.stringify(v)}`);
      }
    }
  });

  it('is what the tokenize style uses, so tokens stay those of tokenize()', () => {
    const r = replacerFor('tokenize', Buffer.from('key-1'));
    for (const v of ['alice@example.com', '', 'naïve café', 'x'.repeat(1000)])
      assert.equal(r(v), tokenize(v, 'key-1'));
    assert.equal(r.constant, undefined);
    assert.equal(replacerFor('redact').constant, REDACTED);
  });
});
