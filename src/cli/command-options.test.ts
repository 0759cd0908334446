import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sessions } from '../store/sessions.js';
import { type Gateway, startGateway } from '../testing/gateway.js';
import { CLI, runCli } from '../testing/warden-process.js';

// CLI options the other suites do not reach: passwords from the environment, token scopes,
// agent keys, following the audit trail, sessions show and WARDEN_CONFIG.
describe('warden CLI options', () => {
  let gw: Gateway;
  const ENV_PASSWORD = 'env-Pw-0c6e91d2f4';

  before(async () => {
    gw = await startGateway('sqlite');
    gw.secret(ENV_PASSWORD);
  });
  after(async () => gw?.close());

  it('takes a connection password from --password-env, and refuses an unset variable', async () => {
    const add = ['connections', 'add', 'env-db', '--protocol', 'postgres', '--host', 'db', '--port', '5432'];
    const res = await gw.cli([...add, '--password-env', 'ENV_DB_PW'], { env: { ENV_DB_PW: ENV_PASSWORD } });
    assert.equal(res.code, 0, res.stderr);
    const shown = JSON.parse((await gw.cli(['connections', 'show', 'env-db', '--json'])).stdout);
    assert.equal(shown.credentials.has_password, true);
    const unset = await gw.cli(
      [...add.slice(0, 2), 'env-db-2', ...add.slice(3), '--password-env', 'NOT_SET_PW'],
      {
        env: { NOT_SET_PW: '' },
      },
    );
    assert.equal(unset.code, 2);
    assert.equal(unset.stderr, 'warden: --password-env: NOT_SET_PW is not set\n');
  });

  it('narrows a token to a scope and refuses one wider than the credential', async () => {
    const narrow = await gw.cli(['token', 'create', '--ttl', '5m', '--scope', 'orders-*', '--json']);
    assert.equal(narrow.code, 0, narrow.stderr);
    const token = gw.credential(JSON.parse(narrow.stdout).token as string);
    const me = JSON.parse((await gw.cli(['whoami', '--json'], { token })).stdout);
    assert.deepEqual(me.scope, ['orders-*']);
    const wider = await gw.cli(['token', 'create', '--scope', 'billing'], { token });
    assert.notEqual(wider.code, 0);
    assert.match(
      wider.stderr,
      /^warden: 400 bad_request: scope billing is wider than the presented credential's\n$/,
    );
  });

  it('creates agent keys whose identity says agent', async () => {
    const res = await gw.cli(['keys', 'create', '--name', 'planner-agent', '--kind', 'agent']);
    assert.equal(res.code, 0, res.stderr);
    const key = gw.credential(res.stdout.trim());
    const me = JSON.parse((await gw.cli(['whoami', '--json'], { token: key })).stdout);
    assert.deepEqual([me.subject, me.kind], ['planner-agent', 'agent']);
  });

  it('follows the audit trail with tail -f, printing records written after it started', async () => {
    const child = spawn(process.execPath, [CLI, 'audit', 'tail', '-n', '1', '-f', '--type', 'key.*'], {
      env: { ...process.env, ...gw.proc.env(gw.adminKey) },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tail -f printed:\n${out}`)), 15_000);
      child.stdout.on('data', () => {
        if (out.includes('follow-bot')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    try {
      await new Promise((r) => setTimeout(r, 1500)); // let it print the newest record and start polling
      const created = await gw.cli(['keys', 'create', '--name', 'follow-bot']);
      gw.credential(created.stdout.trim());
      await seen;
      assert.match(out, /key\.created\s+bootstrap-admin\s+api_key:[0-9a-f]{16}\s+\{.*"name":"follow-bot"/);
    } finally {
      child.kill();
    }
  });

  it('shows one session by id', async () => {
    const store = gw.openStore();
    try {
      await new Sessions(store).insert({
        id: 'sess-show-1',
        subject: 'bootstrap-admin',
        kind: 'service',
        root_subject: 'bootstrap-admin',
        chain: [],
        token_id: null,
        parent_session_id: null,
        connection: 'env-db',
        protocol: 'postgres',
        client_addr: '127.0.0.1',
        status: 'closed',
        started_at: new Date().toISOString(),
        ended_at: null,
      });
    } finally {
      await store.close();
    }
    const res = await gw.cli(['sessions', 'show', 'sess-show-1', '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(
      [JSON.parse(res.stdout).id, JSON.parse(res.stdout).connection],
      ['sess-show-1', 'env-db'],
    );
  });

  it('reads the config file named by WARDEN_CONFIG', async () => {
    const file = join(gw.store.dataDir, 'from-env.yaml');
    writeFileSync(file, 'api:\n  port: 9911\n');
    const res = await runCli(['config', 'check'], { env: { WARDEN_CONFIG: file } });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^OK: ${file}: api 127\\.0\\.0\\.1:9911`));
  });

  it('lets no secret or key reach the process log or stderr', async () => {
    await gw.stop();
    assert.deepEqual(await gw.leaks(), []);
  });
});
