import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type DetectorName,
  detect,
  findBearerTokens,
  findCards,
  findCloudKeys,
  findEmails,
  findIbans,
  findIpv4,
  findIpv6,
  findJwts,
  findPemBlocks,
  findPhones,
  findSsns,
  type Span,
} from './detectors.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END RSA PRIVATE KEY-----';

function found(fn: (t: string) => Span[], text: string): string[] {
  return fn(text).map((s) => text.slice(s.start, s.end));
}

function assertFinds(fn: (t: string) => Span[], value: string): void {
  assert.deepEqual(found(fn, `before ${value} after`), [value], `should find ${JSON.stringify(value)}`);
}

function assertIgnores(fn: (t: string) => Span[], text: string): void {
  assert.deepEqual(found(fn, `before ${text} after`), [], `should not match ${JSON.stringify(text)}`);
}

describe('mask detectors', () => {
  it('finds email addresses and ignores incomplete ones', () => {
    for (const v of ['alice@example.com', 'alice.smith+tag@mail.example.co.uk', 'o_brien@ex-ample.io']) {
      assertFinds(findEmails, v);
    }
    for (const t of ['alice@', '@example.com', 'alice@localhost', 'a@b.c']) assertIgnores(findEmails, t);
  });

  it('finds E.164 and national phone numbers but not ids, timestamps or dates', () => {
    for (const v of [
      '+14155552671',
      '+44 20 7946 0958',
      '(415) 555-2671',
      '415-555-2671',
      '415.555.2671',
      '020 7946 0958',
    ]) {
      assertFinds(findPhones, v);
    }
    for (const t of [
      '1700000000',
      '4155552671',
      '12345678901234',
      'id=98765432101',
      '2024-01-15',
      '123-45-6789',
      '+12',
    ]) {
      assertIgnores(findPhones, t);
    }
  });

  it('finds Luhn-valid card numbers with or without separators, and rejects non-Luhn numbers', () => {
    for (const v of [
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '4111111111111111',
      '378282246310005',
      '5555555555554444',
    ]) {
      assertFinds(findCards, v);
    }
    for (const t of ['4111111111111112', '4111 1111 1111 1112', '1234567890', '41111111111111111111111']) {
      assertIgnores(findCards, t);
    }
  });

  it('finds IBANs whose country length and mod-97 checksum hold', () => {
    for (const v of [
      'GB82 WEST 1234 5698 7654 32',
      'DE89370400440532013000',
      'FR1420041010050500013M02606',
    ]) {
      assertFinds(findIbans, v);
    }
    for (const t of [
      'GB82 WEST 1234 5698 7654 33',
      'DE89370400440532013001',
      'ZZ89370400440532013000',
      'DE8937040044053201300',
    ]) {
      assertIgnores(findIbans, t);
    }
  });

  it('finds US SSNs and skips invalid areas, groups and serials', () => {
    for (const v of ['123-45-6789', '078-05-1121']) assertFinds(findSsns, v);
    for (const t of [
      '000-12-3456',
      '666-12-3456',
      '912-34-5678',
      '123-00-4567',
      '123-45-0000',
      '123456789',
      '1123-45-6789',
    ]) {
      assertIgnores(findSsns, t);
    }
  });

  it('finds IPv4 addresses with valid octets only', () => {
    for (const v of ['192.168.1.10', '10.0.0.1', '255.255.255.255', '0.0.0.0']) assertFinds(findIpv4, v);
    assert.deepEqual(found(findIpv4, 'host 10.0.0.1.'), ['10.0.0.1']);
    for (const t of ['999.1.1.1', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', 'v1.2.3.4x'])
      assertIgnores(findIpv4, t);
  });

  it('finds IPv6 addresses including compressed and IPv4-mapped forms', () => {
    for (const v of [
      '2001:db8::1',
      '::1',
      'fe80::1ff:fe23:4567:890a',
      '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
      '::ffff:192.0.2.128',
    ]) {
      assertFinds(findIpv6, v);
    }
    for (const t of ['12:30:45', 'std::vector', 'a:b', '00:1a:2b:3c:4d:5e', '1::2::3'])
      assertIgnores(findIpv6, t);
  });

  it('finds JWTs only when the header decodes to JSON with alg', () => {
    assertFinds(findJwts, JWT);
    const noAlg = `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.eyJzdWIiOiIxIn0.sig`;
    for (const t of ['www.example.com', 'foo.bar.baz', 'aGVsbG8gd29ybGQ.d29ybGQ.eA', noAlg])
      assertIgnores(findJwts, t);
  });

  it('finds AWS, GCP, GitHub and Slack keys', () => {
    for (const v of [
      'AKIAIOSFODNN7EXAMPLE',
      'ASIAY34FZKBOKMUTVV7A',
      `AIza${'SyA1234567890abcdefghijklmnopqrstuv'}`,
      `ghp_${'a'.repeat(36)}`,
      `ghs_${'Z9'.repeat(18)}`,
      'xoxb-123456789012-abcdefghijkl',
    ]) {
      assertFinds(findCloudKeys, v);
    }
    for (const t of ['AKIA1234', 'AKIAIOSFODNN7EXAMPLE1', 'ghp_short', 'xoxb-1'])
      assertIgnores(findCloudKeys, t);
  });

  it('finds whole PEM private key blocks but not public keys or unterminated blocks', () => {
    assertFinds(findPemBlocks, PEM);
    assertFinds(findPemBlocks, '-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----');
    assertIgnores(findPemBlocks, '-----BEGIN PUBLIC KEY-----\nMCowBQ\n-----END PUBLIC KEY-----');
    assertIgnores(findPemBlocks, '-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n');
  });

  it('finds the token part of bearer credentials and leaves the scheme readable', () => {
    assert.deepEqual(found(findBearerTokens, 'Authorization: Bearer abc.DEF-123_x=='), ['abc.DEF-123_x==']);
    assert.deepEqual(found(findBearerTokens, 'authorization: bearer tok/en+1'), ['tok/en+1']);
    assert.deepEqual(found(findBearerTokens, 'the Bearers of news'), []);
  });

  it('resolves overlaps by priority so a secret is reported once, under its most specific detector', () => {
    const text = `jwt=${JWT} key=${PEM} card 4111 1111 1111 1111 mail bob@example.com`;
    const kinds = detect(text).map((s): DetectorName => s.detector);
    assert.deepEqual(kinds, ['jwt', 'pem', 'card', 'email']);
    assert.deepEqual(
      detect('Authorization: Bearer AKIAIOSFODNN7EXAMPLE').map((s) => s.detector),
      ['bearer'],
    );
    assert.deepEqual(detect('ip 10.0.0.1 mail bob@example.com', ['ipv4']).length, 1);
  });
});
