// Evasions of column masking for the bypass corpus: reading users.ssn through expressions the
// result metadata cannot name, or copying it where result masking cannot follow.

import type { BypassCase } from './postgres-corpus.js';

export const LINEAGE_BYPASSES: BypassCase[] = [
  // Reading a masked column unmasked through an expression the result metadata cannot name.
  { name: 'function over masked column', sql: 'SELECT upper(ssn) FROM users', reveals: 'derives_ssn' },
  { name: 'cast', sql: 'SELECT ssn::text FROM users', reveals: 'derives_ssn' },
  { name: 'alias renames the column', sql: 'SELECT ssn AS tax_id FROM users', reveals: 'derives_ssn' },
  { name: 'concatenation', sql: "SELECT ssn || '' FROM users", reveals: 'derives_ssn' },
  {
    name: 'CASE around column',
    sql: 'SELECT CASE WHEN true THEN ssn END FROM users',
    reveals: 'derives_ssn',
  },
  { name: 'coalesce', sql: "SELECT coalesce(ssn, '') FROM users", reveals: 'derives_ssn' },
  { name: 'aggregate', sql: "SELECT string_agg(ssn, ',') FROM users", reveals: 'derives_ssn' },
  { name: 'window function', sql: 'SELECT first_value(ssn) OVER () FROM users', reveals: 'derives_ssn' },
  { name: 'array constructor', sql: 'SELECT ARRAY[ssn] FROM users', reveals: 'derives_ssn' },
  {
    name: 'expression in subquery',
    sql: "SELECT x FROM (SELECT ssn||'' AS x FROM users) s",
    reveals: 'derives_ssn',
  },
  {
    name: 'function over CTE column',
    sql: 'WITH a AS (SELECT ssn FROM users) SELECT lower(ssn) FROM a',
    reveals: 'derives_ssn',
  },
  { name: 'union arm', sql: 'SELECT name FROM t UNION SELECT ssn FROM users', reveals: 'derives_ssn' },
  {
    name: 'recursive CTE carries column',
    sql: 'WITH RECURSIVE r(s) AS (SELECT ssn FROM users UNION SELECT s FROM r) SELECT s FROM r',
    reveals: 'derives_ssn',
  },
  { name: 'scalar subquery', sql: 'SELECT (SELECT ssn FROM users LIMIT 1)', reveals: 'derives_ssn' },
  { name: 'whole row as json', sql: 'SELECT row_to_json(u) FROM users u', reveals: 'derives_ssn' },
  { name: 'whole row reference', sql: 'SELECT u FROM users u', reveals: 'derives_ssn' },
  { name: 'field of whole row', sql: 'SELECT (u).ssn FROM users u', reveals: 'derives_ssn' },
  { name: 'json_agg of rows', sql: 'SELECT json_agg(u) FROM users u', reveals: 'derives_ssn' },
  { name: 'column alias list on table', sql: 'SELECT x FROM users AS u(x)', reveals: 'derives_ssn' },
  {
    name: 'RETURNING expression',
    sql: 'UPDATE users SET name = name WHERE id = 1 RETURNING upper(ssn)',
    reveals: 'derives_ssn',
  },
  {
    name: 'full join merged column',
    sql: 'SELECT ssn FROM users FULL JOIN archive USING (ssn)',
    reveals: 'derives_ssn',
  },
  { name: 'derived column between stars', sql: 'SELECT *, upper(ssn), * FROM users', reveals: 'derives_ssn' },
  {
    name: 'union of whole rows',
    sql: 'SELECT * FROM users UNION ALL SELECT * FROM users',
    reveals: 'derives_ssn',
  },
  // Copying a masked column where result masking cannot follow it.
  { name: 'create table as column', sql: 'CREATE TABLE x AS SELECT ssn FROM users', reveals: 'copies_ssn' },
  { name: 'insert select column', sql: 'INSERT INTO x SELECT ssn FROM users', reveals: 'copies_ssn' },
  { name: 'copy whole table', sql: 'COPY users TO STDOUT', reveals: 'copies_ssn' },
  { name: 'copy listed column', sql: 'COPY users (ssn) TO STDOUT', reveals: 'copies_ssn' },
  { name: 'copy query', sql: 'COPY (SELECT ssn FROM users) TO STDOUT', reveals: 'copies_ssn' },
  { name: 'view of column', sql: 'CREATE VIEW v AS SELECT ssn FROM users', reveals: 'copies_ssn' },
  { name: 'select into column', sql: 'SELECT ssn INTO x FROM users', reveals: 'copies_ssn' },
  {
    name: 'materialized view of expression',
    sql: 'CREATE MATERIALIZED VIEW m AS SELECT upper(ssn) FROM users',
    reveals: 'copies_ssn',
  },
  {
    name: 'insert values subquery',
    sql: 'INSERT INTO x VALUES ((SELECT ssn FROM users LIMIT 1))',
    reveals: 'copies_ssn',
  },
  {
    name: 'update set subquery',
    sql: 'UPDATE t SET x = (SELECT ssn FROM users LIMIT 1) WHERE id = 1',
    reveals: 'copies_ssn',
  },
  {
    name: 'update into another column',
    sql: 'UPDATE users SET name = ssn WHERE id = 1',
    reveals: 'copies_ssn',
  },
  {
    name: 'merge insert',
    sql: 'MERGE INTO t USING users u ON t.id = u.id WHEN NOT MATCHED THEN INSERT (a) VALUES (u.ssn)',
    reveals: 'copies_ssn',
  },
  {
    name: 'insert in CTE',
    sql: 'WITH x AS (INSERT INTO t SELECT ssn FROM users RETURNING 1) SELECT 1',
    reveals: 'copies_ssn',
  },
  {
    name: 'explain analyze create table as',
    sql: 'EXPLAIN ANALYZE CREATE TABLE x AS SELECT ssn FROM users',
    reveals: 'copies_ssn',
  },
  {
    name: 'cursor of expression',
    sql: 'DECLARE c CURSOR FOR SELECT upper(ssn) FROM users',
    reveals: 'copies_ssn',
  },
  {
    name: 'set_config carries value',
    sql: "SELECT set_config('app.x', ssn, false) FROM users",
    reveals: 'copies_ssn',
  },
  {
    name: 'sequence value carries bytes',
    sql: "SELECT setval('s', ('x' || encode(substr(convert_to(ssn, 'UTF8'), 1, 7), 'hex'))::bit(56)::bigint) FROM users",
    reveals: 'copies_ssn',
  },
  {
    name: 'advisory lock key carries bytes',
    sql: "SELECT pg_advisory_lock(('x' || encode(substr(convert_to(ssn, 'UTF8'), 1, 7), 'hex'))::bit(56)::bigint) FROM users",
    reveals: 'copies_ssn',
  },
  {
    name: 'large object written',
    sql: "SELECT lowrite(lo_open(4242, 131072), convert_to(ssn, 'UTF8')) FROM users",
    reveals: 'copies_ssn',
  },
  {
    name: 'replication slot named',
    sql: "SELECT pg_create_physical_replication_slot(encode(convert_to(ssn, 'UTF8'), 'hex')) FROM users",
    reveals: 'copies_ssn',
  },
  { name: 'rename masked column', sql: 'ALTER TABLE users RENAME COLUMN ssn TO x', reveals: 'copies_ssn' },
  { name: 'rename the table', sql: 'ALTER TABLE users RENAME TO people', reveals: 'copies_ssn' },
  { name: 'inherit from another table', sql: 'ALTER TABLE users INHERIT people', reveals: 'copies_ssn' },
  {
    name: 'attach as a partition',
    sql: 'ALTER TABLE people ATTACH PARTITION users FOR VALUES FROM (0) TO (100)',
    reveals: 'copies_ssn',
  },
  {
    name: 'generated column copies',
    sql: "ALTER TABLE users ADD COLUMN x text GENERATED ALWAYS AS (ssn || '') STORED",
    reveals: 'copies_ssn',
  },
];
