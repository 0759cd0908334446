// The gateway's Ed25519 key: it signs Warden tokens and audit checkpoints. The private key
// lives in a 0600 file outside the store; the public half is published as a JWK.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { isExposed, writeSecretFile } from './secret-file.js';

export interface SigningKey {
  /** RFC 7638 thumbprint of the public JWK. */
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  publicPem: string;
}

export async function loadSigningKey(path: string, generate: boolean): Promise<SigningKey> {
  if (!existsSync(path)) {
    if (!generate) throw new Error(`${path}: signing key file does not exist`);
    const { privateKey } = generateKeyPairSync('ed25519');
    writeSecretFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  }
  if (isExposed(path))
    throw new Error(`${path}: signing key file is readable by group or others; run chmod 600 on it`);
  const privateKey = createPrivateKey(readFileSync(path));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path}: expected an Ed25519 private key`);
  return fromPrivateKey(privateKey);
}

export async function fromPrivateKey(privateKey: KeyObject): Promise<SigningKey> {
  const publicKey = createPublicKey(privateKey);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return {
    kid,
    privateKey,
    publicKey,
    publicJwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' },
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

export function signDetached(key: SigningKey, data: string): string {
  return sign(null, Buffer.from(data, 'utf8'), key.privateKey).toString('base64url');
}

export function verifyDetached(publicKey: KeyObject, data: string, signature: string): boolean {
  try {
    return verify(null, Buffer.from(data, 'utf8'), publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('expected an Ed25519 public key');
  return key;
}

/** A public key read from PEM, with the kid Warden uses for it. */
export async function fromPublicPemAsync(pem: string): Promise<{ kid: string; key: KeyObject }> {
  const key = publicKeyFromPem(pem);
  const kid = await calculateJwkThumbprint(await exportJWK(key));
  return { kid, key };
}
