// The login cache: the Warden token `warden login` obtained, per Warden URL, in
// $XDG_CONFIG_HOME/warden/credentials.json (directory 0700, file 0600, replaced atomically).
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './client.js';

export interface CachedLogin {
  token: string;
  jti: string;
  subject: string;
  issuer: string;
  expires_at: string;
}

interface CredentialsFile {
  version: 1;
  /** Keyed by the Warden URL without a trailing slash. */
  logins: Record<string, CachedLogin>;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'warden', 'credentials.json');
}

const keyOf = (url: string) => url.replace(/\/+$/, '');

function readFile(path: string): CredentialsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, logins: {} };
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<CredentialsFile>;
    return { version: 1, logins: parsed.logins ?? {} };
  } catch {
    throw new CliError(`${path} is not valid JSON: remove it and run \`warden login\` again`);
  }
}

function writeFile(path: string, file: CredentialsFile): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory as it was; the token must not sit in a readable one.
  chmodSync(dir, 0o700);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}

export function cachedLogin(url: string, env: NodeJS.ProcessEnv = process.env): CachedLogin | undefined {
  return readFile(credentialsPath(env)).logins[keyOf(url)];
}

export function saveLogin(url: string, login: CachedLogin, env: NodeJS.ProcessEnv = process.env): string {
  const path = credentialsPath(env);
  const file = readFile(path);
  file.logins[keyOf(url)] = login;
  writeFile(path, file);
  return path;
}

/** Forgets the login for `url`; returns what was cached, if anything. */
export function removeLogin(url: string, env: NodeJS.ProcessEnv = process.env): CachedLogin | undefined {
  const path = credentialsPath(env);
  const file = readFile(path);
  const login = file.logins[keyOf(url)];
  if (!login) return undefined;
  delete file.logins[keyOf(url)];
  if (Object.keys(file.logins).length === 0) rmSync(path, { force: true });
  else writeFile(path, file);
  return login;
}
