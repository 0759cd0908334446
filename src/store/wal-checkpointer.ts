// WAL checkpoints of the embedded store, off the event loop. SQLite checkpoints by default inside the
// commit that takes the log past 1,000 pages: it copies them into the database file and fsyncs it,
// on the thread that carries every session, a few times a second under load (about 17 µs of that
// thread per `pgbench -S` transaction, and a stall for every session while it runs). Here a worker
// thread with its own connection checkpoints every second, and the store's connection stops
// checkpointing once that thread is up. Should the thread fail, SQLite's own checkpoints come back.
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';

export const CHECKPOINT_INTERVAL_MS = 1_000;

/** SQLite's default: the commit that takes the log past this many pages checkpoints it. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1_000;

export class WalCheckpointer {
  private stopped = false;
  /** Resolves once the thread runs (true) or has failed (false). */
  readonly ready: Promise<boolean>;
  private readonly exited: Promise<void>;

  constructor(
    private readonly database: SqliteDatabase.Database,
    file: string,
    private readonly onError: (err: Error) => void,
    intervalMs = CHECKPOINT_INTERVAL_MS,
  ) {
    const worker = new Worker(new URL('./wal-checkpoint.worker.js', import.meta.url), {
      workerData: { file, intervalMs },
      // Not the process's flags: node options such as --cpu-prof or --input-type are not for this thread.
      execArgv: [],
    });
    // Never what keeps a process alive; a closing store stops it (stop()).
    worker.unref();
    this.worker = worker;
    this.ready = new Promise((resolve) => {
      worker.on('message', (m: { ready?: boolean; error?: string; fatal?: boolean }) => {
        if (m.error) this.onError(new Error(`WAL checkpoint: ${m.error}`));
        // It could not open the database and ends: SQLite keeps checkpointing on the store's connection.
        if (m.fatal) resolve(false);
        if (!m.ready) return;
        // Its connection is open: from now on it checkpoints, and the store's connection does not.
        if (!this.stopped) database.pragma('wal_autocheckpoint = 0');
        resolve(true);
      });
      worker.once('error', (err) => {
        this.giveBack();
        this.onError(
          err instanceof Error && err.message
            ? err
            : new Error(`WAL checkpoint thread failed: ${String(err)}`),
        );
        resolve(false);
      });
    });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (!this.stopped) this.giveBack();
    });
  }

  private readonly worker: Worker;

  /** Ends the thread after a last checkpoint; the store's connection checkpoints again. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.worker.postMessage('stop');
    const timeout = setTimeout(() => void this.worker.terminate(), 5_000);
    await this.exited;
    clearTimeout(timeout);
    this.giveBack();
  }

  /** SQLite checkpoints on the store's connection again. */
  private giveBack(): void {
    if (this.database.open) this.database.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
  }
}
