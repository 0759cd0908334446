// Full-text search of recorded statements on the embedded store: statements are indexed in batches
// a moment after they are written, and before any search, instead of one FTS5 insert per statement.
import type { Store } from './store.js';

/** How long written statements may wait before the index takes them without a search asking. */
export const SEARCH_INDEX_DELAY_MS = 1_000;

/** Rows per transaction: a batch holds the write lock (and this thread) for a few milliseconds. */
const BATCH = 2_000;

/**
 * Indexes the queued events up to a rowid. CROSS JOIN keeps the queue as the outer loop: left to
 * itself, SQLite moved the rowid bound onto session_events and walked every event ever recorded
 * up to it, on every batch (a full read of the table a second under load).
 */
export const INDEX_QUEUED = `insert into session_events_fts (rowid, text, session_id)
  select e.rowid, e.text, e.session_id from session_events_fts_pending p
  cross join session_events e on e.rowid = p.event_rowid
  where p.event_rowid <= ?`;

const indexes = new WeakMap<Store, SearchIndex>();

/** The store's search index upkeep (one per store, made on first use). */
export function searchIndexOf(store: Store): SearchIndex {
  let index = indexes.get(store);
  if (!index) {
    index = new SearchIndex(store);
    indexes.set(store, index);
  }
  return index;
}

/**
 * An FTS5 insert in the recorder's own transaction cost about 21 µs of CPU per statement, on the
 * thread that carries every session; a statement now only queues its rowid in
 * session_events_fts_pending (migration 0014), and the queue goes into the index at 3–7 µs a row.
 * PostgreSQL keeps its GIN index itself: nothing to do there.
 */
export class SearchIndex {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly store: Store) {
    // What waits when the store closes is indexed then (or, failing that, by the next process).
    store.onClose(async () => {
      this.closed = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.catchUp().catch(() => undefined);
    });
  }

  /** After statements were written: index them within SEARCH_INDEX_DELAY_MS. */
  later(): void {
    if (!this.store.embedded || this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.catchUp().catch((err: Error) => {
        // They stay queued: the next write, search or close tries again.
        this.store.onBackgroundError(new Error(`indexing recorded statements for search: ${err.message}`));
        this.later();
      });
    }, SEARCH_INDEX_DELAY_MS);
    this.timer.unref();
  }

  /** Indexes every queued statement now (a search calls this first); resolves when none waits. */
  catchUp(): Promise<void> {
    if (!this.store.embedded) return Promise.resolve();
    // One pass at a time; a caller arriving meanwhile waits for it, then for one of its own.
    const previous = this.running ?? Promise.resolve();
    const pass: Promise<void> = previous
      .catch(() => undefined)
      .then(() => this.drain())
      .finally(() => {
        if (this.running === pass) this.running = undefined;
      });
    this.running = pass;
    return pass;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const moved = await this.store.writeSync((sql) => {
        const upTo = sql(
          `select max(event_rowid) as last from
             (select event_rowid from session_events_fts_pending order by event_rowid limit ${BATCH})`,
        ).get() as { last: number | null };
        if (upTo.last === null) return 0;
        // A queued row deleted since is gone from the queue too (migration 0014's delete trigger).
        sql(INDEX_QUEUED).run(upTo.last);
        return sql('delete from session_events_fts_pending where event_rowid <= ?').run(upTo.last).changes;
      });
      if (moved < BATCH) return;
      // The batches run synchronously: sessions are served between them.
      await new Promise((r) => setImmediate(r));
    }
  }
}
