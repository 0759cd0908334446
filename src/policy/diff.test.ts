import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ruleSet } from '../config/rules.js';
import { diffRules, diffSummary, isEmptyDiff } from './diff.js';

const rules = (raw: unknown[]) => ruleSet.parse(raw);

describe('diffRules', () => {
  const before = rules([
    { name: 'a', effect: 'deny', message: 'no' },
    { name: 'b', effect: 'allow' },
    { name: 'c', effect: 'limit', limit: { rows: 10 } },
  ]);

  it('names added, removed and changed rules, and which fields changed', () => {
    const after = rules([
      { name: 'a', effect: 'deny', message: 'not here' },
      { name: 'c', effect: 'limit', limit: { rows: 10 }, match: { tags: ['prod'] } },
      { name: 'd', effect: 'allow' },
    ]);
    const d = diffRules(before, after);
    assert.deepEqual(
      [d.added.map((r) => r.name), d.removed.map((r) => r.name), d.changed.map((c) => [c.name, c.fields])],
      [
        ['d'],
        ['b'],
        [
          ['a', ['message']],
          ['c', ['match']],
        ],
      ],
    );
    assert.equal(d.reordered, false);
    assert.equal(diffSummary(d), '+1 -1 ~2');
  });

  it('sees equal durations written differently as no change, and a different effect as one', () => {
    const h = (hold: unknown) =>
      rules([{ name: 'r', effect: 'review', review: { approvers: ['dba'], hold } }]);
    assert.ok(isEmptyDiff(diffRules(h('5m'), h(300))));
    assert.deepEqual(diffRules(h('5m'), rules([{ name: 'r', effect: 'allow' }])).changed[0]?.fields, [
      'effect',
      'review',
    ]);
  });

  it('reports a new order as a change (the first deny of a kind names the decision)', () => {
    const d = diffRules(before, [before[2]!, before[0]!, before[1]!]);
    assert.deepEqual([d.reordered, isEmptyDiff(d), diffSummary(d)], [true, false, '+0 -0 ~0 reordered']);
    assert.ok(isEmptyDiff(diffRules(before, rules(before.map((r) => ({ ...r }))))));
  });
});
