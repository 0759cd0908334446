import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SessionEvents } from '../store/session-events.js';
import { type NewSession, Sessions, type SessionView } from '../store/sessions.js';
import { DIALECTS } from '../testing/dialects.js';
import { errorOf, type Gateway, startGateway } from '../testing/gateway.js';
import { statementEvent } from '../testing/session-rows.js';

interface Listing {
  sessions: SessionView[];
  next: string | null;
}

function session(id: string, subject: string, root: string, chain: string[], minutesAgo: number): NewSession {
  return {
    id,
    subject,
    kind: chain.length > 0 ? 'agent' : 'human',
    root_subject: root,
    chain,
    token_id: null,
    parent_session_id: null,
    connection: id.endsWith('http') ? 'web' : 'orders',
    protocol: id.endsWith('http') ? 'http' : 'postgres',
    client_addr: null,
    status: 'closed',
    started_at: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    ended_at: null,
  };
}

const SESSIONS = [
  session('alice-1', 'alice', 'alice', [], 50),
  session('alice-bot', 'bot', 'alice', ['bot'], 40),
  session('bob-1', 'bob', 'bob', [], 30),
  session('bob-bot-http', 'bot', 'bob', ['bot'], 20),
  session('bob-2', 'bob', 'bob', [], 10),
];

for (const dialect of DIALECTS) {
  describe(`GET /api/sessions filters, search and cursor (${dialect})`, () => {
    let gw: Gateway;
    let bobKey: string;
    const list = async (query: string, token?: string) => {
      const res = await gw.api('GET', `/api/sessions?${query}`, token ? { token } : {});
      assert.equal(res.status, 200, res.text);
      return res.body as Listing;
    };
    const ids = async (query: string, token?: string) => (await list(query, token)).sessions.map((s) => s.id);

    before(async () => {
      gw = await startGateway(dialect);
      const res = await gw.api('POST', '/api/keys', { body: { name: 'bob', groups: ['staff'] } });
      assert.equal(res.status, 201, res.text);
      bobKey = gw.credential((res.body as { key: string }).key);
      const store = gw.openStore();
      try {
        const sessions = new Sessions(store);
        for (const s of SESSIONS) await sessions.insert(s);
        await new SessionEvents(store).insert([
          statementEvent({ seq: 1, session_id: 'alice-1', text: 'select * from payroll', decision: 'allow' }),
          statementEvent({ seq: 2, session_id: 'alice-bot', text: 'drop table payroll', decision: 'deny' }),
          statementEvent({
            seq: 3,
            session_id: 'bob-1',
            text: 'select * from Payroll where month = 3',
            decision: 'review',
          }),
          statementEvent({ seq: 4, session_id: 'bob-2', text: 'select 1', decision: 'allow' }),
        ]);
      } finally {
        await store.close();
      }
    });
    after(async () => gw?.close());

    it('narrows by root, agent, protocol, time, flagged and search', async () => {
      assert.deepEqual(await ids('root=alice'), ['alice-bot', 'alice-1']);
      assert.deepEqual(await ids('agent=bot'), ['bob-bot-http', 'alice-bot']);
      assert.deepEqual(await ids('agent=bo'), []);
      assert.deepEqual(await ids('protocol=http'), ['bob-bot-http']);
      assert.deepEqual(await ids('since=25m'), ['bob-2', 'bob-bot-http']);
      assert.deepEqual(
        await ids(`until=${encodeURIComponent(new Date(Date.now() - 35 * 60_000).toISOString())}`),
        ['alice-bot', 'alice-1'],
      );
      assert.deepEqual(await ids('flagged=denied'), ['alice-bot']);
      assert.deepEqual(await ids('flagged=held'), ['bob-1']);
      assert.deepEqual(await ids('q=PAYROLL'), ['bob-1', 'alice-bot', 'alice-1']);
      assert.deepEqual(await ids('q=payroll%20month'), ['bob-1']);
      assert.deepEqual(await ids(`q=${encodeURIComponent(`"'); --`)}`), []);
    });

    it('pages of two by the next cursor walk every session once, then say there is no more', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Listing = await list(`limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        seen.push(...page.sessions.map((s) => s.id));
        cursor = page.next;
      } while (cursor);
      assert.deepEqual(seen, ['bob-2', 'bob-bot-http', 'bob-1', 'alice-bot', 'alice-1']);
    });

    it('answers 400 for a cursor it did not issue, an unknown flag or a bad time', async () => {
      for (const query of ['cursor=nonsense', 'flagged=maybe', 'since=yesterday-ish']) {
        const res = await gw.api('GET', `/api/sessions?${query}`);
        assert.equal(res.status, 400, `${query}: ${res.text}`);
      }
      assert.match(errorOf(await gw.api('GET', '/api/sessions?cursor=nonsense')).message, /^cursor: /);
    });

    it("never shows a user someone else's session through a filter or a search", async () => {
      assert.deepEqual(await ids('', bobKey), ['bob-2', 'bob-bot-http', 'bob-1']);
      for (const query of ['root=alice', 'q=payroll', 'flagged=denied', 'agent=bot', 'subject=alice']) {
        const visible = await ids(query, bobKey);
        assert.ok(
          visible.every((id) => id.startsWith('bob-')),
          `${query}: ${visible}`,
        );
      }
      assert.deepEqual(await ids('q=payroll', bobKey), ['bob-1']);
      assert.deepEqual(await ids('agent=bot', bobKey), ['bob-bot-http']);
    });

    it('sessions ls takes the same filters and prints the next cursor on stderr', async () => {
      const first = await gw.cli([
        'sessions',
        'ls',
        '--json',
        '--limit',
        '1',
        '--search',
        'payroll',
        '--root',
        'alice',
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(
        (JSON.parse(first.stdout) as SessionView[]).map((s) => s.id),
        ['alice-bot'],
      );
      const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
      assert.ok(cursor, first.stderr);
      const second = await gw.cli([
        'sessions',
        'ls',
        '--json',
        '--limit',
        '1',
        '--search',
        'payroll',
        '--root',
        'alice',
        '--cursor',
        cursor,
      ]);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(
        (JSON.parse(second.stdout) as SessionView[]).map((s) => s.id),
        ['alice-1'],
      );
      assert.doesNotMatch(second.stderr, /--cursor/);
      const flagged = await gw.cli([
        'sessions',
        'ls',
        '--json',
        '--flagged',
        'held',
        '--since',
        '1h',
        '--protocol',
        'postgres',
      ]);
      assert.equal(flagged.code, 0, flagged.stderr);
      assert.deepEqual(
        (JSON.parse(flagged.stdout) as SessionView[]).map((s) => s.id),
        ['bob-1'],
      );
      const agent = await gw.cli([
        'sessions',
        'ls',
        '--json',
        '--agent',
        'bot',
        '--status',
        'closed',
        '--until',
        '15m',
      ]);
      assert.equal(agent.code, 0, agent.stderr);
      assert.deepEqual(
        (JSON.parse(agent.stdout) as SessionView[]).map((s) => s.id),
        ['bob-bot-http', 'alice-bot'],
      );
    });
  });
}
