// WAL checkpoints of the embedded store, from a worker thread with its own connection, so the
// thread that carries sessions never stops for a checkpoint's copy and fsync.
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';

export const CHECKPOINT_INTERVAL_MS = 1_000;

/** SQLite's default: the commit that takes the log past this many pages checkpoints it. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1_000;

/** What the thread (wal-checkpoint.worker.ts) tells the store: it runs, or what failed. */
export type CheckpointMessage = { ready: true } | { copied: number } | { error: string; fatal: boolean };

/**
 * A log this long after a pass is started over (4,000 pages: 16 MB of 4 KiB pages), so the file
 * stays about this size plus what is written in one interval.
 */
export const RESTART_LOG_PAGES = 4_000;

/** What the thread is given. */
export interface CheckpointWork {
  file: string;
  intervalMs: number;
  /** Frames in the log after a pass from which the log is started over. */
  restartPages: number;
}

/**
 * By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: it copies
 * them into the database file and fsyncs it on the event loop, a few times a second under load
 * (about 17 µs of that thread per `pgbench -S` transaction, and a stall for every session while it
 * runs). Here a worker thread checkpoints every second (and starts a long log over, see
 * RESTART_LOG_PAGES), and the store's connection stops checkpointing once that thread has opened
 * the database. Whenever the thread is not running (failed to start, gave up after repeated
 * failures, ended, stopped), SQLite's own checkpoints are back on the store's connection.
 */
export class WalCheckpointThread {
  private stopped = false;
  /** Whether why the thread ends was already reported (so its exit is not reported again). */
  private told = false;
  /** Resolves once the thread checkpoints (true) or has ended without (false). */
  readonly ready: Promise<boolean>;
  private readonly exited: Promise<number>;
  private readonly worker: Worker;

  constructor(
    private readonly database: SqliteDatabase.Database,
    private readonly file: string,
    private readonly onError: (err: Error) => void,
    intervalMs = CHECKPOINT_INTERVAL_MS,
    restartPages = RESTART_LOG_PAGES,
  ) {
    const work: CheckpointWork = { file, intervalMs, restartPages };
    this.worker = new Worker(new URL('./wal-checkpoint.worker.js', import.meta.url), {
      workerData: work,
      // Not the process's flags: node options such as --cpu-prof or --input-type are not for this thread.
      execArgv: [],
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.ready = new Promise((resolve) => {
      this.worker.on('message', (m: CheckpointMessage) => {
        if ('ready' in m) {
          // Once running it never keeps a process alive (a closing store stops it); until then it
          // does, so that `ready` settles.
          this.worker.unref();
          // Its connection is open: from now on it checkpoints, and the store's connection does not.
          if (!this.stopped) database.pragma('wal_autocheckpoint = 0');
          resolve(true);
          return;
        }
        if ('copied' in m) {
          this.startOver();
          return;
        }
        if (m.fatal) this.told = true;
        this.fail(m.fatal ? `${m.error}; the thread stops` : m.error);
      });
      this.worker.once('error', (err) => {
        this.told = true;
        this.fail(err instanceof Error ? err.message : String(err));
      });
      void this.exited.then((code) => {
        resolve(false);
        if (this.stopped) return;
        this.giveBack();
        if (!this.told) this.fail(`the thread ended (exit code ${code})`);
      });
    });
  }

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

  private fail(what: string): void {
    this.onError(
      new Error(
        `WAL checkpoint of ${this.file}: ${what} (SQLite checkpoints on the gateway's own connection while the thread is not running)`,
      ),
    );
  }

  /**
   * The thread has copied a long log but for what was written meanwhile: the store's connection
   * copies that tail (what was written since the thread's last pass, which added at most 256
   * pages; and an fsync), so that its next commit starts the log over instead of growing it.
   */
  private startOver(): void {
    // Inside a transaction the checkpoint would fail (no transaction spans a turn of the event
    // loop today): the thread asks again after its next passes.
    if (this.stopped || !this.database.open || this.database.inTransaction) return;
    try {
      this.database.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      this.fail(`copying the log's tail: ${(err as Error).message}`);
    }
  }

  /** SQLite checkpoints on the store's connection again. */
  private giveBack(): void {
    if (this.database.open) this.database.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
  }
}
