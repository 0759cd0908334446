import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ConnectionView } from '../config/connection.js';
import { DIALECTS } from '../testing/dialects.js';
import { configFileConnection, type Gateway, startGateway, stderrLines } from '../testing/gateway.js';

const PASSWORD = 'cli-Pw-5e8d1f0a2b';
const CONFIG_PASSWORD = 'cfg-Pw-93b7c4e1aa';

const addOrders = [
  'connections',
  'add',
  'orders',
  '--protocol',
  'postgres',
  '--host',
  'db-1.internal',
  '--port',
  '5432',
  '--database',
  'orders',
  '--user',
  'app',
  '--password-stdin',
  '--tag',
  'prod',
];

for (const dialect of DIALECTS) {
  describe(`warden connections (${dialect})`, () => {
    let gw: Gateway;

    before(async () => {
      gw = await startGateway(dialect, configFileConnection(CONFIG_PASSWORD, { port: 5433 }));
      gw.secret(PASSWORD);
      gw.secret(CONFIG_PASSWORD);
    });
    after(async () => gw?.close());

    it('adds a connection with the password read from stdin', async () => {
      const res = await gw.cli(addOrders, { input: `${PASSWORD}\n` });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, 'created connection orders (postgres db-1.internal:5432)\n');
    });

    it('lists connections as a table with the secret shown only as "sealed"', async () => {
      const res = await gw.cli(['connections', 'ls']);
      assert.equal(res.code, 0, res.stderr);
      const [header, ...rows] = res.stdout.trimEnd().split('\n');
      assert.match(header!, /^NAME\s+PROTOCOL\s+TARGET\s+USER\s+SECRET\s+ACCESS\s+TAGS\s+SOURCE$/);
      assert.deepEqual(
        rows.map((r) => r.split(/\s+/)),
        [
          ['billing', 'postgres', 'billing.internal:5433', 'billing', 'sealed', 'open', '-', 'config'],
          ['orders', 'postgres', 'db-1.internal:5432/orders', 'app', 'sealed', 'open', 'prod', 'api'],
        ],
      );
    });

    it('lists connections as JSON', async () => {
      const res = await gw.cli(['connections', 'ls', '--json']);
      assert.equal(res.code, 0, res.stderr);
      const list = JSON.parse(res.stdout) as ConnectionView[];
      assert.deepEqual(
        list.map((c) => [c.name, c.source, c.credentials]),
        [
          ['billing', 'config', { user: 'billing', has_password: true }],
          ['orders', 'api', { user: 'app', has_password: true }],
        ],
      );
    });

    it('shows one connection as text and as JSON', async () => {
      const text = await gw.cli(['connections', 'show', 'orders']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^name:\s+orders$/m);
      assert.match(text.stdout, /^target:\s+db-1\.internal:5432$/m);
      assert.match(text.stdout, /^password:\s+\(sealed\)$/m);
      assert.match(text.stdout, /^tags:\s+prod$/m);
      assert.match(text.stdout, /^source:\s+api$/m);

      const json = await gw.cli(['connections', 'show', 'orders', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const view = JSON.parse(json.stdout) as ConnectionView;
      assert.deepEqual(
        [view.target.database, view.tags, view.credentials.has_password],
        ['orders', ['prod'], true],
      );
    });

    it('adds a connection with pool: session, stored in both dialects and shown', async () => {
      const add = await gw.cli([
        ...['connections', 'add', 'pooled', '--protocol', 'postgres', '--host', 'db-2.internal'],
        ...['--port', '5432', '--pool', 'session'],
      ]);
      assert.equal(add.code, 0, add.stderr);
      const text = await gw.cli(['connections', 'show', 'pooled']);
      assert.match(text.stdout, /^pool:\s+session$/m);
      const json = await gw.cli(['connections', 'show', 'orders', '--json']);
      assert.equal((JSON.parse(json.stdout) as ConnectionView).pool, 'none', 'the default');
      const bad = await gw.cli([
        'connections',
        'add',
        'x',
        '--protocol',
        'postgres',
        '--host',
        'h',
        '--port',
        '1',
        '--pool',
        'transaction',
      ]);
      assert.notEqual(bad.code, 0);
      const rm = await gw.cli(['connections', 'rm', 'pooled']);
      assert.equal(rm.code, 0, rm.stderr);
    });

    it('adds a connection with its own session limits, stored in both dialects and shown', async () => {
      const add = await gw.cli([
        ...['connections', 'add', 'limited', '--protocol', 'postgres', '--host', 'db-3.internal'],
        ...['--port', '5432', '--idle-timeout', '15m', '--max-duration', 'off', '--end-with-parent', 'false'],
      ]);
      assert.equal(add.code, 0, add.stderr);
      const text = await gw.cli(['connections', 'show', 'limited']);
      assert.match(text.stdout, /^sessions:\s+idle_timeout 15m, max_duration off, end_with_parent false$/m);
      const json = await gw.cli(['connections', 'show', 'orders', '--json']);
      assert.equal((JSON.parse(json.stdout) as ConnectionView).sessions, null, 'the global limits');
      const bad = await gw.cli([
        ...['connections', 'add', 'y', '--protocol', 'postgres', '--host', 'h', '--port', '1'],
        ...['--idle-timeout', 'a while'],
      ]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /idle_timeout/);
      const rm = await gw.cli(['connections', 'rm', 'limited']);
      assert.equal(rm.code, 0, rm.stderr);
    });

    it('refuses a bad name and a duplicate with one line on stderr', async () => {
      const bad = await gw.cli([
        'connections',
        'add',
        'Orders_DB',
        '--protocol',
        'postgres',
        '--host',
        'h',
        '--port',
        '1',
      ]);
      assert.notEqual(bad.code, 0);
      assert.deepEqual(stderrLines(bad).length, 1, bad.stderr);
      assert.match(bad.stderr, /^warden: 400 validation_failed: body\.name: expected a DNS-label-like name/);

      const dup = await gw.cli(addOrders, { input: PASSWORD });
      assert.notEqual(dup.code, 0);
      assert.equal(dup.stderr, 'warden: 409 conflict: connection "orders" already exists\n');
    });

    it('will not remove a connection defined in the config file', async () => {
      const res = await gw.cli(['connections', 'rm', 'billing']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /^warden: 409 conflict: connection "billing" is defined in the config file/);
      assert.equal(res.stdout, '');
    });

    it('removes a connection', async () => {
      const rm = await gw.cli(['connections', 'rm', 'orders']);
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal(rm.stdout, 'removed connection orders\n');
      const gone = await gw.cli(['connections', 'show', 'orders']);
      assert.notEqual(gone.code, 0);
      assert.equal(gone.stderr, 'warden: 404 not_found: connection "orders" does not exist\n');
    });

    it('never prints the password, and no secret reaches the process log or stderr', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
