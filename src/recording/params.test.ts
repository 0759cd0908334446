import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ruleSet } from '../config/rules.js';
import { analyzePostgres, loadPostgresAnalyzer } from '../policy/analyzers/postgres.js';
import { type DecisionContext, decide } from '../policy/decide.js';
import { MaskSet } from '../policy/mask/mask-set.js';
import { REDACTED, tokenize } from '../policy/mask/styles.js';
import { maskLiterals, maskParams, maskStatementText } from './params.js';

const KEY = Buffer.from('test-tokenize-key');
const ctx: DecisionContext = {
  connection: { name: 'app-db', tags: [], protocol: 'postgres', default: 'allow' },
  caller: { subject: 'alice', groups: [], kind: 'human', chain: [] },
};

function under(rules: unknown[], sql: string) {
  const facts = analyzePostgres(sql);
  const decision = decide(ruleSet.parse(rules), ctx, facts);
  return { decision, facts, set: new MaskSet(decision.masks, KEY) };
}

const redactSsn = [{ name: 'pii', effect: 'mask', mask: { columns: ['users.ssn'] } }];
const tokenizeSsn = [{ name: 'pii', effect: 'mask', mask: { columns: ['users.ssn'], style: 'tokenize' } }];

describe('recorded parameters and statement text under column masks', () => {
  before(loadPostgresAnalyzer);

  it('keeps a parameter no masked column is tied to', () => {
    const { decision, set } = under(redactSsn, 'SELECT * FROM orders WHERE id = $1');
    assert.deepEqual(maskParams(['42', null], decision, set), ['42', null]);
  });

  it('masks only the parameter written to or compared with the masked column, in its style', () => {
    const ins = under(redactSsn, 'INSERT INTO users (name, ssn) VALUES ($1, $2)');
    assert.deepEqual(maskParams(['bob', '123-45-6789'], ins.decision, ins.set), ['bob', REDACTED]);
    const where = under(tokenizeSsn, 'SELECT name FROM users WHERE id = $1 OR ssn = ANY($2)');
    assert.deepEqual(maskParams(['7', '{123-45-6789}'], where.decision, where.set), [
      '7',
      tokenize('{123-45-6789}', KEY),
    ]);
  });

  it('gives a tokenized parameter the token its value gets in results', () => {
    const { decision, set } = under(tokenizeSsn, 'UPDATE users SET ssn = $1 WHERE id = $2');
    const [param] = maskParams(['123-45-6789', '3'], decision, set);
    const [row] = [set.plan([{ table: 'users', name: 'ssn' }]).mask(['123-45-6789'])];
    assert.equal(param, row?.[0]);
  });

  it('redacts every parameter where the analyzer cannot tie them to columns (fail closed)', () => {
    for (const sql of ['EXECUTE p($1, $2)', 'CALL keep($1, $2)', 'SELECT * FROM users WHERE']) {
      const { decision, set } = under(redactSsn, sql);
      assert.deepEqual(maskParams(['a', null], decision, set), [REDACTED, null], sql);
    }
  });

  it('still runs detectors on parameters no column is tied to', () => {
    const rules = [
      { name: 'pii', effect: 'mask', mask: { columns: ['users.ssn'] } },
      { name: 'scan', effect: 'mask', mask: { detectors: ['email'] } },
    ];
    const { decision, set } = under(rules, 'SELECT * FROM orders WHERE note = $1');
    assert.deepEqual(maskParams(['mail bob@example.com'], decision, set), [
      set.maskText('mail bob@example.com'),
    ]);
    assert.notEqual(set.maskText('mail bob@example.com'), 'mail bob@example.com');
  });

  it('replaces literals of masked columns in INSERT, UPDATE and WHERE with quoted masked values', () => {
    const cases: Array<[string, string]> = [
      [
        "INSERT INTO users (name, ssn) VALUES ('bob', '123-45-6789')",
        `INSERT INTO users (name, ssn) VALUES ('bob', '${REDACTED}')`,
      ],
      [
        "UPDATE users SET ssn = '123-45-6789' WHERE id = 3",
        `UPDATE users SET ssn = '${REDACTED}' WHERE id = 3`,
      ],
      [
        "SELECT * FROM users u WHERE u.ssn IN ('123-45-6789', E'98\\'7'::text)",
        `SELECT * FROM users u WHERE u.ssn IN ('${REDACTED}', '${REDACTED}'::text)`,
      ],
    ];
    for (const [sql, want] of cases) {
      const { decision, set, facts } = under(redactSsn, sql);
      assert.equal(maskStatementText(sql, decision, set, facts), want);
    }
  });

  it('tokenizes a literal to the token of its value, quotes doubled, and leaves texts without one alone', () => {
    const sql = "SELECT 1; UPDATE users SET ssn = 'O''Hara' WHERE name = 'x'";
    const { decision, set, facts } = under(tokenizeSsn, sql);
    assert.equal(
      maskLiterals(sql, decision, set, facts),
      `SELECT 1; UPDATE users SET ssn = '${tokenize("O'Hara", KEY)}' WHERE name = 'x'`,
    );
    const plain = "SELECT * FROM orders WHERE note = 'x'";
    const other = under(tokenizeSsn, plain);
    assert.equal(maskLiterals(plain, other.decision, other.set, other.facts), plain);
  });

  it('shares facts between texts that differ only in constants and masks the constants of each', () => {
    const rules = ruleSet.parse(redactSsn);
    const first = "UPDATE users SET ssn = '111-11-1111' WHERE id = 3";
    const second = "UPDATE users SET ssn = '222-22-22222222' WHERE id = 44";
    const facts = analyzePostgres(first);
    assert.equal(analyzePostgres(second), facts, 'one facts object (and so one cached decision) for both');
    const decision = decide(rules, ctx, facts);
    const set = new MaskSet(decision.masks, KEY);
    assert.equal(
      maskStatementText(first, decision, set, facts),
      `UPDATE users SET ssn = '${REDACTED}' WHERE id = 3`,
    );
    assert.equal(
      maskStatementText(second, decision, set, facts),
      `UPDATE users SET ssn = '${REDACTED}' WHERE id = 44`,
    );
  });
});
