// Turns PostgreSQL text into SqlFacts with the real PostgreSQL parser (libpg-query, WASM), so
// rules see what the server will run: every statement, its tables, functions and hidden SQL.

import { loadModule, normalizeSync, parseSync } from 'libpg-query';
import { emptyStatementFacts, type SqlFacts, type SqlStatementFacts, unparseableSql } from '../facts.js';
import { FactsCache, type FactsCacheStats } from './facts-cache.js';
import { routineFlows, statementLineage } from './postgres-lineage.js';
import type { TracedValue } from './postgres-lineage-query.js';
import { constantSpans } from './postgres-literals.js';
import { isRecord, kindOf, objectOf, StatementWalker } from './postgres-walker.js';

let loading: Promise<void> | undefined;
let loaded = false;

/**
 * Kinds whose facts read a string constant that normalizeSync replaces: DO and CREATE FUNCTION
 * bodies (parsed for hidden tables) and COPY's file name. Also opaque, but named here on purpose.
 */
const CONSTANT_READERS = new Set(['do', 'create_function', 'copy']);

const cache = new FactsCache({
  analyze: (sql, normalized) => analyzePostgresUncached(sql, normalized),
  normalize: normalizedText,
  // Values tied to columns are never shared: a constant's span differs from text to text, and a
  // `$1` in one text has the normalized key of a constant in another (`a = $1`, `a = 5`).
  shareable: (facts) =>
    facts.unparseable === null &&
    facts.statements.every(
      (s) =>
        !CONSTANT_READERS.has(s.kind) && !s.opaque && !s.program && !s.file_access && s.values.length === 0,
    ),
});

/** Loads the parser's WASM module; call once at start-up before `analyzePostgres`. */
export async function loadPostgresAnalyzer(): Promise<void> {
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  await loading;
}

/**
 * Facts for `sql` from a two-level cache: the last 10,000 exact texts, then the last 10,000
 * normalized statements (PostgreSQL's own normalization: literals become `$n`, identifiers and
 * comments stay), so `… WHERE id = 1` and `… WHERE id = 2` share one parse and one frozen facts
 * object. Statements whose facts read a constant are never shared. Never throws on bad SQL.
 */
export function analyzePostgres(sql: string): SqlFacts {
  return cache.get(sql);
}

/** Where analyses were answered from since start-up (exact text, normalized text, parser). */
export function postgresCacheStats(): FactsCacheStats {
  return cache.stats();
}

/**
 * The normalized key. Text, not fingerprintSync's hash: the fingerprint also ignores names that
 * change facts (`pg_temp_1.t` and `pg_temp_2.t` share one), while this keeps every identifier.
 */
function normalizedText(sql: string): string | null {
  // normalizeSync reads a C string: whatever follows a NUL would be missing from the key.
  if (sql.includes('\u0000')) return null;
  try {
    return normalizeSync(sql);
  } catch {
    return null;
  }
}

/**
 * Facts for `sql` without the cache: a fresh, mutable object each call. The fingerprint is the
 * normalized text (literals as `$n`), which the cache has already computed on a miss.
 */
export function analyzePostgresUncached(sql: string, normalized?: string | null): SqlFacts {
  if (!loaded) throw new Error('postgres analyzer used before loadPostgresAnalyzer() finished');
  // The parser reads a C string and would stop at a NUL, hiding whatever follows it.
  if (sql.includes('\u0000')) return unparseable('text contains a NUL byte');
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch (err) {
    return unparseable(err instanceof Error ? err.message : String(err));
  }
  const raw = isRecord(tree) && Array.isArray(tree.stmts) ? tree.stmts : [];
  const traced: TracedValue[][] = [];
  const statements = raw.flatMap((s) => {
    if (!isRecord(s)) return [];
    const [facts, values] = statementFacts(s.stmt);
    traced.push(values);
    return [facts];
  });
  placeValues(sql, statements, traced);
  return {
    protocol_kind: 'sql',
    dialect: 'postgres',
    statements,
    multi_statement: statements.length > 1,
    unparseable: null,
    fingerprint: normalized === undefined ? normalizedText(sql) : normalized,
  };
}

const unparseable = (message: string): SqlFacts => unparseableSql('postgres', message);

/** Turns traced values into facts: a constant's parser location becomes its span in `sql`. */
function placeValues(sql: string, statements: SqlStatementFacts[], traced: TracedValue[][]): void {
  const locations = traced.flatMap((values) =>
    values.flatMap((v) => (v.location === null ? [] : [v.location])),
  );
  const spans = constantSpans(sql, locations);
  statements.forEach((facts, i) => {
    for (const v of traced[i] ?? []) {
      const literal = v.location === null ? null : spans.get(v.location);
      // A constant the scanner does not place is not reported (detectors still read the text).
      if (literal !== undefined) facts.values.push({ column: v.column, param: v.param, literal });
    }
  });
}

function statementFacts(stmt: unknown): [SqlStatementFacts, TracedValue[]] {
  const [name, body] = isRecord(stmt) ? (Object.entries(stmt)[0] ?? ['', {}]) : ['', {}];
  const facts = emptyStatementFacts(kindOf(name));
  if (isRecord(body)) {
    const object = objectOf(name, body);
    if (object !== undefined) facts.object = object;
  }
  // Whatever a routine body reads lands in its variables, notices or result, beyond result masking.
  new StatementWalker(facts, (folded) => facts.flows.push(...routineFlows(folded))).walk(stmt, new Set());
  const lineage = statementLineage(stmt);
  facts.outputs = lineage.outputs;
  facts.flows.push(...lineage.flows);
  return [facts, lineage.values];
}
