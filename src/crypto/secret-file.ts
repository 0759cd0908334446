// Key material on disk: written atomically with mode 0600 so a crash never leaves a
// half-written key and no other user can read it.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeSecretFile(path: string, contents: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, contents, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** True when group or others can read or write the file. */
export function isExposed(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}
