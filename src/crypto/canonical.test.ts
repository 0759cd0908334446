import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson } from './canonical.js';

/**
 * The straightforward definition the hashed audit records were first written with: keys sorted
 * by UTF-16 code units (as RFC 8785), undefined members dropped, undefined elements as null.
 */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('non-finite number');
    if (value === undefined) return 'null';
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${Array.from(value, reference).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
}

/** A small seeded generator (mulberry32), so a failure names a value that can be made again. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Keys whose UTF-16 order differs from their code point order (an astral character's high
// surrogate, U+D8xx-U+DBxx, sorts before U+E000-U+FFFF), integer-like keys (which objects
// enumerate first), JSON escapes and the empty key.
const KEYS = [
  'a',
  'b',
  'B',
  'z',
  'é',
  'ß',
  '\uff61',
  '\ue000',
  '\ufffd',
  '\u{1f600}',
  '\u{10000}',
  'a\u{1f600}',
  'a\uffff',
  '1',
  '2',
  '10',
  '-1',
  '',
  '"',
  '\\',
  '\n',
  '\u2028',
  'key with spaces',
  '__proto__x',
];
const STRINGS = [
  '',
  'plain',
  'é ✓',
  '\u{1f600}',
  '\ud800',
  '"quoted" \\ \n\t\u0000',
  '\u2028\u2029',
  'select 1',
];
const NUMBERS = [0, -0, 1, -1, 1.5, 0.1, 1e21, 1e-7, -(2 ** 53) + 1, 2 ** 53 - 1, Number.MAX_VALUE, 5e-324];

function generate(next: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const kind = depth <= 0 ? Math.floor(next() * 5) : Math.floor(next() * 8);
  switch (kind) {
    case 0:
      return pick([null, true, false, undefined]);
    case 1:
      return next() < 0.01 ? pick([Number.NaN, Number.POSITIVE_INFINITY]) : pick(NUMBERS);
    case 2:
      return next() < 0.5 ? pick(NUMBERS) * Math.floor(next() * 1000) : next() * 1e6 - 5e5;
    case 3:
      return pick(STRINGS);
    case 4:
      return pick(STRINGS) + pick(KEYS);
    case 5:
    case 6: {
      const object: Record<string, unknown> = {};
      const n = Math.floor(next() * 7);
      for (let i = 0; i < n; i++) object[pick(KEYS)] = generate(next, depth - 1);
      return object;
    }
    default:
      return Array.from({ length: Math.floor(next() * 6) }, () => generate(next, depth - 1));
  }
}

describe('canonical JSON', () => {
  it('equals the straightforward definition over thousands of generated values', () => {
    const next = random(0x5eed);
    let refused = 0;
    for (let i = 0; i < 5_000; i++) {
      const value = generate(next, 4);
      let expected: string;
      try {
        expected = reference(value);
      } catch {
        // Somewhere inside is a non-finite number (MAX_VALUE times k): refused the same way.
        assert.throws(() => canonicalJson(value), TypeError, `value #${i}`);
        refused++;
        continue;
      }
      assert.equal(canonicalJson(value), expected, `value #${i}`);
      // And it is JSON, for the same value as JSON.stringify would give.
      assert.deepEqual(JSON.parse(expected), JSON.parse(JSON.stringify(value ?? null)), `value #${i}`);
    }
    assert.ok(refused > 0 && refused < 1_000, `${refused} values with non-finite numbers`);
  });

  it('orders keys by UTF-16 code units, not code points or insertion', () => {
    assert.equal(canonicalJson({ '\uff61': 1, '\u{1f600}': 2 }), '{"\u{1f600}":2,"\uff61":1}');
    assert.equal(canonicalJson({ '\ue000': 1, '\u{10000}': 2, a: 3 }), '{"a":3,"\u{10000}":2,"\ue000":1}');
    assert.equal(
      canonicalJson({ 10: 'a', 2: 'b', 1: 'c', b: 1, a: 2 }),
      '{"1":"c","10":"a","2":"b","a":2,"b":1}',
    );
  });

  it('drops undefined members, writes undefined elements as null, and nests', () => {
    assert.equal(
      canonicalJson({ z: [undefined, { b: undefined, a: [1, [null, undefined]] }], y: undefined, x: -0 }),
      '{"x":0,"z":[null,{"a":[1,[null,null]]}]}',
    );
    // biome-ignore lint/suspicious/noSparseArray: a hole reads as undefined
    assert.equal(canonicalJson([, 1]), '[null,1]');
    assert.equal(canonicalJson(undefined), 'null');
    assert.equal(canonicalJson({}), '{}');
    assert.equal(canonicalJson([]), '[]');
  });

  it('refuses NaN and infinities wherever they are', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.throws(() => canonicalJson(bad), TypeError);
      assert.throws(() => canonicalJson({ a: [1, { b: bad }] }), TypeError);
      assert.throws(() => canonicalJson([0, bad]), TypeError);
    }
  });
});
