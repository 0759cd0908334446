import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createThrowawayDb, type ThrowawayDb } from '../testing/postgres.js';
import { api, runCli, startWarden, type WardenProcess } from '../testing/warden-process.js';

/** Key files as an operator would provision them for every replica (mode 0600). */
function keyFiles(dir: string): { seal_key_file: string; signing_key_file: string } {
  const seal = join(dir, 'seal.key');
  const signing = join(dir, 'signing.key');
  writeFileSync(seal, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(signing, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return { seal_key_file: seal, signing_key_file: signing };
}

describe('several gateways sharing one PostgreSQL store', () => {
  let db: ThrowawayDb;
  let root: string;
  let shared: { seal_key_file: string; signing_key_file: string };
  const gateways: WardenProcess[] = [];
  let admin: string;

  const start = async (name: string, keys: Record<string, string>) => {
    const dir = join(root, name);
    mkdirSync(dir);
    return startWarden({
      dir,
      config: {
        data_dir: join(dir, 'data'),
        store: { url: db.url },
        keys,
        policy: { refresh_interval: '200ms' },
      },
    });
  };

  before(async () => {
    db = await createThrowawayDb();
    root = mkdtempSync(join(tmpdir(), 'warden-replicas-'));
    mkdirSync(join(root, 'keys'));
    shared = keyFiles(join(root, 'keys'));
    gateways.push(await start('a', shared));
    gateways.push(await start('b', shared));
    admin = readFileSync(join(root, 'a', 'data', 'admin.key'), 'utf8').trim();
  });
  after(async () => {
    for (const g of gateways) await g.stop();
    await db?.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves one set of connections, keys and tokens from either gateway', async () => {
    const [a, b] = gateways as [WardenProcess, WardenProcess];
    const created = await api(a.url, 'POST', '/api/connections', {
      token: admin,
      body: {
        name: 'orders',
        protocol: 'postgres',
        target: { host: 'db', port: 5432 },
        credentials: { password: 'pw-1' },
      },
    });
    assert.equal(created.status, 201, created.text);
    const seen = await api(b.url, 'GET', '/api/connections/orders', { token: admin });
    assert.deepEqual((seen.body as { credentials: unknown }).credentials, { user: null, has_password: true });

    const minted = await api(b.url, 'POST', '/api/tokens', { token: admin, body: { ttl: '5m' } });
    assert.equal(minted.status, 201, minted.text);
    const token = (minted.body as { token: string }).token;
    assert.equal(
      (await api(a.url, 'GET', '/api/whoami', { token })).status,
      200,
      'a token from B works on A',
    );
  });

  it('keeps one unbroken, signed audit chain while both append at once', async () => {
    const [a, b] = gateways as [WardenProcess, WardenProcess];
    const writes = Array.from({ length: 40 }, (_, i) =>
      api(i % 2 ? a.url : b.url, 'POST', '/api/keys', { token: admin, body: { name: `replica-bot-${i}` } }),
    );
    for (const res of await Promise.all(writes)) assert.equal(res.status, 201, res.text);
    for (const g of [a, b]) {
      const cp = await api(g.url, 'POST', '/api/audit/checkpoint', { token: admin });
      assert.equal(cp.status, 200, cp.text);
    }
    for (const g of [a, b]) {
      const report = await runCli(['audit', 'verify'], { env: g.env(admin) });
      assert.equal(report.code, 0, report.stdout + report.stderr);
      assert.match(report.stdout, /^OK: \d+ records \(seq 1\.\.\d+, from genesis\)/);
    }
  });

  it('enforces a rule set applied through one gateway on the other, without a restart', async () => {
    const [a, b] = gateways as [WardenProcess, WardenProcess];
    await api(a.url, 'POST', '/api/connections', {
      token: admin,
      body: { name: 'ledger', protocol: 'postgres', target: { host: 'db', port: 5432 } },
    });
    const applied = await api(a.url, 'PUT', '/api/policy/rules', {
      token: admin,
      body: { rules: [{ name: 'no-delete', when: { sql: { statements: ['delete'] } }, effect: 'deny' }] },
    });
    assert.equal(applied.status, 200, applied.text);
    // B picks the version up by polling the store: no request to B has happened since.
    const loaded = /"version":1,.*"msg":"policy rules loaded"/;
    assert.match(await b.waitForLog(loaded), loaded);
    const explained = await api(b.url, 'POST', '/api/policy/test', {
      token: admin,
      body: { connection: 'ledger', command: 'DELETE FROM entries WHERE id = 1', as: { subject: 'bob' } },
    });
    assert.equal((explained.body as { decision: { decided_by: string } }).decision.decided_by, 'no-delete');
  });

  it('makes the same masking token for a value on either gateway, and never the value itself', async () => {
    const [a, b] = gateways as [WardenProcess, WardenProcess];
    const rules = [
      { name: 'tokenize-ssn', effect: 'mask', mask: { columns: ['users.ssn'], style: 'tokenize' } },
    ];
    const applied = await api(a.url, 'PUT', '/api/policy/rules', { token: admin, body: { rules } });
    assert.equal(applied.status, 200, applied.text);
    const masked = async (url: string) => {
      const res = await api(url, 'POST', '/api/policy/test', {
        token: admin,
        body: {
          connection: 'ledger',
          command: 'SELECT ssn FROM users',
          as: { subject: 'bob' },
          sample: {
            columns: ['users.ssn', 'users.name'],
            rows: [
              ['078-05-1120', 'Ann'],
              ['219-09-9999', 'Bo'],
            ],
          },
        },
      });
      assert.equal(res.status, 200, res.text);
      return (res.body as { masked_sample: { rows: string[][] } }).masked_sample.rows;
    };
    const fromA = await masked(a.url);
    assert.match(fromA[0]?.[0] ?? '', /^tok_[0-9a-f]{16}$/);
    assert.notEqual(fromA[0]?.[0], fromA[1]?.[0], 'different values, different tokens');
    assert.deepEqual([fromA[0]?.[1], fromA[1]?.[1]], ['Ann', 'Bo']);
    assert.deepEqual(await masked(b.url), fromA);
  });

  it('refuses to start a gateway whose signing key differs from the store’s', async () => {
    const own = keyFiles(mkdtempSync(join(root, 'other-')));
    await assert.rejects(
      start('c', { seal_key_file: shared.seal_key_file, signing_key_file: own.signing_key_file }),
      /signed by key .* but this gateway's signing key is .*: every gateway sharing a store needs the same keys\.signing_key_file/,
    );
  });

  it('refuses to start a gateway whose seal key cannot open the store’s secrets', async () => {
    const own = keyFiles(mkdtempSync(join(root, 'other-')));
    await assert.rejects(
      start('d', { seal_key_file: own.seal_key_file, signing_key_file: shared.signing_key_file }),
      /sealed under key .* but this gateway's seal key is .*: every gateway sharing a store needs the same keys\.seal_key_file/,
    );
  });
});

describe('gateways starting at the same moment on an empty PostgreSQL store', () => {
  it('all come up, agree on one bootstrap key, and sync the config connections once', async () => {
    const db = await createThrowawayDb();
    const root = mkdtempSync(join(tmpdir(), 'warden-race-'));
    mkdirSync(join(root, 'keys'));
    const keys = keyFiles(join(root, 'keys'));
    const procs: WardenProcess[] = [];
    try {
      const starts = ['a', 'b', 'c'].map((name) => {
        const dir = join(root, name);
        mkdirSync(dir);
        return startWarden({
          dir,
          config: {
            data_dir: join(dir, 'data'),
            store: { url: db.url },
            keys,
            connections: [{ name: 'orders', protocol: 'postgres', target: { host: 'db', port: 5432 } }],
          },
        });
      });
      const results = await Promise.allSettled(starts);
      for (const r of results) if (r.status === 'fulfilled') procs.push(r.value);
      const failures = results
        .filter((r) => r.status === 'rejected')
        .map((r) => String((r as PromiseRejectedResult).reason));
      assert.deepEqual(failures, [], 'every gateway started');
      const admins = ['a', 'b', 'c'].filter((n) => existsSync(join(root, n, 'data', 'admin.key')));
      assert.equal(admins.length, 1, 'exactly one gateway created the bootstrap key');
      const admin = readFileSync(join(root, admins[0]!, 'data', 'admin.key'), 'utf8').trim();
      for (const p of procs) {
        const res = await api(p.url, 'GET', '/api/connections', { token: admin });
        assert.deepEqual(
          (res.body as { connections: Array<{ name: string }> }).connections.map((c) => c.name),
          ['orders'],
        );
      }
    } finally {
      for (const p of procs) await p.stop();
      await db.drop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
