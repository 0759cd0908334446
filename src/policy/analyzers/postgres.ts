// Turns PostgreSQL text into SqlFacts with the real PostgreSQL parser (libpg-query, WASM), so
// rules see what the server will run: every statement, its tables, functions and hidden SQL.

import { fingerprintSync, loadModule, parseSync } from 'libpg-query';
import { emptyStatementFacts, type SqlFacts, type SqlStatementFacts } from '../facts.js';
import { routineFlows, statementLineage } from './postgres-lineage.js';
import { isRecord, kindOf, objectOf, StatementWalker } from './postgres-walker.js';

const CACHE_LIMIT = 10_000;

let loading: Promise<void> | undefined;
let loaded = false;
const cache = new Map<string, SqlFacts>();

/** Loads the parser's WASM module; call once at start-up before `analyzePostgres`. */
export async function loadPostgresAnalyzer(): Promise<void> {
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  await loading;
}

/**
 * Facts for `sql`, from an LRU of the last 10,000 distinct texts (keyed by the exact text), so
 * the same command sent again costs one map lookup. The result is frozen because it is shared:
 * the same text returns the same object. Never throws on bad SQL; sets `unparseable` instead.
 */
export function analyzePostgres(sql: string): SqlFacts {
  const hit = cache.get(sql);
  if (hit) {
    cache.delete(sql);
    cache.set(sql, hit);
    return hit;
  }
  const facts = deepFreeze(analyzePostgresUncached(sql));
  cache.set(sql, facts);
  if (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  return facts;
}

/** Facts for `sql` without the cache: a fresh, mutable object each call. */
export function analyzePostgresUncached(sql: string): SqlFacts {
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
  const statements = raw.flatMap((s) => (isRecord(s) ? [statementFacts(s.stmt)] : []));
  return {
    protocol_kind: 'sql',
    dialect: 'postgres',
    statements,
    multi_statement: statements.length > 1,
    unparseable: null,
    fingerprint: fingerprint(sql),
  };
}

function unparseable(message: string): SqlFacts {
  return {
    protocol_kind: 'sql',
    dialect: 'postgres',
    statements: [],
    multi_statement: false,
    unparseable: message,
    fingerprint: null,
  };
}

function statementFacts(stmt: unknown): SqlStatementFacts {
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
  return facts;
}

function fingerprint(sql: string): string | null {
  try {
    return fingerprintSync(sql);
  } catch {
    return null;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
