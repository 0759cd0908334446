import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyStatementFacts, type SqlFacts } from '../facts.js';
import { FactsCache } from './facts-cache.js';

/** A stand-in analyzer: the statement kind is the first word; it counts its calls. */
function fakeAnalyzer(): { analyze: (sql: string) => SqlFacts; calls: () => number } {
  let calls = 0;
  return {
    analyze: (sql) => {
      calls++;
      return {
        protocol_kind: 'sql',
        dialect: 'postgres',
        statements: [emptyStatementFacts(sql.split(' ')[0] ?? '')],
        multi_statement: false,
        unparseable: null,
        fingerprint: sql.replace(/\d+/g, '?'),
      };
    },
    calls: () => calls,
  };
}

const digitsToQ = (sql: string): string => sql.replace(/\d+/g, '?');

describe('facts cache', () => {
  it('analyzes a text once and hands out the same frozen object', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({ analyze: fake.analyze });
    const a = cache.get('select 1');
    assert.equal(cache.get('select 1'), a);
    assert.equal(fake.calls(), 1);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.statements[0]?.tables_read));
  });

  it('hands a sibling text the rebased facts, frozen, or analyzes it afresh when they cannot be rebased', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({
      analyze: fake.analyze,
      normalize: digitsToQ,
      shareable: () => true,
      rebase: (shared, sql) => (sql.endsWith('0') ? null : { ...shared, fingerprint: sql }),
    });
    cache.get('select 1');
    const two = cache.get('select 2');
    assert.deepEqual([two.fingerprint, Object.isFrozen(two), fake.calls()], ['select 2', true, 1]);
    assert.equal(cache.get('select 2'), two);
    assert.equal(cache.get('select 10').fingerprint, 'select ?');
    assert.equal(fake.calls(), 2);
    assert.deepEqual([cache.stats().normalizedHits, cache.stats().misses], [1, 2]);
  });

  it('shares facts between texts with one normalized key only when they are shareable', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({
      analyze: fake.analyze,
      normalize: digitsToQ,
      shareable: (f) => f.statements[0]?.kind !== 'do',
    });
    const a = cache.get('select 1');
    assert.equal(cache.get('select 2'), a);
    cache.get('do 1');
    assert.notEqual(cache.get('do 2'), cache.get('do 1'));
    assert.deepEqual(
      [fake.calls(), cache.stats()],
      [3, { exactHits: 1, normalizedHits: 1, misses: 3, exactEntries: 4, normalizedEntries: 1 }],
    );
  });

  it('does not share when normalization has no answer', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({ analyze: fake.analyze, normalize: () => null, shareable: () => true });
    cache.get('select 1');
    cache.get('select 2');
    assert.equal(fake.calls(), 2);
  });

  it('evicts the least recently used entry beyond its entry limit', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({ analyze: fake.analyze, maxEntries: 2 });
    cache.get('select a');
    cache.get('select b');
    cache.get('select a'); // b is now the oldest
    cache.get('select c');
    assert.equal(cache.stats().exactEntries, 2);
    cache.get('select a');
    assert.equal(fake.calls(), 3);
    cache.get('select b');
    assert.equal(fake.calls(), 4);
  });

  it('keeps exactly the most recently used texts through a long random sequence of lookups', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({ analyze: fake.analyze, maxEntries: 5 });
    // The reference: texts in order of use, most recent last, never more than five.
    const recent: string[] = [];
    let expectedCalls = 0;
    let seed = 7;
    for (let step = 0; step < 5_000; step++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      const sql = `select t${(seed >>> 16) % 12}`;
      const at = recent.indexOf(sql);
      if (at < 0) expectedCalls++;
      else recent.splice(at, 1);
      recent.push(sql);
      if (recent.length > 5) recent.shift();
      cache.get(sql);
      assert.equal(fake.calls(), expectedCalls, `after lookup ${step} (${sql})`);
    }
    assert.equal(cache.stats().exactEntries, 5);
    // Some lookups hit and some missed: the sequence exercised both.
    assert.ok(expectedCalls > 1_000 && expectedCalls < 4_000, `${expectedCalls} misses`);
  });

  it('bounds the summed key length and does not keep a text longer than the bound', () => {
    const fake = fakeAnalyzer();
    const cache = new FactsCache({ analyze: fake.analyze, maxChars: 20 });
    cache.get('select aaaaaaaaa'); // 16 chars
    cache.get('select bbbbbbbbb'); // evicts the first: 32 > 20
    assert.equal(cache.stats().exactEntries, 1);
    const huge = `select ${'x'.repeat(30)}`;
    cache.get(huge);
    cache.get(huge);
    assert.equal(fake.calls(), 4);
    assert.equal(cache.stats().exactEntries, 1);
  });
});
