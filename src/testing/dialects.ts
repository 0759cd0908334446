// Runs a suite against both store dialects: embedded SQLite and a throwaway PostgreSQL database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { Store, type StoreOptions } from '../store/store.js';
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

/**
 * A store of `dialect` for the enclosing suite: opened before its tests, closed (its database
 * dropped) after them. Call inside `describe`; read `.store` inside tests.
 */
export function storeForSuite(
  dialect: DialectName,
  opts: Pick<StoreOptions, 'onBackgroundError'> = {},
): { readonly store: Store; readonly fixture: StoreFixture } {
  let fixture: StoreFixture | undefined;
  let store: Store | undefined;
  before(async () => {
    fixture = await storeFixture(dialect);
    store = await Store.open({ url: fixture.url, dataDir: fixture.dataDir, ...opts });
  });
  after(async () => {
    await store?.close();
    await fixture?.cleanup();
  });
  return {
    get store() {
      if (!store) throw new Error('the suite store is opened in before()');
      return store;
    },
    get fixture() {
      if (!fixture) throw new Error('the suite store is opened in before()');
      return fixture;
    },
  };
}
