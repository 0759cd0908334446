import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { normalizeSync } from 'libpg-query';
import { analyzePostgresUncached, loadPostgresAnalyzer } from './postgres.js';
import { constantValue } from './postgres-literals.js';
import { constantsOf, shapeOf } from './postgres-shapes.js';

before(loadPostgresAnalyzer);

/**
 * Each value of every statement as `table.column = $n` or `table.column = <text at the span>`
 * (`start`-`end`), so the offsets are checked against the text itself.
 */
function values(sql: string): string[] {
  const facts = analyzePostgresUncached(sql);
  assert.equal(facts.unparseable, null, `${sql}: ${facts.unparseable}`);
  return facts.statements.flatMap((s, si) =>
    s.values.map((v) => {
      const c = `${si}:${v.column.schema ? `${v.column.schema}.` : ''}${v.column.table ?? '?'}.${v.column.column}`;
      if (v.param !== null) return `${c} = $${v.param}`;
      assert.ok(v.literal);
      return `${c} = ${sql.slice(v.literal.start, v.literal.end)} @${v.literal.start}-${v.literal.end}`;
    }),
  );
}

describe('values the statement ties to columns', () => {
  it('ties INSERT VALUES to the column list by position, over every row', () => {
    const sql = "INSERT INTO users (name, ssn) VALUES ('bob', '123-45-6789'), ($1, $2::text)";
    assert.deepEqual(values(sql), [
      "0:users.name = 'bob' @38-43",
      "0:users.ssn = '123-45-6789' @45-58",
      '0:users.name = $1',
      '0:users.ssn = $2',
    ]);
  });

  it('ties INSERT without a column list to the whole row, and INSERT … SELECT targets by position', () => {
    assert.deepEqual(values("INSERT INTO app.users VALUES (7, 'x')"), [
      '0:app.users.* = 7 @30-31',
      "0:app.users.* = 'x' @33-36",
    ]);
    assert.deepEqual(values('INSERT INTO users (ssn, name) SELECT $1, upper($2)'), [
      '0:users.ssn = $1',
      '0:users.name = $2',
    ]);
  });

  it('ties values inside a written expression, and values feeding an INSERT from elsewhere, to the columns written', () => {
    assert.deepEqual(values("INSERT INTO users (ssn) VALUES (trim('1 '::varchar(10)))"), [
      "0:users.ssn = '1 ' @37-41",
    ]);
    assert.deepEqual(values('WITH v(s) AS (VALUES ($1)) INSERT INTO users (ssn) SELECT s FROM v'), [
      '0:users.ssn = $1',
    ]);
    assert.deepEqual(values('UPDATE users SET ssn = lower($1) WHERE id = $2'), [
      '0:users.ssn = $1',
      '0:users.id = $2',
    ]);
  });

  it('ties UPDATE SET values, also in a row assignment and ON CONFLICT DO UPDATE', () => {
    assert.deepEqual(values("UPDATE users SET ssn = '123-45-6789' WHERE id = 3"), [
      "0:users.ssn = '123-45-6789' @23-36",
      '0:users.id = 3 @48-49',
    ]);
    assert.deepEqual(values("UPDATE users SET (name, ssn) = ('a', $1)"), [
      "0:users.name = 'a' @32-35",
      '0:users.ssn = $1',
    ]);
    assert.deepEqual(
      values("INSERT INTO users (id, ssn) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET ssn = 'z'"),
      ['0:users.id = $1', '0:users.ssn = $2', "0:users.ssn = 'z' @81-84"],
    );
  });

  it('ties comparisons either way round: =, <>, LIKE, IN lists, = ANY, casts, negative numbers', () => {
    assert.deepEqual(values("SELECT * FROM users WHERE ssn = '123-45-6789'"), [
      "0:users.ssn = '123-45-6789' @32-45",
    ]);
    assert.deepEqual(values("SELECT 1 FROM users WHERE '1'::text = ssn OR ssn <> $1 OR ssn LIKE '9%'"), [
      "0:users.ssn = '1' @26-29",
      '0:users.ssn = $1',
      "0:users.ssn = '9%' @67-71",
    ]);
    assert.deepEqual(values("SELECT 1 FROM users WHERE ssn IN ('a', 'b') AND ssn = ANY($1) AND id = -5"), [
      "0:users.ssn = 'a' @34-37",
      "0:users.ssn = 'b' @39-42",
      '0:users.ssn = $1',
      '0:users.id = -5 @71-73',
    ]);
  });

  it('resolves qualified and aliased columns, in ON and HAVING, like the result lineage', () => {
    const sql =
      "SELECT u.name FROM orders o JOIN users u ON u.ssn = o.ref AND u.ssn = 'k' " +
      "WHERE o.id = $1 GROUP BY u.name HAVING max(u.ssn) > 'm'";
    assert.deepEqual(values(sql), [
      "0:users.ssn = 'k' @70-73",
      '0:orders.id = $1',
      "0:users.ssn = 'm' @126-129",
    ]);
  });

  it('reports nothing it cannot tie to a column: computed values, arithmetic, bare constants', () => {
    assert.deepEqual(
      values("SELECT 1, 'x' FROM users WHERE upper($1) = 'A' AND id + 1 IS NOT NULL LIMIT 5"),
      [],
    );
    assert.deepEqual(values("SELECT * FROM users WHERE ssn = upper('x')"), []);
  });

  it('ties a value compared with a function of a column to that column (lower(ssn) = … holds the value)', () => {
    assert.deepEqual(values("SELECT 1 FROM users WHERE lower(ssn) = 'abc'"), ["0:users.ssn = 'abc' @39-44"]);
  });

  it('gives offsets of the whole text in a multi-statement string, in UTF-16 units', () => {
    const sql = "SELECT 'é😀'; UPDATE users SET ssn = 'ü9' WHERE name = 'ö'";
    assert.deepEqual(values(sql), ["1:users.ssn = 'ü9' @37-41", "1:users.name = 'ö' @55-58"]);
  });

  it('reads a constant token as the value the server stores', () => {
    assert.equal(constantValue("'O''Brien'"), "O'Brien");
    assert.equal(constantValue("E'a\\'b\\nc'"), "a'b\nc");
    assert.equal(constantValue('$x$12-3$x$'), '12-3');
    assert.equal(constantValue('- 5'), '-5');
    assert.equal(constantValue('42'), '42');
    assert.equal(constantValue("X'ff'"), null);
  });
});

describe('statement shapes', () => {
  it('finds the constants of a sibling text, and refuses a text of another shape', () => {
    const sql =
      "SELECT 1 FROM t WHERE a = 'x''y' AND b = E'\\'' AND c = $$q$$ AND d = -1.5e-3 AND e = $1 AND f = true";
    const key = normalizeSync(sql);
    const found = shapeOf(sql, key);
    assert.ok(found);
    assert.deepEqual(
      found.constants.map((c) => sql.slice(c.start, c.end)),
      ['1', "'x''y'", "E'\\''", '$$q$$', '-1.5e-3', 'true'],
    );
    const sibling =
      "SELECT 22 FROM t WHERE a = '' AND b = e'\\\\' AND c = $t$ $$ $t$ AND d = 7 AND e = $1 AND f = FALSE";
    assert.equal(normalizeSync(sibling), key);
    assert.deepEqual(
      constantsOf(sibling, found.shape)?.map((c) => sibling.slice(c.start, c.end)),
      ['22', "''", "e'\\\\'", '$t$ $$ $t$', '7', 'FALSE'],
    );
    // Same normalized key, but a parameter where the shape has a constant.
    const param = 'SELECT $2 FROM t WHERE a = $3 AND b = $4 AND c = $5 AND d = $6 AND e = $1 AND f = $7';
    assert.equal(normalizeSync(param), key);
    assert.equal(constantsOf(param, found.shape), null);
  });
});
