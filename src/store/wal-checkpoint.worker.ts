// The WAL checkpointer's thread (see wal-checkpointer.ts): its own connection to the embedded
// database copies what the write-ahead log holds into the database file, fsync included, every
// `intervalMs`, so the thread that carries sessions never does. PASSIVE: it never waits for a writer
// or reader, and the store's writes go on meanwhile; what it cannot copy yet waits for the next pass.
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const port = parentPort!;

/** What failed, in words: an error thrown across threads loses its message (SqliteError). */
const failed = (err: unknown) => ({ error: (err as Error).message ?? String(err) });

let database: SqliteDatabase.Database;
try {
  database = new SqliteDatabase(file, { fileMustExist: true });
} catch (err) {
  port.postMessage({ ...failed(err), fatal: true });
  process.exit(1);
}

const checkpoint = () => {
  try {
    database.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    // Another connection checkpointing at the same moment (a second gateway on this file) is no fault.
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') port.postMessage(failed(err));
  }
};

const timer = setInterval(checkpoint, intervalMs);
port.postMessage({ ready: true });
port.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  database.close();
  port.close();
});
