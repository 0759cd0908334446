// The thread of WalCheckpointThread (wal-checkpoint-thread.ts): its own connection copies the
// write-ahead log into the database file, every `intervalMs`, never waiting for a reader or writer.
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import type { CheckpointMessage, CheckpointWork } from './wal-checkpoint-thread.js';

/** Checkpoints failing this many times in a row: the thread stops, and SQLite's own take over. */
const GIVE_UP_AFTER = 3;

const { file, intervalMs, restartPages } = workerData as CheckpointWork;
const port = parentPort!;
// An error thrown across threads loses its message (SqliteError): it is sent in words.
const tell = (m: CheckpointMessage) => port.postMessage(m);

let database: SqliteDatabase.Database;
try {
  database = new SqliteDatabase(file, { fileMustExist: true });
} catch (err) {
  tell({ error: (err as Error).message, fatal: true });
  process.exit(1);
}

/** A row of `PRAGMA wal_checkpoint`: frames in the log, and how many of them are copied. */
interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/** Frames a pass may leave for the store's own connection to copy before its log starts over. */
const TAIL_PAGES = 256;

const pass = (): CheckpointResult =>
  (database.pragma('wal_checkpoint(PASSIVE)') as CheckpointResult[])[0] ?? {
    busy: 1,
    log: -1,
    checkpointed: -1,
  };

/** Whether a pass copied the whole log (busy: another connection was checkpointing, nothing is known). */
const allCopied = (r: CheckpointResult): boolean => r.busy === 0 && r.log >= 0 && r.checkpointed === r.log;

/**
 * The log starts over only when a writer finds every frame of it copied, which a store that
 * commits while each pass runs never does: the file would grow by all that is ever written. So a
 * long log gets more passes, each copying what the last one saw appended, until little was; then
 * the store's connection copies that little itself (and fsyncs, on its thread), and its next
 * commit starts over. Writes that outpace the passes leave it for the next interval.
 */
const startOver = (done: CheckpointResult): void => {
  if (done.log < restartPages || !allCopied(done)) return;
  for (let more = 0; more < 3; more++) {
    const before = done.log;
    done = pass();
    if (!allCopied(done)) return;
    if (done.log - before <= TAIL_PAGES) {
      tell({ copied: done.log });
      return;
    }
  }
};

let failures = 0;
const checkpoint = () => {
  try {
    // PASSIVE copies what no reader still needs; `busy` (another connection checkpointing, a
    // reader on an old snapshot) only means the rest waits for the next pass.
    startOver(pass());
    failures = 0;
  } catch (err) {
    failures++;
    const fatal = failures >= GIVE_UP_AFTER;
    tell({ error: (err as Error).message, fatal });
    if (fatal) {
      database.close();
      process.exit(1);
    }
  }
};

const timer = setInterval(checkpoint, intervalMs);
tell({ ready: true });
port.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  database.close();
  port.close();
});
