import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { chaskeyHex, chaskeyKey } from '../../crypto/chaskey.js';
import { keepLast, MaskSpecError, REDACTED, replacerFor, tokenize, tokenizer } from './styles.js';

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

  it('keeps tokens stable across releases: Chaskey-12 of the UTF-8 bytes under the derived key', () => {
    // Pinned: a changed derivation would silently break joins between old and new masked exports.
    assert.equal(tokenize('alice@example.com', 'key-1'), 'tok_55b75e1400b367fd');
    assert.equal(tokenize('naïve café ☕', 'key-1'), 'tok_e5e99aaeab5cc9e4');
    const derived = chaskeyKey(
      createHmac('sha256', 'key-1').update('warden tokenize: chaskey-12 key v2').digest().subarray(0, 16),
    );
    // A value too long for the shared scratch buffer takes its own, with the same result.
    const long = 'é'.repeat(3000);
    assert.equal(tokenize(long, 'key-1'), `tok_${chaskeyHex(derived, Buffer.from(long, 'utf8'))}`);
    const t = tokenizer('key-1');
    assert.equal(t('alice@example.com'), 'tok_55b75e1400b367fd');
    assert.equal(t(''), `tok_${chaskeyHex(derived, new Uint8Array(0))}`);
    // In place from bytes: the same token as from the text, only for ASCII (else the caller decodes).
    const row = Buffer.from('xx alice@example.com yy');
    assert.equal(t.fromBytes?.(row, 3, 20), 'tok_55b75e1400b367fd');
    assert.equal(t.fromBytes?.(Buffer.from('naïve café ☕'), 0, 16), undefined);
    // Written as bytes: the same token, exactly `size` bytes; non-ASCII is not accepted (as fromBytes).
    const into = t.fromBytesInto!;
    const dst = Buffer.alloc(into.size + 4, '.');
    assert.equal(into.accepts(row, 3, 20), true);
    into.write(row, 3, 20, dst, 2);
    assert.equal(dst.toString(), `..tok_55b75e1400b367fd..`);
    assert.equal(into.accepts(Buffer.from('naïve café ☕'), 0, 16), false);
    // A non-ASCII byte among the last 1–3 bytes, after the whole 4-byte steps, is seen too.
    for (const v of ['abcdé', 'abcdefgé', 'é']) {
      assert.equal(into.accepts(Buffer.from(v), 0, Buffer.byteLength(v)), false, v);
      assert.equal(t.fromBytes?.(Buffer.from(v), 0, Buffer.byteLength(v)), undefined, v);
    }
    for (const v of ['', 'a', '12345678', 'user42@example.com', 'x'.repeat(100)]) {
      assert.equal(into.accepts(Buffer.from(v), 0, v.length), true);
      into.write(Buffer.from(v), 0, v.length, dst, 0);
      assert.equal(dst.toString('latin1', 0, into.size), t(v), v);
    }
  });

  it('refuses tokenize without a key and nonsensical keepLast counts', () => {
    assert.throws(() => replacerFor('tokenize'), MaskSpecError);
    assert.throws(() => replacerFor('tokenize', ''), /non-empty tokenization key/);
    assert.throws(() => replacerFor({ keepLast: -1 }), /non-negative integer/);
  });
});
