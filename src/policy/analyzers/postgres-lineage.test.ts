import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ColumnSource, SqlStatementFacts } from '../facts.js';
import { analyzePostgresUncached, loadPostgresAnalyzer } from './postgres.js';

before(loadPostgresAnalyzer);

function one(sql: string): SqlStatementFacts {
  const facts = analyzePostgresUncached(sql);
  assert.equal(facts.unparseable, null, `${sql}: ${facts.unparseable}`);
  const [s] = facts.statements;
  assert.ok(s && facts.statements.length === 1, sql);
  return s;
}

const src = (s: ColumnSource) => `${s.schema ? `${s.schema}.` : ''}${s.table ?? '?'}.${s.column}`;

/** Each output as `name [flags] <- sources`, sources sorted, e.g. `upper <- users.ssn`. */
function outputs(sql: string): string[] {
  const found = one(sql).outputs;
  assert.ok(found, `${sql}: outputs are null`);
  return found.map((o) => {
    const flags = [o.direct ? 'direct' : '', o.star ? 'star' : ''].filter(Boolean).join(' ');
    return `${o.name}${flags ? ` (${flags})` : ''} <- ${o.sources.map(src).sort().join(', ')}`;
  });
}

/** Each flow as `kind target[.column] <- sources`. */
function flows(sql: string): string[] {
  return one(sql).flows.map((f) => {
    const target = f.target ? ` ${f.target.name}${f.column ? `.${f.column}` : ''}` : '';
    return `${f.kind}${target} <- ${f.sources.map(src).sort().join(', ')}`;
  });
}

describe('postgres lineage: result column names', () => {
  it('names outputs as PostgreSQL does: alias, column, function, type of a cast constant, ?column?', () => {
    const names = one(
      `SELECT ssn, u.ssn AS x, upper(ssn), 1, 1::int, ssn::text, CASE WHEN true THEN 1 END,
              CASE WHEN true THEN 1 ELSE ssn END,
              coalesce(a, b), (SELECT name FROM t), EXISTS (SELECT 1), count(*), current_date,
              nullif(a, b), ARRAY[1], ROW(1, 2), a + b FROM users u`,
    ).outputs?.map((o) => o.name);
    assert.deepEqual(names, [
      'ssn',
      'x',
      'upper',
      '?column?',
      'int4',
      'ssn',
      'case',
      'ssn',
      'coalesce',
      'name',
      'exists',
      'count',
      'current_date',
      'nullif',
      'array',
      'row',
      '?column?',
    ]);
  });
});

describe('postgres lineage: where result columns come from', () => {
  it('resolves table aliases and marks plain columns under their own name as direct', () => {
    assert.deepEqual(outputs('SELECT u.ssn, ssn, ssn AS ssn FROM users u'), [
      'ssn (direct) <- users.ssn',
      'ssn (direct) <- users.ssn',
      'ssn (direct) <- users.ssn',
    ]);
  });

  it('treats a renamed column as derived, since the result names it by the alias', () => {
    assert.deepEqual(outputs('SELECT ssn AS id_number FROM public.users'), ['id_number <- public.users.ssn']);
  });

  it('lists every table of a join as a candidate for an unqualified column', () => {
    assert.deepEqual(outputs('SELECT upper(ssn), o.total FROM users u JOIN orders o ON o.uid = u.id'), [
      'upper <- orders.ssn, users.ssn',
      'total (direct) <- orders.total',
    ]);
  });

  it('traces through operators, casts, CASE, COALESCE, function arguments, aggregates and windows', () => {
    assert.deepEqual(
      outputs(
        `SELECT ssn || '-' || name, ssn::text AS t, CASE WHEN id > 1 THEN ssn ELSE 'x' END,
                coalesce(ssn, name), left(ssn, 3), string_agg(ssn, ','), first_value(ssn) OVER (ORDER BY id)
         FROM users`,
      ),
      [
        '?column? <- users.name, users.ssn',
        't <- users.ssn',
        'case <- users.id, users.ssn',
        'coalesce <- users.name, users.ssn',
        'left <- users.ssn',
        'string_agg <- users.ssn',
        'first_value <- users.id, users.ssn',
      ],
    );
  });

  it('traces through subqueries in FROM, keeping plain pass-through columns direct', () => {
    assert.deepEqual(outputs("SELECT x, name FROM (SELECT ssn || '' AS x, name FROM users) s"), [
      'x <- users.ssn',
      'name (direct) <- users.name',
    ]);
    assert.deepEqual(outputs('SELECT s.ssn FROM (SELECT * FROM users) s'), ['ssn (direct) <- users.ssn']);
    assert.deepEqual(outputs('SELECT a FROM (SELECT ssn FROM users) s(a)'), ['a <- users.ssn']);
  });

  it('traces through CTEs, nested CTEs and the CTE column list', () => {
    assert.deepEqual(outputs('WITH a AS (SELECT ssn FROM users) SELECT lower(ssn), ssn FROM a'), [
      'lower <- users.ssn',
      'ssn (direct) <- users.ssn',
    ]);
    assert.deepEqual(
      outputs(
        'WITH a AS (WITH b AS (SELECT ssn FROM users) SELECT ssn AS v FROM b), c(w) AS (SELECT v FROM a) SELECT w FROM c',
      ),
      ['w <- users.ssn'],
    );
  });

  it('traces a recursive CTE through its recursive arm', () => {
    assert.deepEqual(
      outputs(
        'WITH RECURSIVE r(n, s) AS (SELECT 1, name FROM t UNION ALL SELECT n + 1, u.ssn FROM r JOIN users u ON true) SELECT s FROM r',
      ),
      ['s <- t.name, users.ssn'],
    );
  });

  it('unions the sources of each position across set operation arms, none of them direct', () => {
    assert.deepEqual(
      outputs('SELECT name, id FROM t UNION SELECT ssn, id FROM users EXCEPT SELECT a, b FROM c'),
      ['name <- c.a, t.name, users.ssn', 'id <- c.b, t.id, users.id'],
    );
  });

  it('gives VALUES columns the sources of their cells across rows', () => {
    assert.deepEqual(outputs('VALUES (1, (SELECT ssn FROM users LIMIT 1)), (2, NULL)'), [
      'column1 <- ',
      'column2 <- users.ssn',
    ]);
  });

  it('traces scalar and correlated subqueries in the target list', () => {
    assert.deepEqual(
      outputs(
        'SELECT (SELECT max(ssn) FROM users), (SELECT o.total FROM orders o WHERE o.uid = u.id) FROM users u',
      ),
      ['max <- users.ssn', 'total <- orders.total'],
    );
  });

  it('reports whole-row references as column *', () => {
    assert.deepEqual(outputs('SELECT row_to_json(u), u, to_jsonb(u.*) FROM users u'), [
      'row_to_json <- users.*, users.u',
      'u <- users.*, users.u',
      'to_jsonb <- users.*',
    ]);
    assert.deepEqual(outputs('SELECT (u).ssn FROM users u'), ['ssn <- users.ssn, users.u']);
  });

  it('reads column aliases on a base table as unknown columns of it', () => {
    assert.deepEqual(outputs('SELECT x FROM users AS u(x)'), ['x <- users.*']);
  });

  it('traces RETURNING of INSERT, UPDATE, DELETE and MERGE', () => {
    assert.deepEqual(outputs("INSERT INTO users (name) VALUES ('a') RETURNING id, upper(ssn)"), [
      'id (direct) <- users.id',
      'upper <- users.ssn',
    ]);
    assert.deepEqual(outputs('UPDATE users SET name = NULL WHERE id = 1 RETURNING *'), [
      '* (direct star) <- users.*',
    ]);
    assert.deepEqual(outputs('DELETE FROM users u USING t WHERE t.id = u.id RETURNING lower(u.ssn)'), [
      'lower <- users.ssn',
    ]);
    assert.deepEqual(
      outputs('MERGE INTO t USING users u ON t.id = u.id WHEN MATCHED THEN DELETE RETURNING u.ssn || t.x'),
      ['?column? <- t.x, users.ssn'],
    );
  });

  it('keeps * of unknown width as one star and expands * over known columns', () => {
    assert.deepEqual(outputs('SELECT *, upper(ssn) FROM users'), [
      '* (direct star) <- users.*',
      'upper <- users.ssn',
    ]);
    assert.deepEqual(outputs('SELECT * FROM t, (SELECT upper(ssn) AS x, name FROM users) s'), [
      '* (direct star) <- t.*',
      'x <- users.ssn',
      'name (direct) <- users.name',
    ]);
    assert.deepEqual(outputs('SELECT * FROM users UNION ALL SELECT * FROM users'), ['* (star) <- users.*']);
    assert.deepEqual(outputs('SELECT * FROM unnest((SELECT array_agg(ssn) FROM users))'), [
      '* (star) <- users.ssn',
    ]);
  });

  it('puts USING columns first and never calls a FULL JOIN merged column direct', () => {
    assert.deepEqual(outputs('SELECT * FROM (SELECT id, upper(ssn) AS s FROM users) a JOIN t USING (id)'), [
      'id <- t.id, users.id',
      's <- users.ssn',
      '* (direct star) <- t.*',
    ]);
    assert.deepEqual(outputs('SELECT ssn FROM users FULL JOIN archive USING (ssn)'), [
      'ssn <- archive.ssn, users.ssn',
    ]);
  });

  it('reports no rows for DDL and unknown rows for EXECUTE, FETCH and CALL', () => {
    assert.deepEqual(one('CREATE TABLE t (id int)').outputs, []);
    assert.deepEqual(one('SELECT ssn INTO x FROM users').outputs, []);
    for (const sql of ['EXECUTE p', 'FETCH c', 'CALL p()']) assert.equal(one(sql).outputs, null, sql);
  });
});

describe('postgres lineage: flows of data past the result', () => {
  it('records CREATE TABLE AS, SELECT INTO, materialized views and views', () => {
    assert.deepEqual(flows('CREATE TABLE x AS SELECT ssn, name FROM users'), [
      'create_table_as x <- users.name, users.ssn',
    ]);
    assert.deepEqual(flows('SELECT upper(ssn) INTO x FROM users'), ['select_into x <- users.ssn']);
    assert.deepEqual(flows('CREATE MATERIALIZED VIEW m AS SELECT * FROM users'), [
      'materialized_view m <- users.*',
    ]);
    assert.deepEqual(flows('CREATE VIEW v AS SELECT ssn FROM users'), ['view v <- users.ssn']);
  });

  it('records INSERT … SELECT and VALUES subqueries per target column when the list names them', () => {
    assert.deepEqual(flows('INSERT INTO x (a, b) SELECT ssn, name FROM users'), [
      'insert x.a <- users.ssn',
      'insert x.b <- users.name',
    ]);
    assert.deepEqual(flows('INSERT INTO x SELECT * FROM users'), ['insert x <- users.*']);
    assert.deepEqual(flows('INSERT INTO x VALUES (1, (SELECT ssn FROM users LIMIT 1))'), [
      'insert x <- users.ssn',
    ]);
    assert.deepEqual(flows("INSERT INTO x VALUES (1, 'a')"), []);
  });

  it('records UPDATE SET from columns, FROM items and subqueries, but not a value written back to its cell', () => {
    assert.deepEqual(flows('UPDATE t SET x = u.ssn, y = 1 FROM users u WHERE u.id = t.id'), [
      'update t.x <- users.ssn',
    ]);
    assert.deepEqual(flows('UPDATE t SET (a, b) = (SELECT name, ssn FROM users LIMIT 1)'), [
      // Unqualified names in a subquery may also be correlated columns of the target.
      'update t.a <- t.name, users.name',
      'update t.b <- t.ssn, users.ssn',
    ]);
    assert.deepEqual(flows('UPDATE users SET name = ssn WHERE id = 1'), ['update users.name <- users.ssn']);
    assert.deepEqual(flows('UPDATE users SET ssn = trim(ssn) WHERE id = 1'), []);
    assert.deepEqual(flows('UPDATE archive.users SET ssn = u.ssn FROM users u'), [
      'update users.ssn <- users.ssn',
    ]);
  });

  it('records MERGE updates and inserts, and ON CONFLICT updates through excluded', () => {
    assert.deepEqual(
      flows(
        'MERGE INTO t USING users u ON t.id = u.id WHEN MATCHED THEN UPDATE SET x = u.ssn WHEN NOT MATCHED THEN INSERT (a, b) VALUES (u.name, 1)',
      ),
      ['merge t.x <- users.ssn', 'merge t.a <- users.name'],
    );
    assert.deepEqual(
      flows('INSERT INTO users (id, ssn) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET name = excluded.ssn'),
      ['insert users.name <- users.ssn'],
    );
  });

  it('records COPY of a table as its whole row or its listed columns, and COPY of a query', () => {
    assert.deepEqual(flows('COPY users TO STDOUT'), ['copy <- users.*']);
    assert.deepEqual(flows('COPY public.users (id, ssn) TO STDOUT'), [
      'copy <- public.users.id, public.users.ssn',
    ]);
    assert.deepEqual(flows('COPY (SELECT upper(ssn) FROM users) TO STDOUT'), ['copy <- users.ssn']);
    assert.deepEqual(flows('COPY users FROM STDIN'), []);
  });

  it('records data-modifying CTEs and EXPLAIN ANALYZE, not plain EXPLAIN', () => {
    assert.deepEqual(flows('WITH x AS (INSERT INTO t SELECT ssn FROM users RETURNING 1) SELECT 1'), [
      'insert t <- users.ssn',
    ]);
    assert.deepEqual(flows('EXPLAIN ANALYZE CREATE TABLE x AS SELECT ssn FROM users'), [
      'create_table_as x <- users.ssn',
    ]);
    assert.deepEqual(flows('EXPLAIN CREATE TABLE x AS SELECT ssn FROM users'), []);
  });

  it('records only derived columns of cursors and prepared statements, whose rows come back later', () => {
    assert.deepEqual(flows('DECLARE c CURSOR FOR SELECT ssn, upper(name) FROM users'), [
      'cursor <- users.name',
    ]);
    assert.deepEqual(flows('PREPARE p AS SELECT ssn FROM users'), []);
  });

  it('records what DO blocks, function bodies and rules read', () => {
    assert.deepEqual(flows('DO $$ BEGIN PERFORM ssn FROM users; END $$'), ['routine_body <- users.ssn']);
    assert.deepEqual(flows("CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT ssn FROM users'"), [
      'routine_body <- users.ssn',
    ]);
    assert.deepEqual(flows('CREATE FUNCTION f() RETURNS text RETURN (SELECT ssn FROM users LIMIT 1)'), [
      'routine_body <- users.ssn',
    ]);
    assert.deepEqual(flows('CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO log SELECT ssn FROM users'), [
      'insert log <- users.ssn',
    ]);
  });

  it('records values passed to functions that carry them out, renamed columns and generated columns', () => {
    assert.deepEqual(flows("SELECT set_config('app.x', ssn, false) FROM users"), [
      'function_call set_config <- users.ssn',
    ]);
    assert.deepEqual(flows("SELECT 1 LIMIT (SELECT length(pg_notify('c', ssn)) FROM users LIMIT 1)"), [
      'function_call pg_notify <- users.ssn',
    ]);
    assert.deepEqual(flows('CALL archive_ids((SELECT ssn FROM users LIMIT 1))'), [
      'function_call archive_ids <- users.ssn',
    ]);
    assert.deepEqual(flows('ALTER TABLE users RENAME COLUMN ssn TO x'), [
      'rename_column users.x <- users.ssn',
    ]);
    assert.deepEqual(flows("ALTER TABLE users ADD COLUMN x text GENERATED ALWAYS AS (ssn || '') STORED"), [
      'generated_column users.x <- users.ssn',
    ]);
  });

  it('records nothing for reads that only return rows', () => {
    assert.deepEqual(flows('SELECT upper(ssn) FROM users WHERE id IN (SELECT uid FROM orders)'), []);
  });
});
