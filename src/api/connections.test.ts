import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConnectionView } from '../config/connection.js';
import { Keyring, sealKeySource } from '../crypto/seal.js';
import { Connections } from '../store/connections.js';
import { DIALECTS } from '../testing/dialects.js';
import { configFileConnection, errorOf, type Gateway, startGateway } from '../testing/gateway.js';

const CONFIG_PASSWORD = 'cfg-Pw-8c1e5d9b7a';
const PASSWORD = 'orders-Pw-4f2a9c71e3';
const NEW_PASSWORD = 'orders-Pw-rotated-0b6d2e';

const orders = {
  name: 'orders',
  protocol: 'postgres',
  target: { host: 'db-1.internal', port: 5432, database: 'orders' },
  tags: ['prod'],
  credentials: { user: 'app', password: PASSWORD },
};

for (const dialect of DIALECTS) {
  describe(`connections through the API (${dialect})`, () => {
    let gw: Gateway;

    before(async () => {
      gw = await startGateway(
        dialect,
        configFileConnection(CONFIG_PASSWORD, { port: 5433, database: 'billing' }),
      );
      gw.secret(CONFIG_PASSWORD);
      gw.secret(PASSWORD);
      gw.secret(NEW_PASSWORD);
    });
    after(async () => gw?.close());

    it('creates, lists, shows, patches and deletes a connection without ever returning its password', async () => {
      const created = await gw.api('POST', '/api/connections', { body: orders });
      assert.equal(created.status, 201, created.text);
      const view = created.body as ConnectionView;
      assert.deepEqual(
        [view.name, view.source, view.tags, view.credentials],
        ['orders', 'api', ['prod'], { user: 'app', has_password: true }],
      );

      const list = await gw.api('GET', '/api/connections');
      assert.equal(list.status, 200);
      const names = (list.body as { connections: ConnectionView[] }).connections.map((c) => c.name);
      assert.deepEqual(names, ['billing', 'orders']);

      const one = await gw.api('GET', '/api/connections/orders');
      assert.equal(one.status, 200);
      assert.equal((one.body as ConnectionView).target.database, 'orders');

      const patched = await gw.api('PATCH', '/api/connections/orders', {
        body: {
          target: { host: 'db-2.internal', port: 6432, database: 'orders' },
          tags: ['prod', 'eu'],
          credentials: { password: NEW_PASSWORD },
        },
      });
      assert.equal(patched.status, 200, patched.text);
      const after = patched.body as ConnectionView;
      assert.deepEqual(
        [after.target.host, after.target.port, after.tags],
        ['db-2.internal', 6432, ['prod', 'eu']],
      );
      assert.equal(after.credentials.has_password, true);

      const scratch = await gw.api('POST', '/api/connections', {
        body: { name: 'scratch', protocol: 'http', target: { host: 'example.internal', port: 8080 } },
      });
      assert.equal(scratch.status, 201, scratch.text);
      const removed = await gw.api('DELETE', '/api/connections/scratch');
      assert.equal(removed.status, 200, removed.text);
      assert.equal((await gw.api('GET', '/api/connections/scratch')).status, 404);
      assert.equal((await gw.api('DELETE', '/api/connections/scratch')).status, 404);

      const updated = await gw.waitForAudit('connection.updated', (r) => r.target === 'connection:orders');
      assert.equal(updated.payload.password_changed, true);
      assert.ok((updated.payload.changed as string[]).includes('credentials'));
    });

    it('refuses names that are not DNS labels with a message naming the rule', async () => {
      for (const name of ['Orders', 'orders_db', '-orders', 'a'.repeat(64), '']) {
        const res = await gw.api('POST', '/api/connections', { body: { ...orders, name } });
        assert.equal(res.status, 400, `${name}: ${res.text}`);
        const error = errorOf(res);
        assert.equal(error.code, 'validation_failed');
        assert.match(error.message, /body\.name: expected a DNS-label-like name/);
      }
      const byPath = await gw.api('GET', '/api/connections/Not_A_Label');
      assert.equal(byPath.status, 400);
      assert.match(errorOf(byPath).message, /params\.name: expected a DNS-label-like name/);
    });

    it('answers 409 for a duplicate name', async () => {
      const res = await gw.api('POST', '/api/connections', { body: orders });
      assert.equal(res.status, 409);
      assert.deepEqual(errorOf(res), { code: 'conflict', message: 'connection "orders" already exists' });
      const clash = await gw.api('POST', '/api/connections', { body: { ...orders, name: 'billing' } });
      assert.equal(clash.status, 409);
    });

    it('shows config-file connections with source config and refuses to change them through the API', async () => {
      const res = await gw.api('GET', '/api/connections/billing');
      assert.equal(res.status, 200);
      const billing = res.body as ConnectionView;
      assert.equal(billing.source, 'config');
      assert.deepEqual(billing.credentials, { user: 'billing', has_password: true });

      const patch = await gw.api('PATCH', '/api/connections/billing', { body: { description: 'mine now' } });
      assert.equal(patch.status, 409);
      assert.match(errorOf(patch).message, /"billing" is defined in the config file; change it there/);
      const del = await gw.api('DELETE', '/api/connections/billing');
      assert.equal(del.status, 409);
      assert.match(errorOf(del).message, /remove it there/);
      const still = (await gw.api('GET', '/api/connections/billing')).body as ConnectionView;
      assert.equal(still.description, '');
    });

    it('stores passwords sealed, never in plaintext', async () => {
      const store = gw.openStore();
      try {
        const rows = await store.db.selectFrom('connections').selectAll().orderBy('name').execute();
        assert.deepEqual(
          rows.map((r) => r.name),
          ['billing', 'orders'],
        );
        for (const row of rows) {
          assert.match(row.secret_sealed ?? '', /^v1\.[0-9a-f]{12}\./);
          const raw = JSON.stringify(row);
          for (const p of [PASSWORD, NEW_PASSWORD, CONFIG_PASSWORD])
            assert.ok(!raw.includes(p), `${row.name} row`);
        }
      } finally {
        await store.close();
      }
    });

    it('lets no password, API key or token reach the process log (gateway stopped)', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });

    it('opens the sealed passwords with the seal key in the data dir', async () => {
      const keyring = new Keyring(
        sealKeySource({
          env: {},
          configuredFile: undefined,
          defaultFile: join(gw.store.dataDir, 'seal.key'),
        }),
      );
      const store = gw.openStore();
      try {
        const connections = new Connections(store, keyring);
        assert.deepEqual(await connections.credentials('orders'), { user: 'app', password: NEW_PASSWORD });
        assert.deepEqual(await connections.credentials('billing'), {
          user: 'billing',
          password: CONFIG_PASSWORD,
        });
      } finally {
        await store.close();
      }
    });
  });
}
