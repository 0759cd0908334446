// Sealing of target credentials with AES-256-GCM under a key that never enters the store.
// Sealed values name their key, so a keyring of current + previous keys survives rotation.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { isExposed, writeSecretFile } from './secret-file.js';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SealError extends Error {
  override name = 'SealError';
}

interface SealKey {
  id: string;
  key: Buffer;
}

function keyId(key: Buffer): string {
  return createHash('sha256').update('warden-seal-key').update(key).digest('hex').slice(0, 12);
}

/** Accepts base64 (standard or url) or hex encodings of exactly 32 bytes. */
export function decodeSealKey(text: string, origin: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new SealError(
      `${origin}: expected a 32-byte key encoded as base64 or hex, got ${key.length} bytes`,
    );
  }
  return key;
}

export function generateSealKeyText(): string {
  return `${randomBytes(KEY_BYTES).toString('base64')}\n`;
}

/** Where the sealing key comes from: the environment, or a key file (configured or generated). */
export type SealKeySource =
  | { kind: 'env'; current: string; previous: string[] }
  | { kind: 'file'; path: string; generate: boolean };

export function sealKeySource(opts: {
  env: NodeJS.ProcessEnv;
  configuredFile: string | undefined;
  defaultFile: string;
}): SealKeySource {
  const fromEnv = opts.env.WARDEN_SEAL_KEY;
  if (fromEnv) {
    const previous = (opts.env.WARDEN_SEAL_KEY_PREVIOUS ?? '').split(',').filter((s) => s.trim() !== '');
    return { kind: 'env', current: fromEnv, previous };
  }
  if (opts.configuredFile) return { kind: 'file', path: opts.configuredFile, generate: false };
  return { kind: 'file', path: opts.defaultFile, generate: true };
}

/**
 * The current key seals; every key in the ring can open. For a key file, `<file>.next`
 * (a rotation in progress) and `<file>.old` (the key before the last rotation) are read too.
 */
export class Keyring {
  private keys: SealKey[] = [];
  private currentKey!: SealKey;
  private fingerprint = '';

  constructor(readonly source: SealKeySource) {
    this.load();
  }

  get currentId(): string {
    return this.currentKey.id;
  }

  /** Whether a key with this id is in the ring (it can open what was sealed under it). */
  has(id: string): boolean {
    return this.keys.some((k) => k.id === id);
  }

  private load(): void {
    const src = this.source;
    if (src.kind === 'env') {
      const current = decodeSealKey(src.current, 'WARDEN_SEAL_KEY');
      const previous = src.previous.map((p, i) => decodeSealKey(p, `WARDEN_SEAL_KEY_PREVIOUS[${i}]`));
      this.currentKey = { id: keyId(current), key: current };
      this.keys = [this.currentKey, ...previous.map((key) => ({ id: keyId(key), key }))];
      return;
    }
    if (!existsSync(src.path)) {
      if (!src.generate) throw new SealError(`${src.path}: seal key file does not exist`);
      writeSecretFile(src.path, generateSealKeyText());
    }
    if (isExposed(src.path)) {
      throw new SealError(`${src.path}: seal key file is readable by group or others; run chmod 600 on it`);
    }
    // A pending rotation (.next) seals under the new key; the file key and .old still open.
    const ring: SealKey[] = [];
    for (const path of [`${src.path}.next`, src.path, `${src.path}.old`]) {
      if (path !== src.path && !existsSync(path)) continue;
      const key = decodeSealKey(readFileSync(path, 'utf8'), path);
      ring.push({ id: keyId(key), key });
    }
    this.keys = ring;
    this.currentKey = ring[0]!;
    this.fingerprint = this.fileFingerprint();
  }

  /** Re-read the key files: another process may have rotated the key. */
  reload(): void {
    this.load();
  }

  private fileFingerprint(): string {
    if (this.source.kind !== 'file') return '';
    const path = this.source.path;
    return [path, `${path}.next`, `${path}.old`]
      .map((p) => {
        try {
          const st = statSync(p);
          return `${st.mtimeMs}:${st.size}`;
        } catch {
          return '-';
        }
      })
      .join('|');
  }

  /**
   * Sealing is rare (a credential being set), so every seal first checks whether
   * `warden keys rotate-seal` changed the key files: a long-running gateway never seals under
   * a key that a rotation has already retired.
   */
  private refreshIfRotated(): void {
    if (this.source.kind === 'file' && this.fileFingerprint() !== this.fingerprint) this.load();
  }

  /** `context` is bound into the ciphertext (GCM additional data): a sealed value only opens for its owner. */
  seal(plaintext: string, context: string): string {
    this.refreshIfRotated();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.currentKey.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const blob = Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    return `${VERSION}.${this.currentKey.id}.${blob}`;
  }

  open(sealed: string, context: string): string {
    const [version, id, blob] = sealed.split('.');
    if (version !== VERSION || !id || blob === undefined) throw new SealError('not a sealed value');
    let entry = this.keys.find((k) => k.id === id);
    if (!entry) {
      this.reload();
      entry = this.keys.find((k) => k.id === id);
    }
    if (!entry)
      throw new SealError(
        `sealed under unknown key ${id}: the seal key in use is not the one it was sealed with`,
      );
    const raw = Buffer.from(blob, 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SealError('sealed value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', entry.key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new SealError('sealed value failed authentication (tampered, or bound to another record)');
    }
  }

  /** The key id a sealed value was sealed under. */
  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }
}

/**
 * Step one of rotating a key file: write `<file>.next` with a fresh key, which the ring
 * then seals under. After every secret is re-sealed, `finishFileRotation` promotes it.
 */
export function beginFileRotation(path: string): void {
  if (!existsSync(`${path}.next`)) writeSecretFile(`${path}.next`, generateSealKeyText());
}

export function finishFileRotation(path: string): void {
  writeSecretFile(`${path}.old`, readFileSync(path));
  writeSecretFile(path, readFileSync(`${path}.next`));
  rmSync(`${path}.next`, { force: true });
}
