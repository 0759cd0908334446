// Runs a suite against both store dialects: embedded SQLite and a throwaway PostgreSQL database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createThrowawayDb } from './postgres.js';

export type DialectName = 'sqlite' | 'postgres';
export const DIALECTS: DialectName[] = ['sqlite', 'postgres'];

export interface StoreFixture {
  dialect: DialectName;
  /** store.url for the config (undefined: SQLite in dataDir). */
  url: string | undefined;
  dataDir: string;
  cleanup(): Promise<void>;
}

export async function storeFixture(dialect: DialectName): Promise<StoreFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-test-'));
  if (dialect === 'sqlite') {
    return {
      dialect,
      url: undefined,
      dataDir,
      cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const db = await createThrowawayDb();
  return {
    dialect,
    url: db.url,
    dataDir,
    async cleanup() {
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
