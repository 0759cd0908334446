// Resolves secret sources from the config file ({ env }, { file } or inline) at start-up.
import { readFileSync } from 'node:fs';
import { ConfigError } from './load.js';
import type { SecretSource } from './schema.js';

export function resolveSecret(source: SecretSource, where: string, env: NodeJS.ProcessEnv): string {
  if (typeof source === 'string') return source;
  if ('env' in source) {
    const value = env[source.env];
    if (value === undefined || value === '') {
      throw new ConfigError([
        { source: source.env, path: where, message: `environment variable ${source.env} is not set` },
      ]);
    }
    return value;
  }
  try {
    return readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError([
      { source: source.file, path: where, message: `cannot read secret file: ${(err as Error).message}` },
    ]);
  }
}
