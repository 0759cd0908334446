import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { statementEvent } from '../testing/session-rows.js';
import { type SessionEvent, SessionEvents } from './session-events.js';
import { type NewSession, type SessionFilter, Sessions } from './sessions.js';
import { Store } from './store.js';

const BASE = Date.parse('2026-03-01T12:00:00.000Z');
const at = (minute: number) => new Date(BASE + minute * 60_000).toISOString();

function session(
  id: string,
  minute: number,
  who: { subject: string; root: string; chain: string[] },
  where: { connection: string; protocol: string; status: string },
): NewSession {
  return {
    id,
    subject: who.subject,
    kind: who.chain.length > 0 ? 'agent' : 'human',
    root_subject: who.root,
    chain: who.chain,
    token_id: null,
    parent_session_id: null,
    connection: where.connection,
    protocol: where.protocol,
    client_addr: null,
    status: where.status,
    started_at: at(minute),
    ended_at: null,
  };
}

const PG_ORDERS = { connection: 'orders', protocol: 'postgres', status: 'closed' };
const SESSIONS: NewSession[] = [
  session('s1', 10, { subject: 'alice', root: 'alice', chain: [] }, PG_ORDERS),
  session('s2', 20, { subject: 'a', root: 'alice', chain: ['a'] }, { ...PG_ORDERS, status: 'active' }),
  session(
    's3',
    30,
    { subject: 'ab', root: 'bob', chain: ['ab'] },
    { connection: 'billing', protocol: 'http', status: 'killed' },
  ),
  session('s4', 40, { subject: 'bob', root: 'bob', chain: [] }, { ...PG_ORDERS, connection: 'billing' }),
  // s5 and s6 start at the same instant: the id breaks the tie, and paging must not skip one.
  session('s5', 50, { subject: 'a', root: 'carol', chain: ['planner', 'a'] }, PG_ORDERS),
  session('s6', 50, { subject: 'carol', root: 'carol', chain: [] }, PG_ORDERS),
];

const STATEMENTS: Array<[string, string, SessionEvent['decision']]> = [
  ['s1', 'SELECT * FROM Orders WHERE id = 1', 'allow'],
  ['s2', 'delete from orders', 'deny'],
  ['s2', 'select 1', 'allow'],
  ['s3', 'GET /invoices?paid=true', 'review'],
  ['s4', `select name from customers -- it's "quoted"`, 'allow'],
  ['s5', 'update Orders set paid = true', 'allow'],
  ['s6', 'select now()', 'allow'],
];

for (const dialect of DIALECTS) {
  describe(`session listing: filters, search and pages (${dialect})`, () => {
    let fx: StoreFixture;
    let store: Store;
    let sessions: Sessions;
    const ids = async (f: Partial<SessionFilter>) =>
      (await sessions.list({ limit: 100, ...f })).map((s) => s.id);

    before(async () => {
      fx = await storeFixture(dialect);
      store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
      sessions = new Sessions(store);
      for (const s of SESSIONS) await sessions.insert(s);
      await new SessionEvents(store).insert(
        STATEMENTS.map(([session_id, text, decision], seq) =>
          statementEvent({ session_id, seq, text, decision, time: at(60) }),
        ),
      );
    });
    after(async () => {
      await store?.close();
      await fx?.cleanup();
    });

    it('lists newest first, ties broken by id', async () => {
      assert.deepEqual(await ids({}), ['s6', 's5', 's4', 's3', 's2', 's1']);
    });

    it('narrows by each filter', async () => {
      assert.deepEqual(await ids({ root: 'alice' }), ['s2', 's1']);
      assert.deepEqual(await ids({ subject: 'a' }), ['s5', 's2']);
      assert.deepEqual(await ids({ connection: 'billing' }), ['s4', 's3']);
      assert.deepEqual(await ids({ protocol: 'http' }), ['s3']);
      assert.deepEqual(await ids({ status: 'active' }), ['s2']);
      assert.deepEqual(await ids({ since: at(40) }), ['s6', 's5', 's4']);
      assert.deepEqual(await ids({ until: at(20) }), ['s2', 's1']);
      assert.deepEqual(await ids({ since: at(20), until: at(30) }), ['s3', 's2']);
      assert.deepEqual(await ids({ flagged: 'denied' }), ['s2']);
      assert.deepEqual(await ids({ flagged: 'held' }), ['s3']);
      assert.deepEqual(await ids({ connection: 'orders', status: 'closed', root: 'carol' }), ['s6', 's5']);
    });

    it('matches an agent by its exact name anywhere in the chain, never a longer name', async () => {
      assert.deepEqual(await ids({ agent: 'a' }), ['s5', 's2']);
      assert.deepEqual(await ids({ agent: 'ab' }), ['s3']);
      assert.deepEqual(await ids({ agent: 'planner' }), ['s5']);
      assert.deepEqual(await ids({ agent: 'A' }), []);
      assert.deepEqual(await ids({ agent: '%' }), []);
      assert.deepEqual(await ids({ agent: '"a"' }), []);
    });

    it('searches statements: every word must occur, in any case', async () => {
      assert.deepEqual(await ids({ search: 'orders' }), ['s5', 's2', 's1']);
      assert.deepEqual(await ids({ search: 'ORDERS paid' }), ['s5']);
      assert.deepEqual(await ids({ search: 'orders  invoices' }), []);
      assert.deepEqual(await ids({ search: 'Invoices' }), ['s3']);
      assert.deepEqual(await ids({ search: 'orders', flagged: 'denied' }), ['s2']);
    });

    it('never fails on punctuation, quotes or search syntax in the words', async () => {
      for (const search of ['', '   ', `"'!;`, '*', '(', 'NEAR(', '"', `'`, '\\', '-']) {
        assert.deepEqual(await ids({ search }), [], `search ${JSON.stringify(search)}`);
      }
      assert.deepEqual(await ids({ search: `it's "quoted"` }), ['s4']);
      assert.deepEqual(await ids({ search: 'orders OR invoices' }), []);
      assert.deepEqual(await ids({ search: 'orders AND NOT paid' }), []);
      assert.deepEqual(await ids({ search: 'paid*' }), ['s5', 's3']);
    });

    it('pages of two walk every session once, in order', async () => {
      const seen: string[] = [];
      let after: SessionFilter['after'];
      for (let page = 0; page < 10; page++) {
        const rows = await sessions.list({ limit: 2, after });
        if (rows.length === 0) break;
        seen.push(...rows.map((s) => s.id));
        const last = rows.at(-1)!;
        after = { started_at: last.started_at, id: last.id };
      }
      assert.deepEqual(seen, ['s6', 's5', 's4', 's3', 's2', 's1']);
    });

    it('keeps a user to their own sessions through every filter and search', async () => {
      assert.deepEqual(await ids({ visibleTo: 'bob' }), ['s4', 's3']);
      assert.deepEqual(await ids({ visibleTo: 'bob', search: 'orders' }), []);
      assert.deepEqual(await ids({ visibleTo: 'bob', agent: 'a' }), []);
      assert.deepEqual(await ids({ visibleTo: 'bob', root: 'alice' }), []);
      assert.deepEqual(await ids({ visibleTo: 'bob', flagged: 'denied' }), []);
      assert.deepEqual(await ids({ visibleTo: 'alice', search: 'orders' }), ['s2', 's1']);
      assert.deepEqual(await ids({ visibleTo: 'a' }), ['s5', 's2']);
    });
  });
}
