import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keepLast, MaskSpecError, REDACTED, replacerFor, tokenize } from './styles.js';

describe('mask styles', () => {
  it('redacts to a fixed marker that does not reveal the length', () => {
    const r = replacerFor('redact');
    assert.equal(r('123-45-6789'), REDACTED);
    assert.equal(r('x'), REDACTED);
  });

  it('keep-last-4 keeps the last four characters and the separators of cards and SSNs', () => {
    const r = replacerFor('keep-last-4');
    assert.equal(r('4111 1111 1111 1111'), '**** **** **** 1111');
    assert.equal(r('4111-1111-1111-1111'), '****-****-****-1111');
    assert.equal(r('123-45-6789'), '***-**-6789');
    assert.equal(r('4111111111111111'), '************1111');
  });

  it('keepLast masks a value entirely when it is no longer than what would be kept', () => {
    assert.equal(keepLast('1234', 4), '****');
    assert.equal(replacerFor({ keepLast: 2 })('abcdef'), '****ef');
    assert.equal(keepLast('naïve café', 3), '***** *afé');
  });

  it('tokenizes deterministically: equal values join, different values or keys differ', () => {
    const a = tokenize('alice@example.com', 'key-1');
    assert.match(a, /^tok_[0-9a-f]{16}$/);
    assert.equal(tokenize('alice@example.com', 'key-1'), a);
    assert.notEqual(tokenize('bob@example.com', 'key-1'), a);
    assert.notEqual(tokenize('alice@example.com', 'key-2'), a);
    assert.equal(replacerFor('tokenize', Buffer.from('key-1'))('alice@example.com'), a);
    assert.ok(!a.includes('alice'));
  });

  it('refuses tokenize without a key and nonsensical keepLast counts', () => {
    assert.throws(() => replacerFor('tokenize'), MaskSpecError);
    assert.throws(() => replacerFor('tokenize', ''), /non-empty tokenization key/);
    assert.throws(() => replacerFor({ keepLast: -1 }), /non-negative integer/);
  });
});
