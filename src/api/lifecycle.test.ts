import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DIALECTS } from '../testing/dialects.js';
import { type Gateway, startGateway } from '../testing/gateway.js';

for (const dialect of DIALECTS) {
  describe(`gateway start and stop (${dialect})`, () => {
    let gw: Gateway;
    after(async () => gw?.close());

    it('records its start, and on SIGTERM records its stop and signs the final tail', async () => {
      // A long checkpoint interval: only the shutdown can have signed the tail.
      gw = await startGateway(dialect, {
        config: { audit: { checkpoint_every: 1000, checkpoint_interval: '1h' } },
      });
      const created = await gw.api('POST', '/api/keys', { body: { name: 'lifecycle-bot' } });
      assert.equal(created.status, 201, created.text);
      gw.credential((created.body as { key: string }).key);
      await gw.stop();
      assert.equal(gw.proc.child.exitCode, 0, gw.proc.logs());

      const store = gw.openStore();
      try {
        const records = await store.db
          .selectFrom('audit_log')
          .select(['seq', 'type'])
          .orderBy('seq')
          .execute();
        const types = records.map((r) => r.type);
        assert.deepEqual(types.slice(0, 3), ['config.loaded', 'key.created', 'gateway.started']);
        assert.equal(types.at(-1), 'gateway.stopped');
        const last = await store.db
          .selectFrom('audit_checkpoints')
          .select('seq')
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow();
        assert.equal(
          Number(last.seq),
          Number(records.at(-1)!.seq),
          'the last record written is covered by a signature',
        );
      } finally {
        await store.close();
      }
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
