import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { type StoreFixture, storeFixture } from '../testing/dialects.js';
import { statementEvent } from '../testing/session-rows.js';
import { searchIndexOf } from './search-index.js';
import { SessionEvents } from './session-events.js';
import { Store } from './store.js';
import { CHECKPOINT_INTERVAL_MS, WalCheckpointThread } from './wal-checkpoint-thread.js';

const autocheckpoint = (db: SqliteDatabase.Database) => db.pragma('wal_autocheckpoint', { simple: true });

describe('WAL checkpoints of the embedded store, from a thread of their own', () => {
  let fx: StoreFixture;
  before(async () => {
    fx = await storeFixture('sqlite');
  });
  after(() => fx.cleanup());

  it('copies the log into the database file within a second, and closes before the store does', async () => {
    const store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
    const file = join(fx.dataDir, 'warden.db');
    try {
      const deadline = Date.now() + CHECKPOINT_INTERVAL_MS + 10_000;
      const raw = new SqliteDatabase(file);
      try {
        const sizeBefore = statSync(file).size;
        // About 1 MB of rows: they land in the log first, and the database file grows only by a
        // checkpoint; SQLite's own would wait for 1,000 pages (4 MB) of log.
        const text = 'select '.padEnd(500, 'x');
        await new SessionEvents(store).insert(
          Array.from({ length: 2_000 }, (_, seq) => statementEvent({ session_id: 'wal', seq, text })),
        );
        while (statSync(file).size <= sizeBefore) {
          assert.ok(Date.now() < deadline, 'no checkpoint reached the database file');
          await new Promise((r) => setTimeout(r, 50));
        }
        const count = raw.prepare('select count(*) as n from session_events where session_id = ?').get('wal');
        assert.deepEqual(count, { n: 2_000 });
      } finally {
        raw.close();
      }
    } finally {
      await store.close();
    }
    // The thread closed its connection first: the store's, the last one, removed the log on closing.
    assert.equal(existsSync(`${file}-wal`), false);
  });

  it("stops checkpointing on the store's connection only while its thread runs", async () => {
    const file = join(fx.dataDir, 'warden.db');
    const db = new SqliteDatabase(file);
    try {
      const errors: Error[] = [];
      const checkpointer = new WalCheckpointThread(db, file, (err) => errors.push(err));
      assert.equal(await checkpointer.ready, true);
      assert.equal(autocheckpoint(db), 0);
      await checkpointer.stop();
      assert.equal(autocheckpoint(db), 1_000);
      assert.deepEqual(errors, []);
    } finally {
      db.close();
    }
  });

  it('starts the log over while a writer commits all the time, so the file stays bounded', async () => {
    const file = join(fx.dataDir, 'restart.db');
    const db = new SqliteDatabase(file);
    db.pragma('journal_mode = WAL');
    // As the store's own connection: no fsync per commit, so the test writes fast on any disk.
    db.pragma('synchronous = NORMAL');
    db.exec('create table t (id integer primary key, body text)');
    const insert = db.prepare('insert into t (body) values (?)');
    const errors: Error[] = [];
    // A pass every 250 ms from 50 pages of log on; a commit of 8 rows of 2 KB is about 4 pages.
    const checkpointer = new WalCheckpointThread(db, file, (err) => errors.push(err), 250, 50);
    try {
      assert.equal(await checkpointer.ready, true);
      const body = 'x'.repeat(2_000);
      let largest = 0;
      let commits = 0;
      // Commits every millisecond or so, at 24 MB/s at most for 3 s: each pass (a quarter second
      // of writes to copy) sees commits land behind it, so the log never ends fully copied by one
      // PASSIVE pass, yet the passes copy far faster than this writer writes, even on a busy
      // machine. (A writer outpacing the passes would leave the log growing, fix or not.)
      const start = Date.now();
      const until = start + 3_000;
      const bytesPerMs = 24 * 1024;
      while (Date.now() < until) {
        if (commits * 8 * 2_000 > (Date.now() - start) * bytesPerMs) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        db.transaction(() => {
          for (let k = 0; k < 8; k++) insert.run(body);
        })();
        commits++;
        largest = Math.max(largest, statSync(`${file}-wal`).size);
        await new Promise((r) => setImmediate(r));
      }
      const written = commits * 8 * 2_000;
      assert.ok(written > 16 * 1024 * 1024, `only ${written} bytes written: the test proves nothing`);
      // Never started over, the log holds more than everything written (page images and frame
      // headers); started over, it is what the first passes could not keep up with, then stays.
      assert.ok(largest < written / 2, `the log grew to ${largest} bytes of ${written} written`);
      assert.deepEqual(db.prepare('select count(*) as n from t').get(), { n: commits * 8 });
    } finally {
      await checkpointer.stop();
      db.close();
    }
    assert.deepEqual(errors, []);
  });

  it('leaves checkpoints to SQLite, and says why, when its thread cannot start', async () => {
    const file = join(fx.dataDir, 'warden.db');
    const db = new SqliteDatabase(file);
    try {
      const errors: Error[] = [];
      const checkpointer = new WalCheckpointThread(db, join(fx.dataDir, 'no-such.db'), (err) =>
        errors.push(err),
      );
      assert.equal(await checkpointer.ready, false);
      assert.equal(autocheckpoint(db), 1_000);
      assert.equal(errors.length, 1);
      assert.match(
        errors[0]!.message,
        /^WAL checkpoint of .*no-such\.db: unable to open database file; the thread stops \(SQLite checkpoints on the gateway's own connection/,
      );
      await checkpointer.stop();
    } finally {
      db.close();
    }
  });

  it('runs beside a second store on the same file: both write, both find all, both close cleanly', async () => {
    const errors: Error[] = [];
    const open = () =>
      Store.open({ url: fx.url, dataDir: fx.dataDir, onBackgroundError: (err) => errors.push(err) });
    const [a, b] = [await open(), await open()];
    try {
      const write = (store: Store, session_id: string) =>
        new SessionEvents(store).insert(
          Array.from({ length: 500 }, (_, seq) =>
            statementEvent({ session_id, seq, text: `select ${seq} from ${session_id}_rows` }),
          ),
        );
      await Promise.all([write(a, 'left'), write(b, 'right'), write(a, 'left2'), write(b, 'right2')]);
      // Past a checkpoint interval of both threads, and each store's search index caught up.
      await new Promise((r) => setTimeout(r, CHECKPOINT_INTERVAL_MS + 500));
      for (const store of [a, b]) {
        await searchIndexOf(store).catchUp();
        const rows = await sql<{
          n: number;
        }>`select count(*) as n from session_events_fts where session_events_fts match 'rows'`.execute(
          store.db,
        );
        assert.equal(Number(rows.rows[0]!.n), 2_000);
      }
    } finally {
      await a.close();
      await b.close();
    }
    assert.deepEqual(errors, []);
    assert.equal(existsSync(`${join(fx.dataDir, 'warden.db')}-wal`), false);
  });
});
