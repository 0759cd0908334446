import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SqlStatementFacts } from '../facts.js';
import { analyzeMysql, analyzeMysqlUncached } from './mysql.js';

function only(sql: string): SqlStatementFacts {
  const facts = analyzeMysql(sql);
  assert.equal(facts.unparseable, null, `${sql}: ${facts.unparseable}`);
  assert.equal(facts.statements.length, 1);
  return facts.statements[0]!;
}

const t = (name: string, schema: string | null = null) => ({ schema, name });

describe('mysql analyzer', () => {
  it('reads a SELECT: tables read with their schema, functions, a normalized fingerprint', () => {
    const sql =
      "SELECT a, COUNT(*), UPPER(b)  FROM shop.orders o JOIN users u ON o.uid = u.id WHERE u.name = 'bob'";
    const facts = analyzeMysql(sql);
    assert.equal(facts.dialect, 'mysql');
    assert.equal(facts.multi_statement, false);
    const [s] = facts.statements;
    assert.equal(s?.kind, 'select');
    assert.deepEqual(s?.tables_read, [t('orders', 'shop'), t('users')]);
    assert.deepEqual(s?.tables_written, []);
    assert.deepEqual(s?.functions, ['count', 'upper']);
    assert.equal(
      facts.fingerprint,
      'select `a`, count(*), upper(`b`) from `shop`.`orders` as `o` inner join `users` as `u` on `o`.`uid` = `u`.`id` where `u`.`name` = ?',
    );
  });

  it('gives the same fingerprint to the same statement with other literals and spacing', () => {
    const a = analyzeMysql("select * from t where id = 1 and name = 'x'").fingerprint;
    const b = analyzeMysql("SELECT *\n  FROM t WHERE id=42 AND name='other' -- note").fingerprint;
    assert.equal(a, b);
    assert.notEqual(a, analyzeMysql('select * from T where id = 1 and name = 2').fingerprint);
  });

  it('separates written from read tables in INSERT … SELECT and REPLACE', () => {
    const insert = only('INSERT INTO archive.orders (id) SELECT id FROM orders WHERE created < NOW()');
    assert.equal(insert.kind, 'insert');
    assert.deepEqual(insert.tables_written, [t('orders', 'archive')]);
    assert.deepEqual(insert.tables_read, [t('orders')]);
    assert.deepEqual(insert.functions, ['now']);
    const replace = only('REPLACE INTO settings VALUES (1, "dark")');
    assert.equal(replace.kind, 'replace');
    assert.deepEqual(replace.tables_written, [t('settings')]);
  });

  it('lists the row changes a statement makes: REPLACE deletes and inserts, ON DUPLICATE KEY UPDATE updates', () => {
    assert.deepEqual(only('SELECT * FROM a').changes, []);
    assert.deepEqual(only('DELETE FROM a WHERE id = 1').changes, ['delete']);
    assert.deepEqual(only('REPLACE INTO a (id) VALUES (1)').changes, ['replace', 'insert', 'delete']);
    assert.deepEqual(only('INSERT INTO a (id, n) VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1').changes, [
      'insert',
      'update',
    ]);
    assert.deepEqual(only('SELECT REPLACE(name, "a", "b") FROM a FOR UPDATE').changes, []);
  });

  it('flags UPDATE and DELETE without WHERE, and not with one', () => {
    assert.equal(only('UPDATE accounts SET balance = 0').where_absent, true);
    assert.equal(only('DELETE FROM sessions LIMIT 10').where_absent, true);
    assert.equal(only('UPDATE accounts SET balance = 0 WHERE id = 7').where_absent, false);
    const del = only('DELETE FROM sessions WHERE expires < NOW()');
    assert.equal(del.kind, 'delete');
    assert.equal(del.where_absent, false);
    assert.deepEqual(del.tables_written, [t('sessions')]);
  });

  it('reads multi-table UPDATE and DELETE joins as writing the target and reading the rest', () => {
    const update = only('UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = t2.b');
    assert.deepEqual(update.tables_written, [t('t1')]);
    assert.deepEqual(update.tables_read, [t('t2')]);
    assert.equal(update.where_absent, true);
    const del = only('DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.gone = 1');
    assert.deepEqual(del.tables_written, [t('t1')]);
    assert.equal(del.where_absent, false);
  });

  it('names DDL kinds and their object', () => {
    const cases: Array<[string, string, string | undefined, Array<{ schema: string | null; name: string }>]> =
      [
        ['CREATE TABLE logs (id INT)', 'create_table', 'table', [t('logs')]],
        ['CREATE TABLE copy AS SELECT * FROM logs', 'create_table_as', 'table', [t('copy')]],
        ['DROP TABLE app.users, app.orders', 'drop', 'table', [t('users', 'app'), t('orders', 'app')]],
        ['DROP VIEW report', 'drop', 'view', [t('report')]],
        ['DROP DATABASE app', 'drop', 'database', []],
        ['TRUNCATE TABLE audit_log', 'truncate', 'table', [t('audit_log')]],
        ['ALTER TABLE users ADD COLUMN age INT', 'alter_table', 'table', [t('users')]],
        ['CREATE INDEX by_name ON users (name)', 'create_index', 'index', [t('users')]],
      ];
    for (const [sql, kind, object, written] of cases) {
      const s = only(sql);
      assert.equal(s.kind, kind, sql);
      assert.equal(s.object, object, sql);
      assert.deepEqual(s.tables_written, written, sql);
    }
  });

  it('names session and routine statements: use, set, call, grant, show', () => {
    assert.equal(only('USE shop').kind, 'use');
    assert.equal(only('SET @limit = 10').kind, 'set');
    const call = only('CALL shop.refund(42)');
    assert.equal(call.kind, 'call');
    assert.deepEqual(call.functions, ['shop.refund']);
    const grant = only("GRANT ALL ON shop.* TO 'eve'@'%'");
    assert.equal(grant.kind, 'grant');
    assert.equal(grant.object, 'privilege');
    assert.equal(only('SHOW TABLES').kind, 'show');
  });

  it('sees file access through INTO OUTFILE, INTO DUMPFILE, LOAD DATA and LOAD_FILE()', () => {
    assert.equal(only("SELECT * FROM users INTO OUTFILE '/tmp/users.csv'").file_access, true);
    assert.equal(only("SELECT secret FROM vault INTO DUMPFILE '/var/www/k'").file_access, true);
    const load = only("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE shop.import");
    assert.equal(load.kind, 'load_data');
    assert.equal(load.file_access, true);
    assert.deepEqual(load.tables_written, [t('import', 'shop')]);
    const lf = only("SELECT LOAD_FILE('/etc/shadow')");
    assert.equal(lf.file_access, true);
    assert.deepEqual(lf.functions, ['load_file']);
    assert.equal(only('SELECT a INTO @v FROM t').file_access, false);
  });

  it('marks PREPARE and EXECUTE of dynamic SQL opaque in a multi-statement batch', () => {
    const facts = analyzeMysql(
      "SET @q = 'DROP TABLE users'; PREPARE s FROM @q; EXECUTE s; DEALLOCATE PREPARE s",
    );
    assert.equal(facts.unparseable, null);
    assert.equal(facts.multi_statement, true);
    assert.deepEqual(
      facts.statements.map((s) => [s.kind, s.opaque]),
      [
        ['set', false],
        ['prepare', true],
        ['execute', true],
        ['deallocate', false],
      ],
    );
    assert.equal(facts.fingerprint, 'set @q = ?; prepare s from @q; execute s; deallocate prepare s');
  });

  it('splits batches on semicolons outside quotes and comments', () => {
    const facts = analyzeMysql('SELECT \'a;b\' FROM t; /* ; */ DELETE FROM t WHERE x = "c;d"; -- ;');
    assert.deepEqual(
      facts.statements.map((s) => s.kind),
      ['select', 'delete'],
    );
    assert.equal(facts.multi_statement, true);
  });

  it('marks executable comments opaque and keeps them in the fingerprint', () => {
    const facts = analyzeMysql('SELECT 1 /*!50000 , (SELECT 1 FROM mysql.user) */');
    assert.equal(facts.statements[0]?.opaque, true);
    assert.notEqual(facts.fingerprint, analyzeMysql('SELECT 1').fingerprint);
    const hidden = analyzeMysql('/*!50000 DROP TABLE users */; SELECT 1');
    assert.deepEqual(
      hidden.statements.map((s) => [s.kind, s.opaque]),
      [
        ['unknown', true],
        ['select', false],
      ],
    );
  });

  it('reports unparseable text with the parser message instead of throwing', () => {
    const facts = analyzeMysql('SELEC * FROM users');
    assert.match(facts.unparseable ?? '', /Expected/);
    assert.deepEqual(facts.statements, []);
    assert.equal(facts.fingerprint, null);
    assert.match(analyzeMysql('SELECT 1; DROP TABLE').unparseable ?? '', /^statement 2: /);
    assert.equal(analyzeMysql('   -- nothing\n').unparseable, 'empty statement');
    assert.notEqual(analyzeMysql("SELECT 'unterminated").unparseable, null);
  });

  it('returns the same frozen facts for the same text, and only for the same text', () => {
    const a = analyzeMysql('SELECT * FROM cached_orders WHERE id = 1');
    assert.equal(analyzeMysql('SELECT * FROM cached_orders WHERE id = 1'), a);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.statements[0]?.tables_read));
    assert.deepEqual(a, analyzeMysqlUncached('SELECT * FROM cached_orders WHERE id = 1'));
    assert.notEqual(analyzeMysql('SELECT * FROM cached_orders WHERE id = 2'), a);
  });

  it('reads quoted strings and hex literals as table names, so literals cannot be stripped for a cache key', () => {
    const tables = (sql: string) => analyzeMysql(sql).statements[0]?.tables_read;
    assert.deepEqual(tables("SELECT * FROM 'users'"), [t('users')]);
    assert.deepEqual(tables('SELECT * FROM "orders"'), [t('orders')]);
    assert.deepEqual(tables('SELECT * FROM 0x10'), [t('0x10')]);
  });
});
