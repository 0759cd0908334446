import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Kysely, Migrator, sql } from 'kysely';
import { type StoreFixture, storeFixture } from '../testing/dialects.js';
import { sessionRow, statementEvent } from '../testing/session-rows.js';
import { migrationProvider } from './migrations.js';
import { INDEX_QUEUED, SEARCH_INDEX_DELAY_MS, searchIndexOf } from './search-index.js';
import { SessionEvents } from './session-events.js';
import { Sessions } from './sessions.js';
import { Store } from './store.js';

// The embedded store indexes statements for search a moment after they are written; PostgreSQL's
// index is the database's own, and the listing tests cover search on both.
describe('search index of recorded statements (sqlite): queued when written, indexed in batches', () => {
  let fx: StoreFixture;
  let store: Store;
  let events: SessionEvents;
  let sessions: Sessions;
  let seq = 0;
  const errors: Error[] = [];

  const count = async (table: 'session_events_fts' | 'session_events_fts_pending') =>
    Number(
      (await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(store.db)).rows[0]!.n,
    );
  const write = (session_id: string, texts: string[]) =>
    events.insert(texts.map((text) => statementEvent({ session_id, seq: seq++, text })));
  const found = async (words: string) =>
    (await sessions.list({ limit: 100, search: words })).map((s) => s.id).sort();
  before(async () => {
    fx = await storeFixture('sqlite');
    store = await Store.open({
      url: fx.url,
      dataDir: fx.dataDir,
      onBackgroundError: (err) => errors.push(err),
    });
    events = new SessionEvents(store);
    sessions = new Sessions(store);
    for (const id of ['s1', 's2', 's3', 's4', 's5']) await sessions.insert(sessionRow({ id }));
  });
  after(async () => {
    await store.close();
    await fx.cleanup();
  });

  it('queues what the recorder writes, and indexes it within a second with no search asking', async () => {
    const before = await count('session_events_fts');
    await write('s1', ['select quince from fruit', 'select medlar from fruit']);
    // Written, queued, not yet in the index: the write did not pay for it.
    assert.equal(await count('session_events_fts_pending'), 2);
    assert.equal(await count('session_events_fts'), before);
    const deadline = Date.now() + SEARCH_INDEX_DELAY_MS + 10_000;
    while ((await count('session_events_fts_pending')) > 0) {
      assert.ok(Date.now() < deadline, 'the queue was not indexed in time');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await count('session_events_fts'), before + 2);
  });

  it('indexes what still waits before a search, so a statement written a moment ago is found', async () => {
    await write('s2', ['select loquat from orchard']);
    assert.equal(await count('session_events_fts_pending'), 1);
    assert.deepEqual(await found('loquat'), ['s2']);
    assert.equal(await count('session_events_fts_pending'), 0);
  });

  it('indexes a queue longer than one batch, every row once', async () => {
    const before = await count('session_events_fts');
    const texts = Array.from(
      { length: 4_500 },
      (_, i) => `select ${i} from bulk_${i % 3 === 0 ? 'tick' : 'tock'}`,
    );
    await write('s3', texts);
    // Batches run synchronously, but the sessions' sockets are served between them.
    const order: string[] = [];
    setImmediate(() => order.push('served'));
    await searchIndexOf(store).catchUp();
    order.push('indexed');
    assert.deepEqual(order, ['served', 'indexed']);
    assert.equal(await count('session_events_fts_pending'), 0);
    assert.equal(await count('session_events_fts'), before + 4_500);
    assert.deepEqual(await found('bulk_tick'), ['s3']);
    const ticks = await sql<{
      n: number;
    }>`select count(*) as n from session_events_fts where session_events_fts match '"bulk_tick"'`.execute(
      store.db,
    );
    assert.equal(Number(ticks.rows[0]!.n), 1_500);
  });

  it('reads only the queued events for a batch, not every event recorded before them', async () => {
    const plan = await store.writeSync(
      (prepared) => prepared(`explain query plan ${INDEX_QUEUED}`).all(1_000) as Array<{ detail: string }>,
    );
    // The queue, walked by its own key; each event fetched by rowid.
    assert.deepEqual(
      plan.map((step) => step.detail),
      ['SEARCH p USING INTEGER PRIMARY KEY (rowid<?)', 'SEARCH e USING INTEGER PRIMARY KEY (rowid=?)'],
    );
  });

  it('forgets a row deleted before it was indexed, and indexes a reused rowid with its own text', async () => {
    await write('s4', ['select persimmon from tree']);
    const [gone] = (
      await sql<{ rowid: number }>`select max(rowid) as rowid from session_events`.execute(store.db)
    ).rows;
    await sql`delete from session_events where rowid = ${gone!.rowid}`.execute(store.db);
    assert.equal(await count('session_events_fts_pending'), 0);
    // The deleted row had the highest rowid: SQLite hands the same one to the next row.
    await write('s5', ['select pomelo from tree']);
    const [reused] = (
      await sql<{ rowid: number }>`select max(rowid) as rowid from session_events`.execute(store.db)
    ).rows;
    assert.equal(reused!.rowid, gone!.rowid);
    assert.deepEqual(await found('persimmon'), []);
    assert.deepEqual(await found('pomelo'), ['s5']);
    assert.deepEqual(await found('tree'), ['s5']);
  });

  it('still answers a search when indexing fails, from what is indexed, and says why', async () => {
    await write('s4', ['select jujube from shrub']);
    const [queued] = (
      await sql<{ rowid: number }>`select max(rowid) as rowid from session_events`.execute(store.db)
    ).rows;
    // A row already in the index under the queued rowid: the queue's insert fails on it.
    await sql`insert into session_events_fts (rowid, text, session_id) values (${queued!.rowid}, 'blocker', 's4')`.execute(
      store.db,
    );
    errors.length = 0;
    assert.deepEqual(await found('pomelo'), ['s5']);
    assert.deepEqual(await found('jujube'), []);
    // (The indexing timer may have failed on it too, and said so in its own words.)
    const fromSearch = errors.filter((e) => e.message.startsWith('search ran without'));
    assert.equal(fromSearch.length, 2); // one per search
    assert.match(fromSearch[0]!.message, /indexing failed: .*constraint failed/);
    // Nothing was lost: the statement is still queued, and is indexed once the fault is gone.
    assert.equal(await count('session_events_fts_pending'), 1);
    await sql`delete from session_events_fts where rowid = ${queued!.rowid}`.execute(store.db);
    assert.deepEqual(await found('jujube'), ['s4']);
  });

  it('indexes what waits when the store closes, for the next process to find', async () => {
    await write('s1', ['select tamarillo from vine']);
    await store.close();
    store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
    events = new SessionEvents(store);
    sessions = new Sessions(store);
    assert.equal(await count('session_events_fts_pending'), 0);
    const hit = await sql<{
      n: number;
    }>`select count(*) as n from session_events_fts where session_events_fts match '"tamarillo"'`.execute(
      store.db,
    );
    assert.equal(Number(hit.rows[0]!.n), 1);
  });
});

describe('migration 0014 on a store recorded before it (sqlite)', () => {
  let fx: StoreFixture;
  before(async () => {
    fx = await storeFixture('sqlite');
  });
  after(() => fx.cleanup());

  it('keeps what was indexed before searchable, queues what is written after, and can run again', async () => {
    // A store left at 0013, where the insert trigger indexed each statement at once.
    const early = Store.connect({ url: fx.url, dataDir: fx.dataDir });
    const migrated = await new Migrator({ db: early.db, provider: migrationProvider('sqlite') }).migrateTo(
      '0013_terminal_recordings',
    );
    assert.equal(migrated.error, undefined);
    await new Sessions(early).insert(sessionRow({ id: 'old' }));
    await new SessionEvents(early).insert([
      statementEvent({ session_id: 'old', seq: 0, text: 'select durian from stall' }),
    ]);
    await early.close();

    const store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
    try {
      const triggers = await sql<{
        name: string;
      }>`select name from sqlite_master where type = 'trigger' and tbl_name = 'session_events' order by name`.execute(
        store.db,
      );
      assert.deepEqual(
        triggers.rows.map((t) => t.name),
        ['session_events_fts_delete', 'session_events_fts_queue'],
      );
      const sessions = new Sessions(store);
      await sessions.insert(sessionRow({ id: 'new' }));
      await new SessionEvents(store).insert([
        statementEvent({ session_id: 'new', seq: 0, text: 'select durian from cart' }),
      ]);
      const pending = await sql<{ n: number }>`select count(*) as n from session_events_fts_pending`.execute(
        store.db,
      );
      assert.equal(Number(pending.rows[0]!.n), 1);
      const found = async (words: string) =>
        (await sessions.list({ limit: 10, search: words })).map((s) => s.id).sort();
      assert.deepEqual(await found('durian'), ['new', 'old']);
      assert.deepEqual(await found('stall'), ['old']);

      // Interrupted and run again, it completes without an error and changes nothing.
      const migrations = await migrationProvider('sqlite').getMigrations();
      await migrations['0014_search_index_queue']!.up(store.db as unknown as Kysely<unknown>);
      assert.deepEqual(await found('durian'), ['new', 'old']);
    } finally {
      await store.close();
    }
  });
});
