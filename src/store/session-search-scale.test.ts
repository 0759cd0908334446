import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CompiledQuery } from 'kysely';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { statementEvent } from '../testing/session-rows.js';
import { type SessionEvent, SessionEvents } from './session-events.js';
import { type SessionFilter, Sessions, type SessionView } from './sessions.js';
import { Store } from './store.js';

const COUNT = 100_000;
const BASE = Date.parse('2026-01-01T00:00:00.000Z');
/** Ids sort opposite to their index, and every 1000th pair shares a start: the tie-break is exercised. */
const idOf = (i: number) => `s${String(COUNT - i).padStart(6, '0')}`;
const startOf = (i: number) => new Date(BASE + (i - (i % 1000 === 1 ? 1 : 0)) * 1000).toISOString();
const connectionOf = (i: number) => `conn${i % 10}`;

/** Seeds COUNT sessions in multi-row inserts (one row per session), then every 100th gets events. */
async function seed(store: Store): Promise<void> {
  const BATCH = 1000;
  for (let from = 0; from < COUNT; from += BATCH) {
    const rows = [];
    for (let i = from; i < from + BATCH; i++) {
      rows.push({
        id: idOf(i),
        subject: `user${i % 100}`,
        kind: 'human',
        root_subject: `user${i % 100}`,
        chain_json: JSON.stringify(i % 7 === 0 ? [`agent${i % 3}`] : []),
        token_id: null,
        parent_session_id: null,
        connection_name: connectionOf(i),
        protocol: 'postgres',
        client_addr: null,
        status: i % 3 === 0 ? 'active' : 'closed',
        started_at: startOf(i),
        ended_at: null,
        kill_requested: null,
        parent_token_id: null,
        traceparent: null,
        application: null,
        end_reason: null,
        orphaned_at: null,
        gateway_id: null,
      });
    }
    await store.db.insertInto('sessions').values(rows).execute();
  }
  const events: SessionEvent[] = [];
  for (let i = 0; i < COUNT; i += 100) {
    events.push(
      statementEvent({
        session_id: idOf(i),
        seq: 1,
        time: startOf(i),
        // One rare word per thousand sessions, one common to all of them.
        text: `select * from ledger where marker = 'needle${i / 100}'`,
        decision: i % 5000 === 0 ? 'deny' : 'allow',
      }),
    );
  }
  await new SessionEvents(store).insert(events);
}

/** Every page of a listing, 500 at a time, by the keyset cursor. */
async function walk(sessions: Sessions, f: Partial<SessionFilter>): Promise<SessionView[]> {
  const all: SessionView[] = [];
  let after: SessionFilter['after'];
  for (;;) {
    const page = await sessions.list({ ...f, limit: 500, after });
    all.push(...page);
    if (page.length < 500) return all;
    const last = page.at(-1)!;
    after = { started_at: last.started_at, id: last.id };
  }
}

function assertNewestFirst(rows: SessionView[]): void {
  for (let k = 1; k < rows.length; k++) {
    const [a, b] = [rows[k - 1]!, rows[k]!];
    assert.ok(
      a.started_at > b.started_at || (a.started_at === b.started_at && a.id > b.id),
      `${a.id} then ${b.id}`,
    );
  }
}

for (const dialect of DIALECTS) {
  describe(`session listing at 100,000 sessions (${dialect})`, () => {
    let fx: StoreFixture;
    let store: Store;
    let sessions: Sessions;

    before(async () => {
      fx = await storeFixture(dialect);
      store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
      sessions = new Sessions(store);
      await seed(store);
    });
    after(async () => {
      await store?.close();
      await fx?.cleanup();
    });

    it('pages through every session exactly once, newest first', async () => {
      const rows = await walk(sessions, {});
      assert.equal(rows.length, COUNT);
      assert.equal(new Set(rows.map((s) => s.id)).size, COUNT);
      assertNewestFirst(rows);
    });

    it('pages through a filtered listing: exactly the matching sessions', async () => {
      const rows = await walk(sessions, { connection: 'conn3', status: 'active' });
      const expected = [];
      for (let i = 0; i < COUNT; i++) if (connectionOf(i) === 'conn3' && i % 3 === 0) expected.push(idOf(i));
      assert.deepEqual(rows.map((s) => s.id).sort(), expected.sort());
      assertNewestFirst(rows);
    });

    it('finds the one session by a rare word, and the flagged ones', async () => {
      const found = await sessions.list({ limit: 10, search: 'NEEDLE777' });
      assert.deepEqual(
        found.map((s) => s.id),
        [idOf(77_700)],
      );
      const common = await walk(sessions, { search: 'ledger marker' });
      assert.equal(common.length, COUNT / 100);
      const denied = await walk(sessions, { flagged: 'denied' });
      assert.deepEqual(
        denied.map((s) => s.id).sort(),
        Array.from({ length: COUNT / 5000 }, (_, k) => idOf(k * 5000)).sort(),
      );
      const agents = await sessions.list({ limit: 3, agent: 'agent1', root: 'user7' });
      assert.ok(
        agents.length > 0 && agents.every((s) => s.chain[0] === 'agent1' && s.root_subject === 'user7'),
      );
    });

    if (dialect === 'sqlite') {
      it('reads a page by an index in listing order, without sorting the table', async () => {
        const first = (await sessions.list({ limit: 1 }))[0]!;
        const filters: Array<Partial<SessionFilter>> = [
          {},
          { after: { started_at: first.started_at, id: first.id } },
          { connection: 'conn3' },
          { status: 'active', after: { started_at: first.started_at, id: first.id } },
        ];
        for (const f of filters) {
          const listing = sessions.listingSql({ limit: 50, ...f });
          assert.ok(listing);
          const plan = await store.db.executeQuery<{ detail: string }>(
            CompiledQuery.raw(`explain query plan ${listing.sql}`, [...listing.parameters]),
          );
          const details = plan.rows.map((r) => r.detail).join('\n');
          assert.match(details, /USING (COVERING )?INDEX sessions_/, `${JSON.stringify(f)}:\n${details}`);
          assert.doesNotMatch(details, /TEMP B-TREE|SCAN sessions$/m, `${JSON.stringify(f)}:\n${details}`);
        }
      });
    }
  });
}
