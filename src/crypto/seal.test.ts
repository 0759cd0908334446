import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  beginFileRotation,
  finishFileRotation,
  generateSealKeyText,
  Keyring,
  SealError,
  sealKeySource,
} from './seal.js';
import { loadSigningKey, signDetached, verifyDetached } from './signing.js';

const dir = () => mkdtempSync(join(tmpdir(), 'warden-seal-'));

describe('secret sealing', () => {
  it('generates a 0600 key file on first use and round-trips a secret', () => {
    const path = join(dir(), 'seal.key');
    const ring = new Keyring({ kind: 'file', path, generate: true });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const sealed = ring.seal('s3cr3t-pass', 'connection:1');
    assert.ok(!sealed.includes('s3cr3t'));
    assert.match(sealed, new RegExp(`^v1\\.${ring.currentId}\\.`));
    assert.equal(ring.open(sealed, 'connection:1'), 's3cr3t-pass');
    // A new nonce every time: equal secrets do not give equal ciphertexts.
    assert.notEqual(ring.seal('s3cr3t-pass', 'connection:1'), sealed);
  });

  it('binds a sealed value to its owner and detects tampering', () => {
    const ring = new Keyring({ kind: 'file', path: join(dir(), 'seal.key'), generate: true });
    const sealed = ring.seal('pw', 'connection:a');
    assert.throws(() => ring.open(sealed, 'connection:b'), SealError);
    const raw = Buffer.from(sealed.split('.')[2]!, 'base64url');
    raw[14] = (raw[14] ?? 0) ^ 1;
    assert.throws(
      () => ring.open(`v1.${ring.currentId}.${raw.toString('base64url')}`, 'connection:a'),
      /failed authentication/,
    );
  });

  it('cannot open a value sealed under another key', () => {
    const a = new Keyring({ kind: 'file', path: join(dir(), 'seal.key'), generate: true });
    const b = new Keyring({ kind: 'file', path: join(dir(), 'seal.key'), generate: true });
    assert.throws(() => b.open(a.seal('pw', 'c'), 'c'), /unknown key/);
  });

  it('takes the key from WARDEN_SEAL_KEY before any file, with previous keys for rotation', () => {
    const k1 = generateSealKeyText().trim();
    const k2 = generateSealKeyText().trim();
    const src = sealKeySource({
      env: { WARDEN_SEAL_KEY: k1 },
      configuredFile: '/nonexistent',
      defaultFile: '/nope',
    });
    assert.equal(src.kind, 'env');
    const old = new Keyring(src);
    const sealed = old.seal('pw', 'c');
    const rotated = new Keyring(
      sealKeySource({
        env: { WARDEN_SEAL_KEY: k2, WARDEN_SEAL_KEY_PREVIOUS: k1 },
        configuredFile: undefined,
        defaultFile: '',
      }),
    );
    assert.equal(rotated.open(sealed, 'c'), 'pw');
    assert.notEqual(rotated.currentId, old.currentId);
    assert.throws(
      () => new Keyring({ kind: 'env', current: 'too-short', previous: [] }),
      /WARDEN_SEAL_KEY: expected a 32-byte key/,
    );
  });

  it('refuses a key file other users can read, and a configured file that is missing', () => {
    const path = join(dir(), 'seal.key');
    writeFileSync(path, generateSealKeyText());
    chmodSync(path, 0o644);
    assert.throws(() => new Keyring({ kind: 'file', path, generate: false }), /readable by group or others/);
    assert.throws(
      () => new Keyring({ kind: 'file', path: `${path}.missing`, generate: false }),
      /does not exist/,
    );
  });

  it('rotates a key file: seals under .next during the rotation, keeps .old after it', () => {
    const path = join(dir(), 'seal.key');
    const ring = new Keyring({ kind: 'file', path, generate: true });
    const before = ring.seal('pw', 'c');
    const oldId = ring.currentId;
    beginFileRotation(path);
    ring.reload();
    assert.notEqual(ring.currentId, oldId, 'a pending rotation seals under the new key');
    const during = ring.seal('pw2', 'c');
    finishFileRotation(path);
    assert.ok(!existsSync(`${path}.next`));
    assert.equal(statSync(`${path}.old`).mode & 0o777, 0o600);
    const fresh = new Keyring({ kind: 'file', path, generate: false });
    assert.equal(fresh.currentId, ring.currentId);
    assert.equal(fresh.open(before, 'c'), 'pw', 'the previous key still opens what it sealed');
    assert.equal(fresh.open(during, 'c'), 'pw2');
    assert.notEqual(readFileSync(path, 'utf8'), readFileSync(`${path}.old`, 'utf8'));
  });
});

describe('signing key', () => {
  it('generates a 0600 Ed25519 key, reloads the same key id, and signs detached messages', async () => {
    const path = join(dir(), 'signing.key');
    const key = await loadSigningKey(path, true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal((await loadSigningKey(path, false)).kid, key.kid);
    assert.equal(key.publicJwk.crv, 'Ed25519');
    assert.equal(key.publicJwk.d, undefined, 'the published JWK has no private part');
    const sig = signDetached(key, 'message');
    assert.ok(verifyDetached(key.publicKey, 'message', sig));
    assert.ok(!verifyDetached(key.publicKey, 'messagE', sig));
    assert.ok(!verifyDetached(key.publicKey, 'message', 'garbage'));
  });
});
