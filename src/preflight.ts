// Everything that can be checked about a configuration without touching the store: secret
// sources resolve, TLS files load and match, configured key files exist with safe modes.
// `warden config check` and `warden serve` run the same checks, so check's OK means serve starts.
import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ConnectionInput } from './config/connection.js';
import { ConfigError, type ConfigProblem, type LoadedConfig } from './config/load.js';
import { resolveSecret } from './config/secrets.js';
import { decodeSealKey } from './crypto/seal.js';
import { isExposed } from './crypto/secret-file.js';

export interface Preflight {
  /** Config-file connections with their secrets resolved, ready to sync into the store. */
  connections: ConnectionInput[];
  /** The HMAC key of each `reviews.notify` entry, by position (undefined for those not signed). */
  notifySecrets: Array<string | undefined>;
}

export function preflight(loaded: LoadedConfig, env: NodeJS.ProcessEnv): Preflight {
  const { config } = loaded;
  const source = loaded.file ?? '(defaults)';
  const problems: ConfigProblem[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else throw err;
      return undefined;
    }
  };

  const connections = config.connections.map((c, i) => {
    const password =
      c.credentials.password === undefined
        ? undefined
        : attempt(() =>
            resolveSecret(c.credentials.password!, `connections[${i}].credentials.password`, env),
          );
    return {
      ...c,
      credentials: {
        ...(c.credentials.user ? { user: c.credentials.user } : {}),
        ...(password ? { password } : {}),
      },
    };
  });

  const notifySecrets = config.reviews.notify.map((n, i) => {
    if (n.kind !== 'webhook') return undefined;
    const where = `reviews.notify[${i}].${n.secret_file !== undefined ? 'secret_file' : 'secret_env'}`;
    const secret = attempt(() =>
      resolveSecret(
        n.secret_file !== undefined ? { file: n.secret_file } : { env: n.secret_env! },
        where,
        env,
      ),
    );
    if (secret === '') problems.push({ source, path: where, message: 'the webhook secret is empty' });
    return secret;
  });

  for (const [label, tls] of [
    ['api.tls', config.api.tls],
    ['listeners.postgres.tls', config.listeners.postgres.tls],
  ] as const) {
    if (!tls) continue;
    const read = (path: string, key: string) =>
      attempt(() => {
        try {
          return readFileSync(path);
        } catch (err) {
          throw new ConfigError([
            { source, path: key, message: `cannot read ${path}: ${(err as Error).message}` },
          ]);
        }
      });
    const cert = read(tls.cert, `${label}.cert`);
    const key = read(tls.key, `${label}.key`);
    if (cert && key) {
      try {
        createSecureContext({ cert, key });
      } catch (err) {
        problems.push({
          source,
          path: label,
          message: `certificate and key do not load together: ${(err as Error).message}`,
        });
      }
    }
  }

  for (const [key, path] of [
    ['keys.seal_key_file', config.keys.seal_key_file],
    ['keys.signing_key_file', config.keys.signing_key_file],
  ] as const) {
    if (path === undefined) continue;
    if (!existsSync(path)) problems.push({ source, path: key, message: `${path} does not exist` });
    else if (isExposed(path)) {
      problems.push({
        source,
        path: key,
        message: `${path} is readable by group or others; run chmod 600 on it`,
      });
    }
  }
  if (env.WARDEN_SEAL_KEY) {
    try {
      decodeSealKey(env.WARDEN_SEAL_KEY, 'WARDEN_SEAL_KEY');
    } catch (err) {
      problems.push({
        source: 'WARDEN_SEAL_KEY',
        path: '',
        message: (err as Error).message.replace(/^WARDEN_SEAL_KEY: /, ''),
      });
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return { connections, notifySecrets };
}
