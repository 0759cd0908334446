// Several gateways sharing one PostgreSQL store, as a deployment behind a load balancer runs them:
// the same seal and signing key files for every replica (mode 0600), each its own data dir and
// listeners, and API keys minted once through the first.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, startWarden, type WardenProcess } from './warden-process.js';

export interface Replicas {
  gateways: WardenProcess[];
  /** The bootstrap admin key (written by the first gateway). */
  adminKey: string;
  /** Mints an API key through the first gateway; returns the key. */
  key(name: string, groups: string[]): Promise<string>;
  /** Stops every gateway and removes their directories (the store is the caller's). */
  stop(): Promise<void>;
}

export async function startReplicas(
  storeUrl: string,
  config: Record<string, unknown>,
  names: string[] = ['a', 'b'],
): Promise<Replicas> {
  const root = mkdtempSync(join(tmpdir(), 'warden-replicas-'));
  mkdirSync(join(root, 'keys'));
  const seal = join(root, 'keys', 'seal.key');
  const signing = join(root, 'keys', 'signing.key');
  writeFileSync(seal, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(signing, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const gateways: WardenProcess[] = [];
  const stop = async () => {
    for (const g of gateways) await g.stop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const name of names) {
      const dir = join(root, name);
      mkdirSync(dir);
      gateways.push(
        await startWarden({
          dir,
          config: {
            data_dir: join(dir, 'data'),
            store: { url: storeUrl },
            keys: { seal_key_file: seal, signing_key_file: signing },
            ...config,
          },
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const adminKey = readFileSync(join(root, names[0]!, 'data', 'admin.key'), 'utf8').trim();
  return {
    gateways,
    adminKey,
    async key(name, groups) {
      const res = await api(gateways[0]!.url, 'POST', '/api/keys', {
        token: adminKey,
        body: { name, groups },
      });
      if (res.status !== 201) throw new Error(`minting key ${name}: ${res.status} ${res.text}`);
      return (res.body as { key: string }).key;
    },
    stop,
  };
}
