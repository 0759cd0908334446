// The thread of WalCheckpointThread (wal-checkpoint-thread.ts): its own connection copies the
// write-ahead log into the database file, every `intervalMs`, never waiting for a reader or writer.
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import type { CheckpointMessage, CheckpointWork } from './wal-checkpoint-thread.js';

/** Checkpoints failing this many times in a row: the thread stops, and SQLite's own take over. */
const GIVE_UP_AFTER = 3;

const { file, intervalMs } = workerData as CheckpointWork;
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

let failures = 0;
const checkpoint = () => {
  try {
    // PASSIVE copies what no reader still needs; `busy` (another connection checkpointing, a
    // reader on an old snapshot) only means the rest waits for the next pass.
    database.pragma('wal_checkpoint(PASSIVE)');
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
