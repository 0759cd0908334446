// Throwaway PostgreSQL databases for tests: one per test file, dropped afterwards, on the
// server at WARDEN_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres).
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const ADMIN_URL = process.env.WARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ThrowawayDb {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createThrowawayDb(prefix = 'warden_test'): Promise<ThrowawayDb> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A config-file connection named `name` to a database on the test server, logging in as the trusted `postgres`. */
export function pgConnection(database: string, name = 'app-db') {
  return {
    name,
    protocol: 'postgres',
    target: { host: '127.0.0.1', port: 5432, database },
    credentials: { user: 'postgres' },
  };
}
