import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { normalizeSync } from 'libpg-query';
import { analyzePostgres, knownShapeKey, loadPostgresAnalyzer, postgresCacheStats } from './postgres.js';
import { BYPASSES, ORDINARY } from './postgres-corpus.js';
import { ShapeIndex } from './postgres-shape-index.js';
import { shapeOf } from './postgres-shapes.js';

before(loadPostgresAnalyzer);

/** A deterministic generator, so a failure names a reproducible case. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const STRINGS = ['', 'x', "it''s", 'a;b', '-- not a comment', '/* nor this */', '$1', 'été 🙂', ' ', "''"];

/** Digits on both sides of 2^31 - 1, where PostgreSQL's Integer becomes a Float. */
const EDGES = ['2147483647', '2147483648', '02147483647', '0', '007', '99999999999999999999999'];

/** Another constant like `text` (digits, negative digits, or a plain string), of any size. */
function sibling(text: string, next: () => number): string {
  const digits = () =>
    next() < 0.3
      ? (EDGES[Math.floor(next() * EDGES.length)] as string)
      : String(Math.floor(next() * 10 ** (1 + Math.floor(next() * 15))));
  if (/^[0-9]+$/.test(text)) return digits();
  if (/^-[0-9]+$/.test(text)) return `-${digits()}`;
  return `'${STRINGS[Math.floor(next() * STRINGS.length)]}'`;
}

/** Texts of the same shape as `sql` (same text but for its constants), with other constants. */
function siblings(sql: string, count: number, next: () => number): string[] {
  const found = shapeOf(sql, normalizeSync(sql));
  if (!found || found.constants.length === 0) return [];
  return Array.from({ length: count }, () => {
    let out = '';
    let at = 0;
    for (const c of found.constants) {
      out += sql.slice(at, c.start) + sibling(sql.slice(c.start, c.end), next);
      at = c.end;
    }
    return out + sql.slice(at);
  });
}

describe('postgres shape index: normalized keys without the parser', () => {
  it("gives a sibling text exactly the parser's key, across the corpus and random constants", () => {
    const next = random(20261122);
    const corpus = [
      ...ORDINARY,
      ...BYPASSES.map((b) => b.sql),
      'SELECT abalance FROM pgbench_accounts WHERE aid = 41',
      'UPDATE pgbench_accounts SET abalance = abalance + -4291 WHERE aid = 7',
      "SELECT * FROM users WHERE email = 'a@example.com' AND id IN (1, 2, 3) LIMIT 10",
      "SELECT x::varchar(10), '{\"a\":1}'::jsonb ->> 'a' FROM t WHERE d > now() - interval '1 day' ORDER BY 1",
      "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y') ON CONFLICT (a) DO UPDATE SET b = 'z'",
      "SELECT 1; SELECT 'two' WHERE 3 = 3",
      // Integers in ORDER BY and GROUP BY are column positions the normalizer keeps, unless too
      // long for 32 bits (then a Float constant, which it replaces).
      'SELECT abalance FROM pgbench_accounts ORDER BY 10000000000',
      'SELECT 10000000000 FROM t GROUP BY 10000000000',
      'SELECT a FROM t WHERE b = 7 ORDER BY -10000000000, 2147483648',
      'SELECT a FROM t WHERE b = -2147483648 GROUP BY 1 ORDER BY 2',
    ];
    let hits = 0;
    let checked = 0;
    for (const sql of corpus) {
      let key: string;
      try {
        key = normalizeSync(sql);
      } catch {
        continue;
      }
      const index = new ShapeIndex();
      index.add(sql, key);
      for (const other of siblings(sql, 12, next)) {
        const fast = index.keyOf(other);
        checked++;
        if (fast === null) continue;
        hits++;
        assert.equal(fast, normalizeSync(other), `${sql}  ->  ${other}`);
      }
    }
    assert.ok(checked > 500, `only ${checked} siblings checked`);
    assert.ok(hits > checked / 3, `only ${hits} of ${checked} siblings found by shape`);
  });

  it('leaves to the parser a text whose constants changed kind or form, or whose words differ', () => {
    const index = new ShapeIndex();
    for (const sql of [
      'SELECT abalance FROM pgbench_accounts WHERE aid = 41',
      "SELECT * FROM users WHERE email = 'a@example.com'",
      'SELECT x::varchar(10) FROM t WHERE id = 5',
      'SELECT a FROM t ORDER BY 10000000000',
    ]) {
      index.add(sql, normalizeSync(sql));
    }
    assert.equal(index.keyOf('SELECT a FROM t ORDER BY 20000000000'), 'SELECT a FROM t ORDER BY $1');
    assert.equal(
      index.keyOf('SELECT abalance FROM pgbench_accounts WHERE aid = 7'),
      'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    );
    for (const other of [
      "SELECT abalance FROM pgbench_accounts WHERE aid = '7'",
      'SELECT abalance FROM pgbench_accounts WHERE aid = 7abc',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 7.5',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 1e3',
      'SELECT abalance FROM pgbench_accounts WHERE aid = -7',
      'SELECT abalance FROM pgbench_accounts WHERE aid = $$7$$',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 7 -- and more',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 7; DROP TABLE x',
      'SELECT abalance  FROM pgbench_accounts WHERE aid = 7',
      "SELECT * FROM users WHERE email = E'a\\\\b'",
      "SELECT * FROM users WHERE email = 'a\\b'",
      "SELECT * FROM users WHERE email = 'a'\n'b'",
      "SELECT * FROM users WHERE email = 'a\u0000b'",
      'SELECT * FROM users WHERE email = 5',
      // A type modifier is no constant to the normalizer: its key keeps it.
      'SELECT x::varchar(20) FROM t WHERE id = 5',
      // Nor is a column position (digits that fit 32 bits) in ORDER BY.
      'SELECT a FROM t ORDER BY 1',
      'SELECT a FROM t ORDER BY 2147483647',
    ]) {
      assert.equal(index.keyOf(other), null, other);
    }
  });

  it('answers analyzePostgres for a new text of a known shape without the parser, with the same facts', () => {
    const first = analyzePostgres('SELECT bbalance FROM pgbench_branches WHERE bid = 3');
    const text = 'SELECT bbalance FROM pgbench_branches WHERE bid = 8';
    assert.equal(knownShapeKey(text), normalizeSync(text));
    const before = postgresCacheStats();
    assert.equal(analyzePostgres(text), first);
    const after = postgresCacheStats();
    assert.equal(after.normalizedHits, before.normalizedHits + 1);
    assert.equal(after.misses, before.misses);
    // A text whose facts read a constant is never shared, so its shape is not kept.
    analyzePostgres("DO LANGUAGE plpgsql 'BEGIN NULL; END'");
    assert.equal(knownShapeKey("DO LANGUAGE plpgsql 'BEGIN DELETE FROM users; END'"), null);
  });
});
