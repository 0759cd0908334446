import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../audit/record.js';
import { Keyring, sealKeySource } from '../crypto/seal.js';
import { Connections } from '../store/connections.js';
import { Meta } from '../store/meta.js';
import { TOKENIZE_KEY_META } from '../store/tokenize-key.js';
import { DIALECTS } from '../testing/dialects.js';
import { configFileConnection, type Gateway, startGateway } from '../testing/gateway.js';
import { api, startWarden } from '../testing/warden-process.js';

const CONFIG_PASSWORD = 'cfg-Pw-rot-6a0e2c4d';
const PASSWORD = 'api-Pw-rot-1b9f7e3a';
const NEW_PASSWORD = 'api-Pw-rot-changed-58c1';

/** The id of the key in a key file, as the keyring computes it. */
function keyIdOf(file: string): string {
  return new Keyring({ kind: 'env', current: readFileSync(file, 'utf8'), previous: [] }).currentId;
}

for (const dialect of DIALECTS) {
  describe(`warden keys rotate-seal (${dialect})`, () => {
    let gw: Gateway;
    let sealKey: string;
    let token: string;
    const tokenizing = {
      rules: [{ name: 'tokenize-emails', effect: 'mask', mask: { columns: ['*.email'], style: 'tokenize' } }],
    };

    /** The masking token a gateway makes for one email address, through the explain endpoint. */
    async function tokenOf(url: string, email: string): Promise<string> {
      const res = await api(url, 'POST', '/api/policy/test', {
        token: gw.adminKey,
        body: {
          connection: 'orders',
          command: 'SELECT email FROM users',
          as: { subject: 'alice' },
          sample: { columns: ['users.email'], rows: [[email]] },
        },
      });
      assert.equal(res.status, 200, res.text);
      const value = (res.body as { masked_sample: { rows: string[][] } }).masked_sample.rows[0]?.[0];
      assert.ok(value);
      return value;
    }

    /** key id of every sealed secret in the store, by connection name. */
    async function sealedUnder(): Promise<Record<string, string | undefined>> {
      const store = gw.openStore();
      try {
        const rows = await store.db.selectFrom('connections').select(['name', 'secret_sealed']).execute();
        return Object.fromEntries(rows.map((r) => [r.name, Keyring.keyIdOf(r.secret_sealed ?? '')]));
      } finally {
        await store.close();
      }
    }

    /** The passwords as the gateway would open them, with the key files in the data dir. */
    async function opened(): Promise<Record<string, string | null>> {
      const keyring = new Keyring(
        sealKeySource({ env: {}, configuredFile: undefined, defaultFile: sealKey }),
      );
      const store = gw.openStore();
      try {
        const connections = new Connections(store, keyring);
        return {
          billing: (await connections.credentials('billing')).password,
          orders: (await connections.credentials('orders')).password,
        };
      } finally {
        await store.close();
      }
    }

    before(async () => {
      const fixture = configFileConnection(CONFIG_PASSWORD);
      gw = await startGateway(dialect, { ...fixture, config: { ...fixture.config, policy: tokenizing } });
      for (const s of [CONFIG_PASSWORD, PASSWORD, NEW_PASSWORD]) gw.secret(s);
      sealKey = join(gw.store.dataDir, 'seal.key');
      const created = await gw.api('POST', '/api/connections', {
        body: {
          name: 'orders',
          protocol: 'postgres',
          target: { host: 'db.internal', port: 5432 },
          credentials: { user: 'app', password: PASSWORD },
        },
      });
      assert.equal(created.status, 201, created.text);
    });
    after(async () => gw?.close());

    it('re-seals every secret under a new key while the gateway runs, keeping the old key file', async () => {
      token = await tokenOf(gw.url, 'alice@example.com');
      assert.match(token, /^tok_[0-9a-f]{16}$/);
      const first = keyIdOf(sealKey);
      assert.deepEqual(await sealedUnder(), { billing: first, orders: first });

      const res = await gw.cli(['keys', 'rotate-seal', '--config', gw.proc.configFile], { token: null });
      assert.equal(res.code, 0, res.stderr);
      const second = keyIdOf(sealKey);
      assert.notEqual(second, first);
      assert.equal(
        res.stdout,
        `re-sealed 2 of 2 secret(s) under key ${second} (previous key kept in ${sealKey}.old)\n`,
      );
      assert.equal(keyIdOf(`${sealKey}.old`), first);
      assert.ok(!existsSync(`${sealKey}.next`));
      assert.deepEqual(await sealedUnder(), { billing: second, orders: second });
      assert.deepEqual(await opened(), { billing: CONFIG_PASSWORD, orders: PASSWORD });

      const event = await gw.waitForAudit('seal.rotated', () => true);
      assert.deepEqual(event.payload, {
        from_key: first,
        to_key: second,
        resealed: 2,
        total: 2,
        tokenize_key: true,
      });
      const store = gw.openStore();
      try {
        const sealed = await new Meta(store).get(TOKENIZE_KEY_META);
        assert.equal(Keyring.keyIdOf(sealed ?? ''), second, 'the tokenization key is re-sealed too');
      } finally {
        await store.close();
      }
    });

    it('keeps the running gateway able to seal new secrets after the rotation', async () => {
      const patched = await gw.api('PATCH', '/api/connections/orders', {
        body: { credentials: { password: NEW_PASSWORD } },
      });
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual(await opened(), { billing: CONFIG_PASSWORD, orders: NEW_PASSWORD });
    });

    it('re-seals every secret under a new key while the gateway is stopped', async () => {
      await gw.stop();
      const second = keyIdOf(sealKey);
      const res = await gw.cli(['keys', 'rotate-seal', '--config', gw.proc.configFile], { token: null });
      assert.equal(res.code, 0, res.stderr);
      const third = keyIdOf(sealKey);
      assert.notEqual(third, second);
      assert.match(res.stdout, new RegExp(`^re-sealed \\d of 2 secret\\(s\\) under key ${third} `));
      assert.equal(keyIdOf(`${sealKey}.old`), second);
      assert.deepEqual(await sealedUnder(), { billing: third, orders: third });
      assert.deepEqual(await opened(), { billing: CONFIG_PASSWORD, orders: NEW_PASSWORD });

      const store = gw.openStore();
      try {
        const rows = await store.db
          .selectFrom('audit_log')
          .selectAll()
          .where('type', '=', 'seal.rotated')
          .execute();
        const payloads = rows.map((r) => JSON.parse(r.payload_json) as AuditRecord['payload']);
        assert.deepEqual(
          payloads.map((p) => [p.to_key, p.total]),
          [
            [second, 2],
            [third, 2],
          ],
        );
      } finally {
        await store.close();
      }
    });

    it('starts again after the rotations, on the rotated key, with every secret readable', async () => {
      // The store now records the newest seal key: a gateway holding it starts; the secrets open.
      rmSync(`${sealKey}.old`, { force: true });
      const again = await startWarden({
        dir: gw.store.dataDir,
        config: {
          data_dir: gw.store.dataDir,
          ...(gw.store.url ? { store: { url: gw.store.url } } : {}),
          ...configFileConnection(CONFIG_PASSWORD).config,
          policy: tokenizing,
        },
        env: configFileConnection(CONFIG_PASSWORD).env,
      });
      try {
        const res = await api(again.url, 'GET', '/api/connections/orders', { token: gw.adminKey });
        assert.equal(res.status, 200, res.text);
        assert.equal(
          await tokenOf(again.url, 'alice@example.com'),
          token,
          'tokens survive seal-key rotation',
        );
        assert.notEqual(await tokenOf(again.url, 'bob@example.com'), token);
      } finally {
        await again.stop();
      }
      assert.deepEqual(await opened(), { billing: CONFIG_PASSWORD, orders: NEW_PASSWORD });
    });

    it('prints no password, and none reaches the process log or stderr', async () => {
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
