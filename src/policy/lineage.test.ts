import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ruleSet } from '../config/rules.js';
import { analyzeMysql } from './analyzers/mysql.js';
import { analyzePostgres, loadPostgresAnalyzer } from './analyzers/postgres.js';
import { Decider, type DecisionContext, decide } from './decide.js';
import type { OutputColumn } from './facts.js';
import { fieldPositions } from './lineage.js';

const ctx: DecisionContext = {
  connection: { name: 'app-db', tags: ['prod'], protocol: 'postgres', default: 'allow' },
  caller: { subject: 'alice', groups: ['dev'], kind: 'human', chain: [] },
};

const rules = ruleSet.parse([
  { name: 'pii', when: { sql: { tables: ['users'] } }, effect: 'mask', mask: { columns: ['users.ssn'] } },
]);

/** The same mask with no `when`: it applies to every statement, whatever it reads. */
const everywhere = ruleSet.parse([{ name: 'pii', effect: 'mask', mask: { columns: ['users.ssn'] } }]);

const check = (sql: string, over = rules) => decide(over, ctx, analyzePostgres(sql));
/** Each statement's action under the unconditioned mask, to compare with a list of expected ones. */
const actionsEverywhere = (sqls: string[]) => sqls.map((sql) => [sql, check(sql, everywhere).action]);
const all = (sqls: string[], action: string) => sqls.map((sql) => [sql, action]);
const derived = (sql: string) => check(sql).derived.map((d) => [d.statement, d.output, d.name, d.rule]);

describe('mask rules follow column lineage', () => {
  before(() => loadPostgresAnalyzer());

  it('masks a function of a masked column, which the result metadata cannot name', () => {
    const d = check('SELECT id, upper(ssn) FROM users');
    assert.equal(d.action, 'allow');
    assert.deepEqual(d.derived, [
      { statement: 0, output: 1, name: 'upper', rule: 'pii', style: 'redact', columns: ['users.ssn'] },
    ]);
  });

  it('leaves a plain aliased-table column to result metadata masking (no derived entry)', () => {
    const d = check('SELECT u.ssn FROM users u');
    assert.deepEqual([d.action, d.derived, d.masks.map((m) => m.rule)], ['allow', [], ['pii']]);
  });

  it('masks derived columns through subqueries, CTEs, set operations and whole rows', () => {
    assert.deepEqual(derived("SELECT x FROM (SELECT ssn||'' AS x FROM users) s"), [[0, 0, 'x', 'pii']]);
    assert.deepEqual(derived('WITH a AS (SELECT ssn FROM users) SELECT lower(ssn) FROM a'), [
      [0, 0, 'lower', 'pii'],
    ]);
    assert.deepEqual(derived('SELECT name FROM t UNION SELECT ssn FROM users'), [[0, 0, 'name', 'pii']]);
    assert.deepEqual(derived('SELECT row_to_json(u) FROM users u'), [[0, 0, 'row_to_json', 'pii']]);
    assert.deepEqual(derived('SELECT ssn AS tax_id FROM users'), [[0, 0, 'tax_id', 'pii']]);
  });

  it('does not mask derived columns of unmasked columns', () => {
    assert.deepEqual(derived('SELECT upper(name), id + 1 FROM users'), []);
  });

  it('names the statement of a derived column in a multi-statement string', () => {
    assert.deepEqual(derived('SELECT 1; SELECT name, md5(ssn) FROM users'), [[1, 1, 'md5', 'pii']]);
  });

  it('denies copies of a masked column into tables, views and exports, as the mask rule', () => {
    for (const sql of [
      'CREATE TABLE x AS SELECT ssn FROM users',
      'INSERT INTO x SELECT ssn FROM users',
      'CREATE VIEW v AS SELECT ssn FROM users',
      'COPY (SELECT ssn FROM users) TO STDOUT',
      'UPDATE t SET x = u.ssn FROM users u WHERE u.id = t.id',
    ]) {
      const d = check(sql);
      assert.deepEqual([d.action, d.decidedBy, d.rules], ['deny', 'pii', ['pii']], sql);
      assert.match(d.message ?? '', /users\.ssn.*rule "pii" masks.*ask for an exception to rule "pii"/, sql);
    }
    assert.match(
      check('CREATE TABLE x AS SELECT ssn FROM users').message ?? '',
      /^CREATE TABLE AS would copy users\.ssn into x, which rule "pii" masks: the new table is not masked\./,
    );
  });

  it('denies COPY of a whole table that holds a masked column, explaining the unknown column list', () => {
    const d = check('COPY users TO STDOUT');
    assert.deepEqual([d.action, d.decidedBy], ['deny', 'pii']);
    assert.match(d.message ?? '', /whole rows of users.*"users\.ssn".*column list/);
    assert.equal(check('COPY users (id, name) TO STDOUT').action, 'allow');
  });

  it('denies COPY of any whole table under a bare column pattern, since its columns are unknown', () => {
    const bare = ruleSet.parse([{ name: 'ssn-anywhere', effect: 'mask', mask: { columns: ['ssn'] } }]);
    const d = check('COPY orders TO STDOUT', bare);
    assert.deepEqual([d.action, d.decidedBy], ['deny', 'ssn-anywhere']);
    assert.equal(check('COPY orders (id, total) TO STDOUT', bare).action, 'allow');
  });

  it('allows copies of unmasked columns and masked values written back to their own cell', () => {
    assert.equal(check('INSERT INTO x SELECT name FROM users').action, 'allow');
    assert.equal(check('UPDATE users SET ssn = trim(ssn) WHERE id = 1').action, 'allow');
    assert.equal(check('UPDATE users SET name = ssn WHERE id = 1').action, 'deny');
  });

  it('denies putting a masked table under a name its patterns miss: rename, move, INHERIT, ATTACH PARTITION', () => {
    const qualified = ruleSet.parse([
      { name: 'pii', effect: 'mask', mask: { columns: ['public.users.ssn', '*.card'] } },
    ]);
    const actions = (sql: string) => [check(sql).action, check(sql, qualified).action];
    assert.deepEqual(actions('ALTER TABLE users RENAME TO people'), ['deny', 'deny']);
    assert.deepEqual(actions('ALTER TABLE users INHERIT people'), ['deny', 'deny']);
    assert.deepEqual(actions('ALTER TABLE people ATTACH PARTITION users DEFAULT'), ['deny', 'deny']);
    // `users.ssn` names users in every schema; `public.users.ssn` only in public.
    assert.deepEqual(actions('ALTER TABLE users SET SCHEMA archive'), ['allow', 'deny']);
    // Rows of other tables, and columns any table's name keeps masked (`*.card`), go nowhere new.
    assert.deepEqual(actions('ALTER TABLE orders RENAME TO users_old'), ['allow', 'allow']);
    assert.match(
      check('ALTER TABLE users INHERIT people').message ?? '',
      /^INHERIT would let a parent return the rows of users under the name people, and rule "pii" masks "users.ssn"/,
    );
  });

  it("denies server file access and programs under a column mask: a table's data file holds its rows", () => {
    for (const sql of [
      "SELECT pg_read_binary_file(pg_relation_filepath('users'))",
      "SELECT convert_from(pg_read_file('base/5/16384'), 'SQL_ASCII')",
      "COPY t FROM PROGRAM 'strings base/5/16384'",
      "COPY t FROM '/var/lib/postgresql/data/base/5/16384'",
      // pageinspect reads the same bytes as the data file.
      "SELECT get_raw_page('users', 0)",
    ]) {
      const d = check(sql, everywhere);
      assert.equal(d.action, 'deny', sql);
      assert.match(d.message ?? '', /server's files .* rule "pii" masks \("users.ssn"\)/, sql);
    }
    const detectorsOnly = ruleSet.parse([{ name: 'scan', effect: 'mask', mask: { detectors: ['card'] } }]);
    assert.equal(check("COPY t FROM '/tmp/t.csv'", detectorsOnly).action, 'allow');
  });

  it('denies SQL it cannot read under a column mask: EXECUTE of a string, query_to_xml, other languages', () => {
    for (const sql of [
      "DO $$ DECLARE s text; BEGIN EXECUTE 'SELECT ssn FROM users LIMIT 1' INTO s; RAISE NOTICE '%', s; END $$",
      "CREATE FUNCTION f() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END $$",
      'CREATE FUNCTION f(q text) RETURNS SETOF record LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN FOR r IN EXECUTE q LOOP RETURN NEXT r; END LOOP; END $$',
      "SELECT query_to_xml('SELECT ssn FROM users', true, false, '')",
      "SELECT table_to_xml('users', true, false, '')",
      "SELECT cursor_to_xml('c', 10, true, false, '')",
      "CREATE FUNCTION f() RETURNS text LANGUAGE plpython3u AS 'return 1'",
      "SELECT * FROM crosstab('SELECT id, 1, ssn FROM users') AS t(id int, s text)",
      "SELECT * FROM connectby('users', 'ssn', 'name', 'x', 0) AS t(a text, b text, l int)",
      "CREATE FOREIGN TABLE ft (ssn text) SERVER loop OPTIONS (table_name 'users')",
      'IMPORT FOREIGN SCHEMA public FROM SERVER loop INTO copies',
    ]) {
      const d = check(sql, everywhere);
      assert.equal(d.action, 'deny', sql);
      assert.match(d.message ?? '', /runs SQL the gateway cannot read .* rule "pii" cannot be sure/, sql);
    }
    const detectorsOnly = ruleSet.parse([{ name: 'scan', effect: 'mask', mask: { detectors: ['card'] } }]);
    assert.equal(check("DO $$ BEGIN EXECUTE 'VACUUM'; END $$", detectorsOnly).action, 'allow');
  });

  it('reads PL/pgSQL bodies that return a value or a query, so a masked column they read is refused', () => {
    for (const sql of [
      'CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT ssn FROM users LIMIT 1); END $$',
      'CREATE FUNCTION f() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT ssn FROM users; END $$',
    ]) {
      assert.match(check(sql, everywhere).message ?? '', /function body would read users.ssn/, sql);
    }
    const harmless = 'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$';
    assert.equal(check(harmless, everywhere).action, 'allow');
  });

  it("denies trigger functions, rules and row parameters that copy a masked column of a row they don't name", () => {
    const denied = [
      'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO x VALUES (NEW.ssn); RETURN NEW; END $$',
      'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO x SELECT OLD.*; RETURN OLD; END $$',
      'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO x VALUES (row_to_json(NEW)); RETURN NEW; END $$',
      'CREATE RULE r AS ON UPDATE TO users DO ALSO INSERT INTO x VALUES (new.ssn)',
      "CREATE FUNCTION f(u users) RETURNS void LANGUAGE sql AS 'INSERT INTO x VALUES (u.ssn)'",
    ];
    assert.deepEqual(actionsEverywhere(denied), all(denied, 'deny'));
    const stamps =
      'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO x VALUES (NEW.id); NEW.at := now(); RETURN NEW; END $$';
    assert.equal(check(stamps, everywhere).action, 'allow');
  });

  it('denies a sink function called under another name or from a routine that passes on its arguments', () => {
    const denied = [
      'CREATE OPERATOR ### (leftarg = text, rightarg = text, function = pg_notify)',
      'CREATE AGGREGATE a(text) (sfunc = set_config, stype = text)',
      'CREATE CAST (int AS text) WITH FUNCTION pg_catalog.setval(regclass, bigint)',
      'ALTER FUNCTION pg_notify(text, text) RENAME TO harmless',
      "CREATE FUNCTION n(text, text) RETURNS void LANGUAGE sql AS 'SELECT pg_notify($1, $2)'",
      'CREATE FUNCTION n(c text, v text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify(c, v); END $$',
      "CREATE FUNCTION b() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('c', NEW.ssn); RETURN NEW; END $$",
      "CREATE FUNCTION t(v text) RETURNS void LANGUAGE sql AS $$ SELECT set_config('app.tenant', v, false) $$",
    ];
    assert.deepEqual(actionsEverywhere(denied), all(denied, 'deny'));
    const allowed = [
      'CREATE OPERATOR ## (leftarg = text, rightarg = text, function = textcat)',
      'ALTER FUNCTION f(int) RENAME TO g',
      // A routine that notifies or locks with constants or the columns of the row it is given.
      "CREATE FUNCTION b() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('users_changed', 'x'); RETURN NEW; END $$",
      "CREATE FUNCTION b() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('users_changed', NEW.id::text); RETURN NEW; END $$",
      'CREATE FUNCTION l() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(42) $$',
    ];
    assert.deepEqual(actionsEverywhere(allowed), all(allowed, 'allow'));
  });

  it('denies reading the statistics catalogs under a column mask: they hold sampled column values', () => {
    for (const sql of [
      "SELECT histogram_bounds FROM pg_stats WHERE tablename = 'users'",
      'SELECT stavalues1 FROM pg_catalog.pg_statistic',
      'SELECT most_common_vals FROM pg_stats_ext',
    ]) {
      assert.match(check(sql, everywhere).message ?? '', /holds values ANALYZE sampled/, sql);
    }
    assert.equal(check('SELECT relname FROM pg_class', everywhere).action, 'allow');
  });

  it('matches masked columns by table and schema the way table rules do', () => {
    const qualified = ruleSet.parse([
      { name: 'pii', effect: 'mask', mask: { columns: ['public.users.ssn', '*.card'] } },
    ]);
    assert.deepEqual(
      check(
        'SELECT upper(ssn), upper(u.card), lower(a.ssn) FROM users u, archive.users a',
        qualified,
      ).derived.map((d) => d.output),
      [0, 1],
    );
  });

  it('denies a derived masked column it cannot place: after two stars, or inside a star', () => {
    const two = check('SELECT *, upper(ssn), * FROM users');
    assert.deepEqual([two.action, two.decidedBy], ['deny', 'pii']);
    assert.match(two.message ?? '', /result column 2 \("upper"\).*more than one \*/);
    const oneStar = check('SELECT *, upper(ssn) FROM users');
    assert.deepEqual([oneStar.action, oneStar.derived.map((d) => d.output)], ['allow', [1]]);
    const inside = check('SELECT * FROM users UNION ALL SELECT * FROM users');
    assert.deepEqual([inside.action, inside.decidedBy], ['deny', 'pii']);
    assert.match(inside.message ?? '', /\* at result position 1/);
  });

  it('keeps precedence: an explicit deny rule decides first, and a lineage deny outranks review', () => {
    const both = ruleSet.parse([
      {
        name: 'no-ctas',
        when: { sql: { statements: ['create_table_as'] } },
        effect: 'deny',
        message: 'no CTAS',
      },
      { name: 'pii', effect: 'mask', mask: { columns: ['users.ssn'] } },
      { name: 'hold-writes', when: { sql: { statements: ['insert'] } }, effect: 'review' },
    ]);
    const ctas = check('CREATE TABLE x AS SELECT ssn FROM users', both);
    assert.deepEqual([ctas.action, ctas.decidedBy, ctas.message], ['deny', 'no-ctas', 'no CTAS']);
    const insert = check('INSERT INTO x SELECT ssn FROM users', both);
    assert.deepEqual([insert.action, insert.decidedBy, insert.review], ['deny', 'pii', null]);
    assert.deepEqual(insert.rules, ['pii', 'hold-writes']);
    assert.equal(check('INSERT INTO x SELECT name FROM users', both).action, 'review');
  });

  it('ignores lineage for mask rules with detectors only', () => {
    const detectors = ruleSet.parse([{ name: 'secrets', effect: 'mask', mask: { detectors: ['ssn'] } }]);
    const d = check('CREATE TABLE x AS SELECT ssn FROM users', detectors);
    assert.deepEqual([d.action, d.derived], ['allow', []]);
  });

  it('denies a statement too complex to trace rather than guess its lineage', () => {
    let sql = 'SELECT ssn, 1, 2, 3 FROM users';
    for (let i = 0; i < 12; i++) {
      sql = `WITH RECURSIVE r${i}(a, b, c, d) AS (SELECT * FROM (${sql}) x UNION SELECT d, a, b, c FROM r${i}) SELECT * FROM r${i}`;
    }
    const d = check(sql);
    assert.deepEqual([d.action, d.decidedBy], ['deny', 'pii']);
    assert.match(d.message ?? '', /too deeply for the gateway to trace/);
  });

  it('caches lineage decisions per facts object like any other decision', () => {
    const decider = new Decider(rules);
    const facts = analyzePostgres('SELECT upper(ssn) FROM users');
    const first = decider.decide(ctx, facts);
    assert.equal(decider.decide(ctx, facts), first);
    assert.equal(first.derived.length, 1);
  });

  it('finds no lineage in MySQL facts yet: outputs unknown, no flows', () => {
    const facts = analyzeMysql('CREATE TABLE x AS SELECT ssn FROM users');
    assert.deepEqual(
      facts.statements.map((s) => [s.outputs, s.flows]),
      [[null, []]],
    );
    assert.equal(decide(rules, ctx, facts).action, 'allow');
  });
});

describe('fieldPositions', () => {
  const col = (name: string): OutputColumn => ({ name, direct: false, star: false, sources: [] });
  const star: OutputColumn = { name: '*', direct: true, star: true, sources: [] };

  it('maps outputs one to one when there is no star, and refuses a field count that does not fit', () => {
    assert.deepEqual(fieldPositions([col('a'), col('b')], 2), [0, 1]);
    assert.deepEqual(fieldPositions([col('a'), col('b')], 3), [null, null]);
  });

  it('counts outputs after a single star back from the end of the row', () => {
    assert.deepEqual(fieldPositions([col('a'), star, col('b'), col('c')], 7), [0, null, 5, 6]);
    assert.deepEqual(fieldPositions([star, col('x')], 1), [null, 0]);
    assert.deepEqual(fieldPositions([col('a'), star, col('b')], 1), [null, null, null]);
  });

  it('cannot place anything after the first of several stars', () => {
    assert.deepEqual(fieldPositions([col('a'), star, col('b'), star, col('c')], 9), [
      0,
      null,
      null,
      null,
      null,
    ]);
  });
});

describe('mask rules name the parameters and constants that stand for masked values', () => {
  before(() => loadPostgresAnalyzer());
  const styled = ruleSet.parse([
    {
      name: 'pii',
      when: { sql: { tables: ['users'] } },
      effect: 'mask',
      mask: { columns: ['users.ssn'], style: 'tokenize' },
    },
    { name: 'late', effect: 'mask', mask: { columns: ['ssn'] } },
  ]);
  const bound = (sql: string, over = styled) =>
    check(sql, over).values.map((v) => [
      v.statement,
      v.param,
      v.literal && sql.slice(v.literal.start, v.literal.end),
      v.rule,
      v.style,
    ]);

  it('binds parameters and literals of masked columns only, once, in the first rule’s style', () => {
    assert.deepEqual(bound("INSERT INTO users (name, ssn) VALUES ($1, $2), ('bob', '123-45-6789')"), [
      [0, 2, null, 'pii', 'tokenize'],
      [0, null, "'123-45-6789'", 'pii', 'tokenize'],
    ]);
    assert.deepEqual(bound("UPDATE users SET ssn = '1' WHERE id = $1"), [
      [0, null, "'1'", 'pii', 'tokenize'],
    ]);
    const d = check('SELECT * FROM orders WHERE id = $1');
    assert.deepEqual([d.values, d.valuesUntraceable], [[], false]);
  });

  it('names the statement of a literal in a multi-statement string', () => {
    assert.deepEqual(bound("SELECT 1; SELECT * FROM users WHERE ssn = '9'"), [
      [1, null, "'9'", 'pii', 'tokenize'],
    ]);
  });

  it('marks opaque, unparsed and untraceable statements so their parameters are all masked', () => {
    for (const sql of [
      'EXECUTE p($1)',
      'CALL store_ssn($1)',
      'SELECT * FROM users WHERE',
      'DO $$ BEGIN PERFORM 1; END $$',
    ]) {
      assert.equal(check(sql, styled).valuesUntraceable, true, sql);
    }
    assert.equal(check('SELECT * FROM users WHERE ssn = $1', styled).valuesUntraceable, false);
    // Without a column mask nothing is marked: there is nothing to fail closed for.
    const detectorsOnly = ruleSet.parse([{ name: 'scan', effect: 'mask', mask: { detectors: ['ssn'] } }]);
    assert.equal(check('EXECUTE p($1)', detectorsOnly).valuesUntraceable, false);
  });
});
