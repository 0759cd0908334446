import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ruleSet } from '../config/rules.js';
import { analyzePostgres, loadPostgresAnalyzer } from './analyzers/postgres.js';
import { BYPASSES, ORDINARY } from './analyzers/postgres-corpus.js';
import { type DecisionContext, decide } from './decide.js';

// The guardrails, as an operator would write them: no DROP TABLE, DELETE without WHERE
// held for review, users.ssn masked, SQL the parser cannot see into refused.
const rules = ruleSet.parse([
  { name: 'no-drop-table', when: { sql: { statements: ['drop'], objects: ['table'] } }, effect: 'deny' },
  { name: 'no-truncate', when: { sql: { statements: ['truncate'] } }, effect: 'deny' },
  {
    name: 'review-unbounded-deletes',
    when: { sql: { statements: ['delete'], where: 'absent' } },
    effect: 'review',
    review: { approvers: ['dba'] },
  },
  { name: 'ssn', when: { sql: { tables: ['users'] } }, effect: 'mask', mask: { columns: ['users.ssn'] } },
  {
    name: 'no-opaque',
    when: { sql: { opaque: true } },
    effect: 'deny',
    message: 'dynamic SQL cannot be checked here',
  },
]);
const ctx: DecisionContext = {
  connection: { name: 'orders-db', tags: ['prod'], protocol: 'postgres', default: 'allow' },
  caller: { subject: 'agent-7', groups: [], kind: 'agent', chain: ['alice'] },
};

describe('guardrails against evasion (PostgreSQL analyzer + decide)', () => {
  before(() => loadPostgresAnalyzer());

  for (const c of BYPASSES) {
    it(`never silently allows: ${c.name}`, () => {
      const d = decide(rules, ctx, analyzePostgres(c.sql));
      // A derived column needs a mask of its own (or a deny); a copy of a masked column needs a deny.
      const handled =
        c.reveals === 'derives_ssn'
          ? d.derived.length > 0 || d.action === 'deny'
          : c.reveals === 'copies_ssn'
            ? d.action === 'deny'
            : d.action !== 'allow' || d.masks.length > 0 || d.derived.length > 0;
      assert.ok(
        handled,
        `${c.sql}\n→ ${d.action} with rules [${d.rules.join(', ')}], ${d.derived.length} derived`,
      );
    });
  }

  it('allows every ordinary query, masking only where users is read', () => {
    for (const q of ORDINARY) {
      const d = decide(rules, ctx, analyzePostgres(q));
      assert.equal(d.action, 'allow', `${q} → ${d.action} by ${d.decidedBy}: ${d.message}`);
    }
  });
});
