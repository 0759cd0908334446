// Evasion attempts and ordinary queries for the PostgreSQL analyzer: each bypass names the one
// thing its facts must reveal, so a rule (no-drop, no-unbounded-delete, pii-tables) can deny it.

import type { ColumnSource, SqlFacts } from '../facts.js';
import { LINEAGE_BYPASSES } from './postgres-corpus-lineage.js';

/**
 * What a rule needs to see: a DROP TABLE, a DELETE without WHERE (or TRUNCATE), a read of users,
 * hidden/bad SQL, a result column computed from users.ssn, or users.ssn copied past the result.
 */
export type Reveal =
  | 'drop_table'
  | 'delete_without_where'
  | 'truncate'
  | 'reads_users'
  | 'opaque'
  | 'unparseable'
  | 'derives_ssn'
  | 'copies_ssn';

export interface BypassCase {
  name: string;
  sql: string;
  reveals: Reveal;
}

const isSsn = (s: ColumnSource) => s.table === 'users' && (s.column === 'ssn' || s.column === '*');

/** Every dangerous thing the facts show; an ordinary query shows none. */
export function revealed(facts: SqlFacts): Set<Reveal> {
  const out = new Set<Reveal>();
  if (facts.unparseable !== null) out.add('unparseable');
  for (const s of facts.statements) {
    if (s.kind === 'drop' && s.object === 'table') out.add('drop_table');
    if (s.where_absent) out.add('delete_without_where');
    if (s.kind === 'truncate') out.add('truncate');
    if (s.tables_read.some((t) => t.name === 'users')) out.add('reads_users');
    if (s.opaque) out.add('opaque');
    if (s.outputs?.some((o) => !o.direct && o.sources.some(isSsn))) out.add('derives_ssn');
    if (s.flows.some((f) => f.sources.some(isSsn))) out.add('copies_ssn');
  }
  return out;
}

export const BYPASSES: BypassCase[] = [
  // Plain forms, so the rest can be read as variations.
  { name: 'plain drop', sql: 'DROP TABLE users', reveals: 'drop_table' },
  { name: 'plain delete', sql: 'DELETE FROM users', reveals: 'delete_without_where' },
  { name: 'plain read', sql: 'SELECT ssn FROM users', reveals: 'reads_users' },
  // Comments and whitespace.
  { name: 'block comment splits keyword', sql: 'DR/**/OP TABLE users', reveals: 'unparseable' },
  { name: 'block comment between keywords', sql: 'DROP/**/TABLE/**/users', reveals: 'drop_table' },
  { name: 'line comment and newline', sql: 'DROP -- harmless\nTABLE users', reveals: 'drop_table' },
  { name: 'nested block comment', sql: '/* /* x */ */ DELETE FROM users', reveals: 'delete_without_where' },
  { name: 'comment hides WHERE', sql: 'DELETE FROM users -- WHERE id = 1', reveals: 'delete_without_where' },
  {
    name: 'block comment hides WHERE',
    sql: 'DELETE FROM users /* WHERE id = 1 */',
    reveals: 'delete_without_where',
  },
  { name: 'tabs and newlines', sql: 'drop\n\ttable\r\n users', reveals: 'drop_table' },
  { name: 'comment inside read', sql: 'SELECT ssn FROM/* x */users', reveals: 'reads_users' },
  // Case and quoting.
  { name: 'mixed case', sql: 'dRoP tAbLe UsErS', reveals: 'drop_table' },
  { name: 'quoted identifier', sql: 'DROP TABLE "users"', reveals: 'drop_table' },
  { name: 'quoted read', sql: 'SELECT "ssn" FROM "users"', reveals: 'reads_users' },
  { name: 'unicode escape name', sql: 'SELECT ssn FROM U&"\\0075sers"', reveals: 'reads_users' },
  {
    name: 'unicode escape with UESCAPE',
    sql: 'SELECT ssn FROM U&"!0075sers" UESCAPE \'!\'',
    reveals: 'reads_users',
  },
  {
    name: 'unicode escape in delete',
    sql: 'DELETE FROM U&"\\0075\\0073ers"',
    reveals: 'delete_without_where',
  },
  // Dollar quoting and DO blocks.
  { name: 'do block drop', sql: 'DO $$ BEGIN DROP TABLE users; END $$', reveals: 'opaque' },
  { name: 'do block tagged dollar', sql: 'DO $x$ BEGIN DELETE FROM users; END $x$', reveals: 'opaque' },
  {
    name: 'do block static delete is folded',
    sql: 'DO $$ BEGIN DELETE FROM users; END $$',
    reveals: 'delete_without_where',
  },
  {
    name: 'do block static read is folded',
    sql: 'DO $$ BEGIN PERFORM ssn FROM users; END $$',
    reveals: 'reads_users',
  },
  {
    name: 'do block dynamic execute',
    sql: "DO $$ BEGIN EXECUTE 'DR' || 'OP TABLE users'; END $$",
    reveals: 'opaque',
  },
  {
    name: 'do block format execute',
    sql: "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$",
    reveals: 'opaque',
  },
  {
    name: 'do block with language',
    sql: "DO LANGUAGE plpgsql 'BEGIN DELETE FROM users; END'",
    reveals: 'opaque',
  },
  {
    name: 'do block in other language',
    sql: "DO LANGUAGE plpython3u $$plpy.execute('drop table users')$$",
    reveals: 'opaque',
  },
  {
    name: 'do block chr-built name',
    sql: "DO $$ BEGIN EXECUTE 'DROP TABLE ' || chr(117) || 'sers'; END $$",
    reveals: 'opaque',
  },
  // PREPARE / EXECUTE.
  { name: 'prepare delete', sql: 'PREPARE p AS DELETE FROM users', reveals: 'delete_without_where' },
  { name: 'prepare read', sql: 'PREPARE p AS SELECT ssn FROM users', reveals: 'reads_users' },
  { name: 'prepare is opaque', sql: 'PREPARE p AS SELECT 1', reveals: 'opaque' },
  { name: 'execute prepared name', sql: 'EXECUTE p', reveals: 'opaque' },
  {
    name: 'prepare then execute',
    sql: 'PREPARE p AS DELETE FROM users; EXECUTE p',
    reveals: 'delete_without_where',
  },
  // Multi-statement strings.
  { name: 'stacked drop', sql: 'select 1; drop table x', reveals: 'drop_table' },
  { name: 'stacked drop no space', sql: 'select 1;drop table users', reveals: 'drop_table' },
  {
    name: 'stacked delete after comment',
    sql: 'select 1 -- ;\n; delete from users',
    reveals: 'delete_without_where',
  },
  { name: 'stacked read after begin', sql: 'BEGIN; SELECT ssn FROM users; COMMIT', reveals: 'reads_users' },
  {
    name: 'search_path then drop',
    sql: 'set search_path to evil, public; drop table users',
    reveals: 'drop_table',
  },
  { name: 'set role then drop', sql: 'SET ROLE admin; DROP TABLE users', reveals: 'drop_table' },
  // Schema-qualified names.
  { name: 'schema-qualified read', sql: 'SELECT ssn FROM public.users', reveals: 'reads_users' },
  { name: 'quoted schema-qualified read', sql: 'SELECT ssn FROM "public"."users"', reveals: 'reads_users' },
  { name: 'catalog-qualified read', sql: 'SELECT ssn FROM db.public.users', reveals: 'reads_users' },
  { name: 'schema-qualified drop', sql: 'DROP TABLE public.users', reveals: 'drop_table' },
  // Objects that hide the table.
  { name: 'view over users', sql: 'create view v as select * from users', reveals: 'reads_users' },
  {
    name: 'materialized view over users',
    sql: 'CREATE MATERIALIZED VIEW m AS SELECT ssn FROM users',
    reveals: 'reads_users',
  },
  { name: 'create table as', sql: 'CREATE TABLE copy AS SELECT * FROM users', reveals: 'reads_users' },
  { name: 'select into', sql: 'SELECT * INTO copy FROM users', reveals: 'reads_users' },
  {
    name: 'sql function body',
    sql: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM users'",
    reveals: 'delete_without_where',
  },
  {
    name: 'plpgsql function body',
    sql: 'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE users; END $$',
    reveals: 'opaque',
  },
  {
    name: 'begin atomic body',
    sql: 'CREATE PROCEDURE p() BEGIN ATOMIC DELETE FROM users; END',
    reveals: 'delete_without_where',
  },
  {
    name: 'rule rewrites to delete',
    sql: 'CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM users',
    reveals: 'delete_without_where',
  },
  // CTEs.
  {
    name: 'delete in CTE',
    sql: 'WITH x AS (DELETE FROM users RETURNING *) SELECT 1',
    reveals: 'delete_without_where',
  },
  {
    name: 'update in CTE',
    sql: 'WITH x AS (UPDATE users SET ssn = null RETURNING 1) SELECT 1',
    reveals: 'delete_without_where',
  },
  {
    name: 'CTE reading users',
    sql: 'WITH x AS (SELECT ssn FROM users) SELECT * FROM x',
    reveals: 'reads_users',
  },
  {
    name: 'CTE named users shadows nothing in its own body',
    sql: 'WITH users AS (SELECT * FROM users) SELECT * FROM users',
    reveals: 'reads_users',
  },
  {
    name: 'recursive CTE',
    sql: 'WITH RECURSIVE r AS (SELECT ssn FROM users UNION SELECT ssn FROM r) SELECT * FROM r',
    reveals: 'reads_users',
  },
  {
    name: 'CTE shadow ends at subquery',
    sql: 'SELECT * FROM (WITH users AS (SELECT 1) SELECT * FROM users) a, users',
    reveals: 'reads_users',
  },
  {
    name: 'nested CTE delete',
    sql: 'WITH a AS (WITH b AS (DELETE FROM users RETURNING 1) SELECT 1) SELECT 1',
    reveals: 'delete_without_where',
  },
  // Other ways to the same damage.
  { name: 'truncate', sql: 'TRUNCATE users', reveals: 'truncate' },
  { name: 'truncate only cascade', sql: 'TRUNCATE ONLY public.users CASCADE', reveals: 'truncate' },
  { name: 'drop if exists', sql: 'DROP TABLE IF EXISTS users', reveals: 'drop_table' },
  { name: 'drop list cascade', sql: 'DROP TABLE a, users CASCADE', reveals: 'drop_table' },
  {
    name: 'explain analyze delete',
    sql: 'EXPLAIN ANALYZE DELETE FROM users',
    reveals: 'delete_without_where',
  },
  { name: 'explain read', sql: 'EXPLAIN SELECT ssn FROM users', reveals: 'reads_users' },
  { name: 'copy to stdout', sql: 'COPY users TO STDOUT', reveals: 'reads_users' },
  { name: 'copy query to stdout', sql: 'COPY (SELECT ssn FROM users) TO STDOUT', reveals: 'reads_users' },
  { name: 'select from only', sql: 'SELECT * FROM ONLY users', reveals: 'reads_users' },
  { name: 'TABLE shorthand', sql: 'TABLE users', reveals: 'reads_users' },
  {
    name: 'subquery in function args',
    sql: 'SELECT lower((SELECT ssn FROM users LIMIT 1))',
    reveals: 'reads_users',
  },
  {
    name: 'lateral join',
    sql: 'SELECT * FROM t, LATERAL (SELECT ssn FROM users WHERE users.id = t.id) u',
    reveals: 'reads_users',
  },
  { name: 'exists subquery', sql: 'SELECT 1 WHERE EXISTS (SELECT 1 FROM users)', reveals: 'reads_users' },
  { name: 'union', sql: 'SELECT 1 UNION ALL SELECT ssn FROM users', reveals: 'reads_users' },
  { name: 'insert select', sql: 'INSERT INTO t SELECT ssn FROM users', reveals: 'reads_users' },
  {
    name: 'update from',
    sql: 'UPDATE t SET x = u.ssn FROM users u WHERE u.id = t.id',
    reveals: 'reads_users',
  },
  { name: 'delete using', sql: 'DELETE FROM t USING users u WHERE u.id = t.id', reveals: 'reads_users' },
  {
    name: 'merge source',
    sql: 'MERGE INTO t USING users u ON t.id = u.id WHEN MATCHED THEN DELETE',
    reveals: 'reads_users',
  },
  {
    name: 'dblink runs hidden sql',
    sql: "SELECT * FROM dblink('dbname=x', 'DROP TABLE users') AS t(a text)",
    reveals: 'opaque',
  },
  { name: 'dblink_exec', sql: "SELECT dblink_exec('DELETE FROM users')", reveals: 'opaque' },
  {
    name: 'query_to_xml',
    sql: "SELECT query_to_xml('select ssn from users', true, false, '')",
    reveals: 'opaque',
  },
  {
    name: 'qualified query_to_xml',
    sql: "SELECT pg_catalog.query_to_xml('select ssn from users', true, false, '')",
    reveals: 'opaque',
  },
  {
    name: 'window and order by subquery',
    sql: 'SELECT row_number() OVER (ORDER BY (SELECT 1 FROM users)) FROM t',
    reveals: 'reads_users',
  },
  { name: 'values with subquery', sql: 'VALUES ((SELECT ssn FROM users LIMIT 1))', reveals: 'reads_users' },
  ...LINEAGE_BYPASSES,
  // Not SQL the server would accept, so rules deny it as unparseable.
  { name: 'truncated statement', sql: 'DROP TABLE', reveals: 'unparseable' },
  { name: 'NUL byte hides the rest', sql: 'SELECT 1\u0000; DROP TABLE users', reveals: 'unparseable' },
  { name: 'unterminated dollar quote', sql: 'DO $$ BEGIN DROP TABLE users; END', reveals: 'unparseable' },
];

// `DELETE FROM users WHERE true` (or `WHERE 1=1`) has a WHERE clause, so where_absent stays false;
// catching tautological predicates is a rule-level concern, not a parser fact.

/** Ordinary work that must reveal nothing: false positives here are bugs. */
export const ORDINARY: string[] = [
  'SELECT 1',
  'SELECT id, total FROM orders WHERE id = $1',
  'select * from public.orders o join customers c on c.id = o.customer_id',
  'INSERT INTO orders (id, total) VALUES (1, 2)',
  'INSERT INTO orders SELECT * FROM staging_orders',
  'UPDATE orders SET total = 0 WHERE id = 1',
  'DELETE FROM orders WHERE id = 1',
  'DELETE FROM sessions WHERE expires_at < now()',
  'WITH recent AS (SELECT * FROM orders WHERE day > now()) SELECT count(*) FROM recent',
  'WITH users AS (SELECT 1 AS id) SELECT * FROM users',
  'WITH x AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM x',
  'SELECT * FROM user_profiles',
  'SELECT users FROM orders',
  'SELECT * FROM "Users"',
  'SELECT * FROM audit.users_archive',
  'CREATE TABLE t (id int primary key)',
  'CREATE INDEX ON orders (customer_id)',
  'ALTER TABLE orders ADD COLUMN note text',
  'ALTER TABLE orders RENAME TO orders_2024',
  'ALTER TABLE orders_2024 INHERIT orders_base',
  'DROP VIEW recent_orders',
  'DROP INDEX orders_idx',
  'DROP FUNCTION f(int)',
  'BEGIN',
  'COMMIT',
  'SET search_path TO app, public',
  'SHOW work_mem',
  'EXPLAIN SELECT * FROM orders WHERE id = 1',
  'COPY orders TO STDOUT',
  "SELECT 'DROP TABLE users; DELETE FROM users' AS text",
  'SELECT $$DELETE FROM users$$',
  '-- DROP TABLE users\nSELECT 1',
  '/* DELETE FROM users */ SELECT now()',
  'SELECT * FROM orders o, LATERAL (SELECT * FROM items i WHERE i.order_id = o.id) x',
  'MERGE INTO orders t USING staging s ON t.id = s.id WHEN MATCHED THEN UPDATE SET total = s.total',
  'CALL refresh_orders()',
  'GRANT SELECT ON orders TO analyst',
  'VACUUM orders',
  'SELECT count(*) FROM orders GROUP BY customer_id HAVING count(*) > 1',
  'SELECT upper(name), total::text FROM customers JOIN orders USING (customer_id)',
  'INSERT INTO archive (id, total) SELECT id, total FROM orders',
  'CREATE TABLE totals AS SELECT customer_id, sum(total) FROM orders GROUP BY 1',
  'COPY (SELECT id, total FROM orders) TO STDOUT',
  'SELECT * FROM orders UNION ALL SELECT * FROM archived_orders',
];
