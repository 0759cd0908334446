import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ruleSet } from '../../config/rules.js';
import { type MaskRuleSpec, MaskSet, maskSpecOf } from './mask-set.js';
import { REDACTED } from './styles.js';

const masksOf = (raw: unknown[]): MaskRuleSpec[] =>
  ruleSet.parse(raw).flatMap((r) => (r.effect === 'mask' ? [r.mask] : []));

const KEY = Buffer.alloc(32, 7);

describe('MaskSet: every mask of a decision at once', () => {
  const masks = masksOf([
    { name: 'ssn', effect: 'mask', mask: { columns: ['users.ssn'], style: 'redact' } },
    { name: 'contact', effect: 'mask', mask: { columns: ['*.email', 'users.ssn'], style: 'tokenize' } },
    { name: 'cards', effect: 'mask', mask: { detectors: ['card'], style: { keep_last: 4 } } },
  ]);
  const set = new MaskSet(masks, KEY);
  const columns = [
    { table: 'users', name: 'ssn' },
    { table: 'users', name: 'email' },
    { table: 'users', name: 'note' },
  ];

  it('gives a column masked by several rules the first rule’s style, and scans the rest', () => {
    const plan = set.plan(columns);
    assert.deepEqual(plan.masked, [true, true, false]);
    const [ssn, email, note] = plan.mask([
      '078-05-1120',
      'ann@example.com',
      'card 4111 1111 1111 1111, ann@example.com',
    ]);
    assert.equal(ssn, REDACTED);
    assert.match(email ?? '', /^tok_[0-9a-f]{16}$/);
    // Only the rule naming the card detector scans free text; the column rules leave it alone.
    assert.equal(note, 'card **** **** **** 1111, ann@example.com');
    assert.deepEqual(plan.mask([null, null, null]), [null, null, null]);
  });

  it('masks derived fields whole in their rule’s style, by position, next to metadata columns', () => {
    const plan = set.plan([{ table: null, name: 'upper' }, ...columns], [{ field: 0, style: 'tokenize' }]);
    assert.deepEqual(plan.masked, [true, true, true, false]);
    const [derived] = plan.mask(['078-05-1120', null, null, 'x']);
    assert.match(derived ?? '', /^tok_[0-9a-f]{16}$/);
    const keep = set.plan([{ table: null, name: 'upper' }], [{ field: 0, style: { keep_last: 2 } }]);
    assert.deepEqual(keep.mask(['ABCDEF']), ['****EF']);
  });

  it('makes equal tokens for equal values and different ones under another key', () => {
    const again = new MaskSet(masks, KEY).plan(columns).mask([null, 'ann@example.com', null])[1];
    assert.equal(set.plan(columns).mask([null, 'ann@example.com', null])[1], again);
    const other = new MaskSet(masks, Buffer.alloc(32, 8))
      .plan(columns)
      .mask([null, 'ann@example.com', null])[1];
    assert.notEqual(other, again);
  });

  it('refuses a tokenize rule without the deployment’s key', () => {
    assert.throws(() => new MaskSet(masks), /tokenize.*needs a non-empty tokenization key/);
  });

  it('scans with every detector when a rule names neither columns nor detectors', () => {
    assert.deepEqual(maskSpecOf({ style: 'redact' }).detectors, undefined);
    assert.deepEqual(maskSpecOf({ columns: ['a'], style: 'redact' }).detectors, []);
    const all = new MaskSet(masksOf([{ name: 'all', effect: 'mask', mask: {} }]));
    assert.equal(
      all.maskText('key AKIAIOSFODNN7EXAMPLE by ann@example.com'),
      `key ${REDACTED} by ${REDACTED}`,
    );
    assert.deepEqual(all.maskJson({ user: { email: 'ann@example.com', n: 1 } }), {
      user: { email: REDACTED, n: 1 },
    });
  });

  it('rejects an unknown detector name in a rule, listing the known ones', () => {
    const res = ruleSet.safeParse([{ name: 'x', effect: 'mask', mask: { detectors: ['creditcard'] } }]);
    assert.ok(!res.success);
    assert.match(JSON.stringify(res.error.issues), /"card"/);
  });
});
