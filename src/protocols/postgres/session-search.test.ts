import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SessionView } from '../../store/sessions.js';
import { DIALECTS } from '../../testing/dialects.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia } from '../../testing/run.js';

for (const dialect of DIALECTS) {
  describe(`finding a session by what it ran (store: ${dialect})`, () => {
    let db: ThrowawayDb;
    let gw: Gateway;
    let key: string;

    before(async () => {
      db = await createThrowawayDb();
      gw = await startGateway(dialect, { config: { connections: [pgConnection(db.name, 'app-db')] } });
      const created = await gw.cli(['keys', 'create', '--name', 'alice']);
      assert.equal(created.code, 0, created.stderr);
      key = gw.credential(created.stdout.trim());
    });
    after(async () => {
      await gw?.close();
      await db?.drop();
    });

    it('finds the psql session by a word of a statement it ran, and only that one', async () => {
      assert.ok(gw.proc.postgres);
      const listener = { port: gw.proc.postgres.port, password: key, database: 'app-db' };
      const marked = await psqlVia(listener, ['-c', "select 'Zanzibar-Quokka' as marker"]);
      assert.equal(marked.code, 0, marked.stderr);
      const plain = await psqlVia(listener, ['-c', 'select 42']);
      assert.equal(plain.code, 0, plain.stderr);

      // Statement events are written in batches off the hot path: poll until the word is found.
      const deadline = Date.now() + 10_000;
      let found: SessionView[] = [];
      while (Date.now() < deadline) {
        const res = await gw.api('GET', '/api/sessions?q=quokka%20ZANZIBAR&connection=app-db');
        assert.equal(res.status, 200, res.text);
        found = (res.body as { sessions: SessionView[] }).sessions;
        if (found.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(found.length, 1, 'one session ran the marked statement');
      assert.deepEqual([found[0]!.subject, found[0]!.connection], ['alice', 'app-db']);
      const all = await gw.api('GET', '/api/sessions?connection=app-db');
      assert.equal(
        (all.body as { sessions: SessionView[] }).sessions.length,
        2,
        'both psql sessions were recorded',
      );
      const mine = await gw.api('GET', '/api/sessions?q=zanzibar', { token: key });
      assert.deepEqual(
        (mine.body as { sessions: SessionView[] }).sessions.map((s) => s.id),
        [found[0]!.id],
      );
    });
  });
}
