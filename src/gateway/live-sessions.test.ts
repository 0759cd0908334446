import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Sessions } from '../store/sessions.js';
import { Store } from '../store/store.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { LiveSessions } from './live-sessions.js';

const row = (id: string, status = 'active') => ({
  id,
  subject: 'alice',
  kind: 'service',
  root_subject: 'alice',
  chain: [],
  token_id: null,
  parent_session_id: null,
  connection: 'app-db',
  protocol: 'postgres',
  client_addr: null,
  status,
  started_at: new Date().toISOString(),
  ended_at: null,
});

for (const dialect of DIALECTS) {
  describe(`live sessions and kills asked through another gateway (${dialect})`, () => {
    let fx: StoreFixture;
    let store: Store;
    let sessions: Sessions;
    before(async () => {
      fx = await storeFixture(dialect);
      store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
      sessions = new Sessions(store);
    });
    after(async () => {
      await store?.close();
      await fx?.cleanup();
    });

    it('kills a session carried here at once, and says false for one it does not carry', () => {
      const live = new LiveSessions();
      const killed: string[] = [];
      live.add('s-here', (m) => killed.push(m));
      assert.equal(live.kill('s-elsewhere', 'bye'), false);
      assert.equal(live.kill('s-here', 'bye'), true);
      assert.deepEqual([killed, live.size], [['bye'], 0]);
    });

    it('ends a session flagged in the store by another gateway on its next poll', async () => {
      await sessions.insert(row('s-flagged'));
      await sessions.insert(row('s-closed', 'closed'));
      assert.equal(await sessions.requestKill('s-closed', 'nope'), false, 'only active sessions');
      assert.equal(await sessions.requestKill('s-flagged', 'terminated by bob'), true);
      const live = new LiveSessions();
      const killed = new Promise<string>((resolve) => live.add('s-flagged', resolve));
      live.add('s-untouched', () => assert.fail('a session nobody flagged was killed'));
      live.watch(sessions, 50, (err) => assert.fail(err));
      // The poll timer is unref'd (it must not keep a gateway alive); hold the loop open meanwhile.
      const hold = setTimeout(() => undefined, 10_000);
      try {
        assert.equal(await killed, 'terminated by bob');
        assert.equal(live.size, 1);
      } finally {
        clearTimeout(hold);
        live.stop();
      }
    });
  });
}
