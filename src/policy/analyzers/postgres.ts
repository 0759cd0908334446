// Turns PostgreSQL text into SqlFacts with the real PostgreSQL parser (libpg-query, WASM), so
// rules see what the server will run: every statement, its tables, functions and hidden SQL.

import { loadModule, normalizeSync, parseSync } from 'libpg-query';
import { emptyStatementFacts, type SqlFacts, type SqlStatementFacts, unparseableSql } from '../facts.js';
import { FactsCache, type FactsCacheStats } from './facts-cache.js';
import { routineFlows, statementLineage } from './postgres-lineage.js';
import { constantSpans, type Span } from './postgres-literals.js';
import { ShapeIndex } from './postgres-shape-index.js';
import { constantsOf, type Shape, shapeOf } from './postgres-shapes.js';
import type { TracedValue } from './postgres-values.js';
import { isRecord, kindOf, objectOf, StatementWalker } from './postgres-walker.js';

let loading: Promise<void> | undefined;
let loaded = false;

/**
 * Kinds whose facts read a string constant that normalizeSync replaces: DO and CREATE FUNCTION
 * bodies (parsed for hidden tables) and COPY's file name. Also opaque, but named here on purpose.
 */
const CONSTANT_READERS = new Set(['do', 'create_function', 'copy']);

/**
 * Facts with values tied to columns, and their text's shape: a sibling text of the same shape gets
 * its own constants' spans from it. Each literal value names its constant by ordinal.
 */
interface Template {
  shape: Shape;
  /** Per statement, per value: the ordinal of its constant, or null for a parameter. */
  ordinals: Array<Array<number | null>>;
}

const templates = new WeakMap<SqlFacts, Template>();

/** Shapes of texts whose facts are shared: their siblings' keys without the parser. */
const shapes = new ShapeIndex();

// Values tied to columns are shared only with their text's shape: a constant's span differs
// from text to text, and `a = $1` has the normalized key of `a = 5`, whose shape it has not.
const shareable = (facts: SqlFacts): boolean =>
  facts.unparseable === null &&
  facts.statements.every((s) => !CONSTANT_READERS.has(s.kind) && !s.opaque && !s.program && !s.file_access) &&
  (templates.has(facts) || facts.statements.every((s) => s.values.length === 0));

const cache = new FactsCache({
  analyze: (sql, normalized) => {
    const facts = analyzePostgresUncached(sql, normalized);
    if (normalized === null) return facts;
    if (facts.statements.some((s) => s.values.length > 0)) {
      const template = templateOf(sql, normalized, facts);
      if (template) templates.set(facts, template);
    }
    if (shareable(facts)) shapes.add(sql, normalized, templates.get(facts)?.shape);
    return facts;
  },
  normalize: (sql) => shapes.keyOf(sql) ?? normalizedText(sql),
  shareable,
  rebase,
});

function templateOf(sql: string, key: string, facts: SqlFacts): Template | null {
  const found = shapeOf(sql, key);
  if (!found) return null;
  const byStart = new Map(found.constants.map((c, k) => [c.start, k]));
  const ordinals: Array<Array<number | null>> = [];
  for (const s of facts.statements) {
    const row: Array<number | null> = [];
    for (const v of s.values) {
      if (v.literal === null) {
        row.push(null);
        continue;
      }
      const k = byStart.get(v.literal.start);
      // A literal the shape does not account for: these facts stay with their own text.
      if (k === undefined || found.constants[k]?.end !== v.literal.end) return null;
      row.push(k);
    }
    ordinals.push(row);
  }
  return { shape: found.shape, ordinals };
}

/**
 * Shared facts for `sql`: the same object when `sql` has their text's shape (so the decision and
 * everything cached per decision are shared too), else null (`sql` is analyzed afresh). The spans
 * of its own constants are placed only when something needs them: see `literalSpansFor`.
 */
function rebase(shared: SqlFacts, sql: string): SqlFacts | null {
  const template = templates.get(shared);
  if (!template) return shared;
  return constantsOf(sql, template.shape) ? shared : null;
}

/**
 * Where each value's constant sits in `sql`, per statement and value, for facts shared by texts of
 * one shape (a value's `literal` is its span in the text first analyzed); null for facts that
 * belong to one text only, whose `literal` spans are that text's.
 */
export function literalSpansFor(facts: SqlFacts, sql: string): Array<Array<Span | null>> | null {
  const template = templates.get(facts);
  if (!template) return null;
  const spans = constantsOf(sql, template.shape);
  if (!spans) return null;
  return template.ordinals.map((row) => row.map((k) => (k === null ? null : (spans[k] ?? null))));
}

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
 * object (or, when facts place constants in the text, a copy with this text's spans). Statements
 * whose facts read a constant are never shared. Never throws on bad SQL.
 */
export function analyzePostgres(sql: string): SqlFacts {
  return cache.get(sql);
}

/** Where analyses were answered from since start-up (exact text, normalized text, parser). */
export function postgresCacheStats(): FactsCacheStats {
  return cache.stats();
}

/**
 * The normalized key `analyzePostgres` uses for `sql`: from the shapes of texts already parsed
 * when it has one (see ShapeIndex), else null. For tests: what the parser would say is
 * `normalizeSync(sql)`.
 */
export function knownShapeKey(sql: string): string | null {
  return shapes.keyOf(sql);
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
    // libpg-query refuses '' outright; PostgreSQL takes it as no statement, like ';' (EmptyQueryResponse).
    tree = sql === '' ? { stmts: [] } : parseSync(sql);
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
  new StatementWalker(
    facts,
    (folded) => facts.flows.push(...routineFlows(folded)),
    // SQL no parse shows may read any column of any table.
    (what) =>
      facts.flows.push({
        kind: 'hidden_sql',
        target: { schema: null, name: what },
        column: null,
        sources: [{ schema: null, table: null, column: '*' }],
      }),
  ).walk(stmt, new Set());
  const lineage = statementLineage(stmt);
  facts.outputs = lineage.outputs;
  facts.flows.push(...lineage.flows);
  return [facts, lineage.values];
}
