// The key behind deterministic masking tokens (`style: tokenize`): random, made once per store and
// kept in warden_meta sealed under the seal key, so every gateway on the store makes the same tokens
// (values stay joinable across replicas and restarts) while the database alone cannot reverse them.
import { randomBytes } from 'node:crypto';
import type { Sealer } from './connections.js';
import type { Meta } from './meta.js';

export const TOKENIZE_KEY_META = 'mask_tokenize_key';
const CONTEXT = 'meta:mask_tokenize_key';

export async function loadTokenizeKey(meta: Meta, sealer: Sealer): Promise<Buffer> {
  let sealed = await meta.get(TOKENIZE_KEY_META);
  // Two gateways starting at once both propose a key; claim() keeps the first, and both use it.
  sealed ??= await meta.claim(TOKENIZE_KEY_META, sealer.seal(randomBytes(32).toString('base64'), CONTEXT));
  return Buffer.from(sealer.open(sealed, CONTEXT), 'base64');
}

/** Re-seals the key under the sealer's current key (seal-key rotation); false when there is none yet. */
export async function resealTokenizeKey(meta: Meta, sealer: Sealer): Promise<boolean> {
  const sealed = await meta.get(TOKENIZE_KEY_META);
  if (sealed === undefined) return false;
  await meta.set(TOKENIZE_KEY_META, sealer.seal(sealer.open(sealed, CONTEXT), CONTEXT));
  return true;
}
