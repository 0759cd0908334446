// The local PostgreSQL prepared for password logins (scripts/pg-test-auth.sh): roles for SCRAM, MD5
// and cleartext with known passwords, and TLS with a throwaway CA. Prepared once, checked each time.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ADMIN_URL } from './postgres.js';

const SETUP_SCRIPT = fileURLToPath(new URL('../../scripts/pg-test-auth.sh', import.meta.url));
export const CA_PEM = '/var/lib/postgresql/warden-test-ca.pem';
/** The password of each role: warden_scram, warden_md5, warden_clear. */
export const ROLES = { scram: 'scram-test-pw', md5: 'md5-test-pw', clear: 'clear-test-pw' } as const;

async function serverReady(): Promise<boolean> {
  if (!existsSync(CA_PEM)) return false;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    const { rows } = await c.query<{ roles: number; rules: number; ssl: string }>(
      `select (select count(*)::int from pg_roles where rolname in ('warden_scram', 'warden_md5', 'warden_clear')) as roles,
              (select count(*)::int from pg_hba_file_rules where user_name::text like '{warden_%}') as rules,
              current_setting('ssl') as ssl`,
    );
    return rows[0]?.roles === 3 && rows[0]?.rules === 3 && rows[0]?.ssl === 'on';
  } finally {
    await c.end();
  }
}

/** Runs scripts/pg-test-auth.sh unless the server is already prepared; throws if it still is not. */
export async function preparePasswordAuth(): Promise<void> {
  if (await serverReady()) return;
  execFileSync('bash', [SETUP_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (!(await serverReady())) throw new Error('scripts/pg-test-auth.sh did not prepare the server');
}
