import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED, tokenize } from './styles.js';
import { createMasker } from './values.js';

const cols = (...names: Array<[string | null, string]>) => names.map(([table, name]) => ({ table, name }));

describe('Masker', () => {
  it('masks columns matched by *.email and customers.ssn, leaving other columns alone', () => {
    const m = createMasker({ columns: ['*.email', 'customers.ssn'], detectors: [], style: 'redact' });
    const shape = cols(
      ['customers', 'email'],
      ['customers', 'ssn'],
      ['orders', 'ssn'],
      ['customers', 'name'],
    );
    assert.deepEqual(m.maskRow(shape, ['a@example.com', '123-45-6789', '123-45-6789', 'Ada']), [
      REDACTED,
      REDACTED,
      '123-45-6789',
      'Ada',
    ]);
    assert.deepEqual(m.plan(shape).masked, [true, true, false, false]);
  });

  it('matches globs case-insensitively and bare column globs against any table', () => {
    const m = createMasker({ columns: ['SSN', 'Customers.Email'], detectors: [], style: 'keep-last-4' });
    const shape = cols(['PEOPLE', 'ssn'], ['customers', 'EMAIL'], [null, 'Ssn']);
    assert.deepEqual(m.maskRow(shape, ['123-45-6789', 'ada@example.com', '987-65-4321']), [
      '***-**-6789',
      '***********.com',
      '***-**-4321',
    ]);
  });

  it('applies table-qualified rules to columns of unknown table only when the table part is a wildcard', () => {
    const m = createMasker({ columns: ['*.email', 'users.phone'], detectors: [], style: 'redact' });
    assert.deepEqual(m.maskRow(cols([null, 'email'], [null, 'phone']), ['x', 'y']), [REDACTED, 'y']);
  });

  it('matches a schema-qualified table (as the catalog names it) against patterns with or without the schema', () => {
    const m = createMasker({ columns: ['users.ssn', 'billing.cards.pan'], detectors: [], style: 'redact' });
    const shape = cols(
      ['public.users', 'ssn'],
      ['billing.cards', 'pan'],
      ['public.cards', 'pan'],
      ['x.users', 'id'],
    );
    assert.deepEqual(m.maskRow(shape, ['1', '2', '3', '4']), [REDACTED, REDACTED, '3', '4']);
  });

  it('falls back to detectors on other text values and keeps nulls', () => {
    const m = createMasker({ columns: ['*.ssn'], style: 'tokenize' }, 'k');
    const shape = cols(['t', 'ssn'], ['t', 'note'], ['t', 'other']);
    const [ssn, note, other] = m.maskRow(shape, ['123-45-6789', 'card 4111 1111 1111 1111 on file', null]);
    assert.equal(ssn, tokenize('123-45-6789', 'k'));
    assert.equal(note, `card ${tokenize('4111 1111 1111 1111', 'k')} on file`);
    assert.equal(other, null);
  });

  it('runs only the detectors the spec names', () => {
    const m = createMasker({ detectors: ['email'], style: 'redact' });
    assert.deepEqual(m.maskRow(cols(['t', 'c']), ['bob@example.com 4111111111111111']), [
      `${REDACTED} 4111111111111111`,
    ]);
    assert.throws(
      () => createMasker({ detectors: ['nope' as never], style: 'redact' }),
      /unknown detector "nope"/,
    );
  });

  it('reuses one plan per result shape', () => {
    const m = createMasker({ columns: ['*.email'], style: 'redact' });
    const shape = cols(['t', 'email']);
    assert.equal(m.plan(shape), m.plan(cols(['t', 'email'])));
    assert.notEqual(m.plan(shape), m.plan(cols(['u', 'email'])));
  });

  it('masks JSON leaves by detector and whole values under matching keys, preserving structure', () => {
    const m = createMasker({ columns: ['password', 'customers.ssn'], style: 'redact' });
    const input = {
      user: { name: 'Ada', contact: 'mail ada@example.com', password: 'hunter2', age: 36, active: true },
      customers: { ssn: 123456789, id: 7 },
      list: [{ ip: '10.0.0.1' }, null, 'plain', { password: { old: 'a', new: ['b', 1] } }],
    };
    assert.deepEqual(m.maskJson(input), {
      user: { name: 'Ada', contact: `mail ${REDACTED}`, password: REDACTED, age: 36, active: true },
      customers: { ssn: REDACTED, id: 7 },
      list: [{ ip: REDACTED }, null, 'plain', { password: { old: REDACTED, new: [REDACTED, REDACTED] } }],
    });
    assert.equal(m.maskJson(null), null);
    assert.equal(m.maskJson('ssn 123-45-6789'), `ssn ${REDACTED}`);
  });
});
