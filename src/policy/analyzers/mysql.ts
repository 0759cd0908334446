// Turns MySQL text into facts with node-sql-parser's MySQL grammar: one entry per statement with
// its kind, the tables it reads and writes, the functions it calls, and the risks rules ask about.

import sqlParser from 'node-sql-parser';
import {
  emptyStatementFacts,
  type SqlFacts,
  type SqlStatementFacts,
  type TableRef,
  unparseableSql,
} from '../facts.js';
import { FactsCache } from './facts-cache.js';
import { fingerprintStatement, splitStatements } from './mysql-text.js';

const parser = new sqlParser.Parser();
const OPTIONS = { database: 'mysql' };

/** tableList operations that only read; every other operation (insert, update, drop, …) writes. */
const READ_OPERATIONS = new Set(['select', 'show', 'use', 'desc', 'explain']);
/** Statements the grammar does not know, whose SQL is only a name or a variable at this point. */
const DYNAMIC_SQL = /^(prepare|execute|deallocate)\b/i;
const FILE_FUNCTIONS = new Set(['load_file']);

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null;
}

/** Visits every object in the AST, depth first. */
function walk(value: unknown, visit: (node: Node) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit);
  } else if (isNode(value)) {
    visit(value);
    for (const child of Object.values(value)) walk(child, visit);
  }
}

function functionName(node: Node): string | null {
  if (node.type === 'aggr_func' && typeof node.name === 'string') return node.name.toLowerCase();
  if (node.type !== 'function' || !isNode(node.name) || !Array.isArray(node.name.name)) return null;
  const parts = node.name.name.map((p: unknown) => (isNode(p) ? String(p.value) : String(p)));
  const schema = node.name.schema;
  if (isNode(schema) && typeof schema.value === 'string') parts.unshift(schema.value);
  return parts.join('.').toLowerCase();
}

function pushRef(list: TableRef[], ref: TableRef): void {
  if (!list.some((t) => t.schema === ref.schema && t.name === ref.name)) list.push(ref);
}

function refOf(value: unknown): TableRef | null {
  if (!isNode(value) || typeof value.table !== 'string') return null;
  return { schema: typeof value.db === 'string' ? value.db : null, name: value.table };
}

/** Object type of DDL and privilege statements (drop table, create index, grant on procedure …). */
function objectOf(ast: Node): string | undefined {
  if (ast.type === 'alter') return 'table';
  if (ast.type === 'rename') return 'table';
  if (ast.type === 'grant' || ast.type === 'revoke') {
    const on = isNode(ast.on) ? ast.on.object_type : null;
    return typeof on === 'string' ? on.toLowerCase() : ast.keyword === 'role' ? 'role' : 'privilege';
  }
  return typeof ast.keyword === 'string' ? ast.keyword.toLowerCase() : undefined;
}

/** The row changes of a statement, by node type: REPLACE deletes the rows it collides with and inserts. */
const CHANGES: Record<string, readonly string[]> = {
  insert: ['insert'],
  replace: ['replace', 'insert', 'delete'],
  update: ['update'],
  delete: ['delete'],
};

function kindOf(ast: Node): string {
  const type = String(ast.type).toLowerCase();
  if (type === 'create') {
    const object = objectOf(ast) ?? 'object';
    return object === 'table' && (ast.query_expr || ast.as) ? 'create_table_as' : `create_${object}`;
  }
  if (type === 'alter') return 'alter_table';
  if (type === 'rename') return 'rename_table';
  return type;
}

/** Tables the grammar reports through tableList plus the ones it leaves out (DROP VIEW, LOAD DATA …). */
function tablesOf(ast: Node, tableList: string[]): { read: TableRef[]; written: TableRef[] } {
  const read: TableRef[] = [];
  const written: TableRef[] = [];
  const cte = new Set<string>();
  if (Array.isArray(ast.with)) {
    for (const w of ast.with) if (isNode(w) && isNode(w.name)) cte.add(String(w.name.value));
  }
  for (const entry of tableList) {
    const [operation = '', db = 'null', name = 'null'] = entry.split('::');
    if (name === 'null' || (db === 'null' && cte.has(name))) continue;
    const ref = { schema: db === 'null' ? null : db, name };
    pushRef(READ_OPERATIONS.has(operation.toLowerCase()) ? read : written, ref);
  }
  const extra = ast.type === 'drop' || ast.type === 'create' ? [ast.name, ast.table] : [];
  if (ast.type === 'load_data') extra.push(ast.table);
  for (const value of extra.flat()) {
    const ref = refOf(value);
    if (ref) pushRef(written, ref);
  }
  return { read, written };
}

function statementFacts(ast: Node, tableList: string[]): SqlStatementFacts {
  const functions: string[] = [];
  let fileAccess = ast.type === 'load_data';
  let whereAbsent = false;
  const changes: string[] = [];
  walk(ast, (node) => {
    const type = String(node.type).toLowerCase();
    const change = (k: string) => changes.includes(k) || changes.push(k);
    for (const k of CHANGES[type] ?? []) change(k);
    // INSERT … ON DUPLICATE KEY UPDATE updates the rows it collides with.
    if (type === 'insert' && node.on_duplicate_update) change('update');
    const fn = functionName(node);
    if (fn !== null) {
      if (!functions.includes(fn)) functions.push(fn);
      if (FILE_FUNCTIONS.has(fn)) fileAccess = true;
    }
    if (
      node.type === 'into' &&
      typeof node.keyword === 'string' &&
      /^(outfile|dumpfile)$/i.test(node.keyword)
    ) {
      fileAccess = true;
    }
    if ((node.type === 'update' || node.type === 'delete') && 'where' in node && !node.where)
      whereAbsent = true;
  });
  const { read, written } = tablesOf(ast, tableList);
  const facts: SqlStatementFacts = {
    kind: kindOf(ast),
    tables_read: read,
    tables_written: written,
    functions,
    where_absent: whereAbsent,
    changes,
    program: false,
    file_access: fileAccess,
    binary_output: false,
    opaque: false,
    // No column lineage for MySQL yet: outputs unknown, no flows reported.
    outputs: null,
    flows: [],
    values: [],
  };
  const object = objectOf(ast);
  if (object !== undefined && /^(create|drop|alter|grant|revoke|truncate|rename)/.test(facts.kind)) {
    facts.object = object;
  }
  return facts;
}

/** A statement whose SQL the analyzer cannot see: opaque, except DEALLOCATE which only drops a name. */
function dynamicFacts(kind: string): SqlStatementFacts {
  return { ...emptyStatementFacts(kind, kind !== 'deallocate'), outputs: null };
}

const failure = (message: string): SqlFacts => unparseableSql('mysql', message);

/**
 * Exact text only. A normalized level (literals stripped) would be unsafe here: the grammar takes
 * quoted strings and hex literals as table names (`FROM 'users'`, `FROM "users"`, `FROM 0x10`),
 * so a lexical scanner cannot tell which literals the facts ignore.
 */
const cache = new FactsCache({ analyze: (sql) => analyzeMysqlUncached(sql) });

/**
 * {@link analyzeMysqlUncached} through an LRU of the last 10,000 exact texts: the same text gets
 * the same frozen facts object, so it is parsed once and the Decider's cache keeps its decision.
 */
export function analyzeMysql(sql: string): SqlFacts {
  return cache.get(sql);
}

/**
 * Analyzes a MySQL batch. Never throws: text the grammar rejects comes back with `unparseable`
 * set to the parser's message (and the statement number when the batch has several).
 * The fingerprint is each statement re-printed by the parser and then normalized by
 * {@link fingerprintStatement} (literals → `?`, whitespace collapsed, keywords lowercased), joined by `; `.
 */
export function analyzeMysqlUncached(sql: string): SqlFacts {
  const pieces = splitStatements(sql);
  if (pieces.length === 0) return failure('empty statement');
  const statements: SqlStatementFacts[] = [];
  const prints: string[] = [];
  for (const [index, piece] of pieces.entries()) {
    const where = pieces.length > 1 ? `statement ${index + 1}: ` : '';
    const dynamic = DYNAMIC_SQL.exec(piece.text);
    if (dynamic) {
      statements.push(dynamicFacts(String(dynamic[1]).toLowerCase()));
      prints.push(fingerprintStatement(piece.text));
      continue;
    }
    let parsed: ReturnType<typeof parser.parse>;
    try {
      parsed = parser.parse(piece.text, OPTIONS);
    } catch (err) {
      return failure(`${where}${err instanceof Error ? err.message : String(err)}`);
    }
    const asts = (Array.isArray(parsed.ast) ? parsed.ast : [parsed.ast]) as unknown[];
    // Text the server runs but the grammar reads as nothing (`/*!50000 DROP TABLE t *\/`).
    if (!asts.some(isNode)) statements.push(dynamicFacts('unknown'));
    for (const ast of asts) {
      if (!isNode(ast)) continue;
      const facts = statementFacts(ast, parsed.tableList);
      // Executable comments run on the server but are invisible to the grammar.
      if (piece.executableComment) facts.opaque = true;
      statements.push(facts);
    }
    let printed = piece.text;
    try {
      printed = piece.executableComment ? piece.text : parser.sqlify(parsed.ast, OPTIONS);
    } catch {
      // The grammar read it but cannot print it back; the raw text still normalizes.
    }
    prints.push(fingerprintStatement(printed));
  }
  return {
    protocol_kind: 'sql',
    dialect: 'mysql',
    statements,
    multi_statement: statements.length > 1,
    unparseable: null,
    fingerprint: prints.join('; '),
  };
}
