// The one Store every durable thing goes through: SQLite (WAL) embedded by default,
// PostgreSQL when several gateways share state. Migrations run on open.
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { migrationProvider } from './migrations.js';
import type { Database } from './tables.js';
import { WalCheckpointThread } from './wal-checkpoint-thread.js';

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;
export type Tx = Kysely<Database> | Transaction<Database>;

/** Raised when the store cannot be reached; the API answers 503 and the event is retried. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

const PG_INT8 = 20;
const AUDIT_LOCK_KEY = 0x57617264; // "Ward": one advisory lock serialises audit appends across gateways

export interface StoreOptions {
  /** postgres:// URL, a SQLite file path, or undefined for <dataDir>/warden.db. */
  url: string | undefined;
  dataDir: string;
  /** Called with unexpected background errors (an idle PostgreSQL client dropping). */
  onBackgroundError?: (err: Error) => void;
}

export function isPostgresUrl(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}

export class Store {
  /** Work to stop before the database closes (timers of deferred index upkeep). */
  private readonly closing: Array<() => Promise<void>> = [];
  private closed = false;

  private constructor(
    readonly db: Db,
    readonly dialect: Dialect,
    readonly location: string,
    /** Called with errors of work nobody awaits (an idle PostgreSQL client dropping, deferred upkeep). */
    readonly onBackgroundError: (err: Error) => void,
    /** The embedded database's own handle (SQLite only), for the hot write paths. */
    private readonly sqlite?: SqliteDatabase.Database,
    /** Prepares a statement on the embedded database once per SQL text. */
    private readonly prepare?: (text: string) => SqliteDatabase.Statement,
  ) {}

  static async open(opts: StoreOptions): Promise<Store> {
    const store = Store.connect(opts);
    try {
      await store.migrate();
    } catch (err) {
      // Two gateways starting at once on a new SQLite file can both try the first migration
      // (PostgreSQL has the migrator's lock); the loser finds it done on a second look.
      try {
        await new Promise((r) => setTimeout(r, 250));
        await store.migrate();
      } catch {
        await store.close();
        throw err;
      }
    }
    if (store.sqlite) {
      // A serving store checkpoints its write-ahead log from a thread of its own (tools that
      // only read, through connect(), leave it to SQLite).
      const checkpoints = new WalCheckpointThread(store.sqlite, store.location, store.onBackgroundError);
      store.onClose(() => checkpoints.stop());
    }
    return store;
  }

  /** Builds the store without migrating (for tools that only read). */
  static connect(opts: StoreOptions): Store {
    if (isPostgresUrl(opts.url)) {
      const pool = new pg.Pool({
        connectionString: opts.url,
        max: 10,
        connectionTimeoutMillis: 5_000,
        // bigint columns (audit seq) come back as numbers; 2^53 events is enough.
        types: {
          getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
            oid === PG_INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
        },
      });
      const onBackgroundError = opts.onBackgroundError ?? (() => undefined);
      pool.on('error', onBackgroundError);
      // pg-pool listens for errors only on idle clients. A connection that dies while checked
      // out also emits 'error' on its client, and with no listener that kills the process;
      // the query running on it fails and is handled by its caller, so nothing is lost here.
      pool.on('connect', (client) => client.on('error', () => undefined));
      const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
      return new Store(db, 'postgres', redactUrl(opts.url as string), onBackgroundError);
    }
    const file = opts.url?.replace(/^(sqlite|file):(\/\/)?/, '') ?? join(opts.dataDir, 'warden.db');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const database = new SqliteDatabase(file);
    chmodSync(file, 0o600);
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 10000');
    database.pragma('foreign_keys = ON');
    const prepared = new Map<string, SqliteDatabase.Statement>();
    // Kysely prepares every query it runs; better-sqlite3 statements are reusable, so the same
    // text is prepared once (bounded: texts with IN lists of varying length come and go).
    const prepare = (text: string) => {
      let statement = prepared.get(text);
      if (!statement) {
        if (prepared.size >= 1000) prepared.clear();
        statement = database.prepare(text);
        prepared.set(text, statement);
      }
      return statement;
    };
    const db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: { prepare, close: () => database.close() } }),
    });
    return new Store(db, 'sqlite', file, opts.onBackgroundError ?? (() => undefined), database, prepare);
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: migrationProvider(this.dialect) });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error');
      throw new Error(`store migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
    }
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /**
   * Runs `fn` in a transaction that no other writer of the audit chain can interleave with,
   * whether it lives in this process or in another gateway sharing the store.
   */
  async serialized<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.dialect === 'postgres') {
      return this.db.transaction().execute(async (tx) => {
        await sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(tx);
        return fn(tx);
      });
    }
    // SQLite: BEGIN IMMEDIATE takes the write lock up front, so read-then-append cannot race.
    return this.db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (err) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Whether the store is the embedded SQLite database (which `writeSync` needs). */
  get embedded(): boolean {
    return this.sqlite !== undefined;
  }

  /**
   * SQLite only: runs `fn` synchronously in one BEGIN IMMEDIATE transaction with statements
   * prepared once (`sql` returns them), while holding Kysely's connection so that no Kysely
   * transaction is open meanwhile. A batch of inserts then costs microseconds per row instead
   * of a query build and a prepare each. Serialized like `serialized()`.
   */
  async writeSync<T>(fn: (sql: (text: string) => SqliteDatabase.Statement) => T): Promise<T> {
    const database = this.sqlite;
    const statement = this.prepare;
    if (!database || !statement) throw new Error('writeSync needs the embedded SQLite store');
    return this.db.connection().execute(async () => {
      statement('begin immediate').run();
      try {
        const result = fn(statement);
        statement('commit').run();
        return result;
      } catch (err) {
        if (database.inTransaction) statement('rollback').run();
        throw err;
      }
    });
  }

  /**
   * Runs `fn` when the store closes, before the database does (it may still write); hooks run last
   * added first. Added while the store is closing or closed, `fn` runs at once.
   */
  onClose(fn: () => Promise<void>): void {
    if (this.closed) void fn().catch((err: Error) => this.onBackgroundError(err));
    else this.closing.push(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      for (const fn of this.closing.splice(0).reverse()) {
        await fn().catch((err: Error) => this.onBackgroundError(err));
      }
    } finally {
      await this.db.destroy();
    }
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}

/** True for errors that mean "the store is not reachable right now" rather than a bad query. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'SQLITE_BUSY'].includes(
      code,
    )
  )
    return true;
  if (/^(08|57P)/.test(code)) return true; // connection exceptions, admin shutdown
  const msg = e?.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Client has encountered a connection error/i.test(
    msg,
  );
}
