import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStreamMasker, DEFAULT_HOLD_BACK, type StreamMaskerOptions } from './stream.js';
import { REDACTED } from './styles.js';
import { createMasker, type Masker } from './values.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const PEM =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n-----END PRIVATE KEY-----';
// Long enough that the stream must emit around the secret, and free of any detector match.
const FILLER = 'the quick brown fox jumps over the lazy dog; '.repeat(5);
// Longer than the JWT below, shorter than the PEM block (which the PEM limit governs instead).
const OPTIONS: StreamMaskerOptions = { holdBack: 160 };

const masker = createMasker({ style: 'redact' });

function run(m: Masker, chunks: Buffer[], options: StreamMaskerOptions = OPTIONS): string {
  const s = createStreamMasker(m, options);
  const parts = chunks.map((c) => s.push(c));
  parts.push(s.end());
  return Buffer.concat(parts).toString('utf8');
}

function splits(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const c of cuts) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  out.push(bytes.subarray(at));
  return out;
}

function assertEverySplit(secret: string, options: StreamMaskerOptions = OPTIONS): void {
  const text = `${FILLER}${secret}\n${FILLER}`;
  const bytes = Buffer.from(text);
  const expected = masker.maskText(text);
  assert.ok(!expected.includes(secret), 'the whole-text masking hides the secret');
  for (let i = 0; i <= bytes.length; i++) {
    assert.equal(run(masker, splits(bytes, [i]), options), expected, `two chunks split at ${i}`);
  }
  const from = Buffer.byteLength(FILLER) - 2;
  const to = from + Buffer.byteLength(secret) + 4;
  for (let i = from; i <= to; i++) {
    for (let j = i; j <= to; j++) {
      assert.equal(
        run(masker, splits(bytes, [i, j]), options),
        expected,
        `three chunks split at ${i} and ${j}`,
      );
    }
  }
}

describe('stream masker', () => {
  it('emits text that cannot be part of a match before the stream ends', () => {
    const s = createStreamMasker(masker, OPTIONS);
    const first = s.push(Buffer.from(FILLER.repeat(3)));
    assert.ok(first.length > 0);
    assert.equal(Buffer.concat([first, s.end()]).toString(), FILLER.repeat(3));
  });

  it('masks a card number split across two and three chunks at every position', () => {
    assertEverySplit('4111 1111 1111 1111');
  });

  it('masks an email split across two and three chunks at every position', () => {
    assertEverySplit('alice.smith@example.com');
  });

  it('masks a JWT split across two and three chunks at every position', () => {
    assertEverySplit(JWT);
  });

  it('masks a PEM block longer than the hold-back split across two and three chunks at every position', () => {
    const options = { holdBack: 64 };
    assert.ok(PEM.length > options.holdBack);
    assertEverySplit(PEM, options);
  });

  it('keeps UTF-8 characters intact when their bytes are split across chunks', () => {
    const text = `${FILLER}café €5 😀 bob@example.com ✓ ${FILLER}naïve 😀`;
    const bytes = Buffer.from(text);
    const expected = masker.maskText(text);
    assert.ok(expected.includes(`😀 ${REDACTED} ✓`));
    for (let i = 0; i <= bytes.length; i++) {
      const out = run(masker, splits(bytes, [i]));
      assert.equal(out, expected, `split at byte ${i}`);
    }
    const oneByteAtATime = run(
      masker,
      Array.from(bytes, (b) => Buffer.from([b])),
    );
    assert.equal(oneByteAtATime, expected);
    assert.ok(!oneByteAtATime.includes('\uFFFD'));
  });

  it('fails closed on a PEM block longer than the limit and resumes after its END line', () => {
    const body = 'QUJD'.repeat(200);
    const text = `before\n-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\nafter ${FILLER}`;
    const bytes = Buffer.from(text);
    for (const size of [1, 7, 64, 1000]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
      const out = run(masker, chunks, { holdBack: 32, pemLimit: 256 });
      assert.equal(out, `before\n${REDACTED}\nafter ${FILLER}`, `chunk size ${size}`);
    }
  });

  it('masks a PEM block the stream cuts off before its END line', () => {
    const out = run(masker, [Buffer.from(`${FILLER}-----BEGIN PRIVATE KEY-----\nMC4CAQAw`)]);
    assert.equal(out, `${FILLER}${REDACTED}`);
  });

  it('keeps memory bounded: 10 MB without a match never holds more than the hold-back plus slack', () => {
    const s = createStreamMasker(masker);
    const chunk = Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit\n'.repeat(1170));
    let pushed = 0;
    let emitted = 0;
    let maxHeld = 0;
    while (pushed < 10 * 1024 * 1024) {
      emitted += s.push(chunk).length;
      pushed += chunk.length;
      maxHeld = Math.max(maxHeld, s.held);
    }
    emitted += s.end().length;
    assert.equal(emitted, pushed);
    assert.ok(maxHeld <= DEFAULT_HOLD_BACK + 1024, `held ${maxHeld}`);
    assert.ok(maxHeld <= s.maxHeld);
    assert.equal(s.held, 0);
  });

  it('flushes a paused stream (a prompt waiting for input) masked, and keeps masking afterwards', () => {
    const s = createStreamMasker(masker);
    const first = s.push(Buffer.from('export KEY=AKIAIOSFODNN7EXAMPLE\nuser@host:~$ '));
    assert.equal(first.length, 0, 'a short chunk is held back');
    assert.equal(s.flush().toString(), `export KEY=${REDACTED}\nuser@host:~$ `);
    assert.equal(s.held, 0);
    const next = Buffer.concat([s.push(Buffer.from('mail ann@example.com done')), s.end()]).toString();
    assert.equal(next, `mail ${REDACTED} done`);
  });

  it('keeps an open private-key block held through a flush, and masks it once it ends', () => {
    const s = createStreamMasker(masker, OPTIONS);
    const cut = PEM.indexOf('\n') + 10;
    const out = [s.push(Buffer.from(`key:\n${PEM.slice(0, cut)}`)), s.flush()];
    assert.equal(Buffer.concat(out).toString(), 'key:\n');
    out.push(s.push(Buffer.from(`${PEM.slice(cut)}\n$ `)), s.flush());
    assert.equal(Buffer.concat(out).toString(), `key:\n${REDACTED}\n$ `);
  });
});
