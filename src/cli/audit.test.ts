import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIALECTS } from '../testing/dialects.js';
import { type Gateway, keySecret, startGateway, stderrLines } from '../testing/gateway.js';

for (const dialect of DIALECTS) {
  describe(`warden audit (${dialect})`, () => {
    let gw: Gateway;
    let exportFile: string;
    let keyFile: string;

    before(async () => {
      gw = await startGateway(dialect);
      exportFile = join(gw.store.dataDir, 'audit.jsonl');
      keyFile = join(gw.store.dataDir, 'audit.pem');
      // Some history: a change, a refusal, a new key.
      const created = await gw.api('POST', '/api/connections', {
        body: { name: 'orders', protocol: 'postgres', target: { host: 'db.internal', port: 5432 } },
      });
      assert.equal(created.status, 201, created.text);
      assert.equal((await gw.api('GET', '/api/whoami', { token: null })).status, 401);
      const key = await gw.api('POST', '/api/keys', { body: { name: 'reporter', groups: [] } });
      assert.equal(key.status, 201, key.text);
      gw.credential((key.body as { key: string }).key);
      await gw.waitForAudit('auth.refused', () => true);
    });
    after(async () => gw?.close());

    it('verifies the live trail', async () => {
      const res = await gw.cli(['audit', 'verify']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^OK: \d+ records \(seq 1\.\.\d+, from genesis\), \d+ signed checkpoint\(s\)/);
    });

    it('prints the newest records with tail -n', async () => {
      const res = await gw.cli(['audit', 'tail', '-n', '5']);
      assert.equal(res.code, 0, res.stderr);
      const lines = res.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 5, res.stdout);
      for (const line of lines) {
        assert.match(
          line,
          /^\s*\d+ {2}\d{4}-\d\d-\d\dT\S+Z {2}(success|denied|failure|info)\s+[a-z]+\.[a-z_]+\s+\S+/,
        );
      }
      const seqs = lines.map((l) => Number(l.trim().split(/\s+/)[0]));
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'tail is not in seq order',
      );
      assert.ok(
        lines.some((l) => /\bkey\.created\b/.test(l)),
        res.stdout,
      );
    });

    it('exports the trail and verifies it offline with the published public key', async () => {
      const checkpoint = await gw.cli(['audit', 'checkpoint']);
      assert.equal(checkpoint.code, 0, checkpoint.stderr);
      const [, signedAt] = /^checkpoint signed at seq (\d+)\n$/.exec(checkpoint.stdout) ?? [];
      assert.ok(signedAt, checkpoint.stdout);

      const exported = await gw.cli(['audit', 'export', '--format', 'jsonl', '-o', exportFile]);
      assert.equal(exported.code, 0, exported.stderr);
      assert.equal(exported.stdout, '');
      const lines = readFileSync(exportFile, 'utf8').trimEnd().split('\n');
      assert.equal((JSON.parse(lines[0]!) as { kind: string; format: string }).format, 'warden-audit/1');

      const pem = await gw.cli(['audit', 'public-key']);
      assert.equal(pem.code, 0, pem.stderr);
      assert.match(pem.stdout, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
      writeFileSync(keyFile, pem.stdout);

      const res = await gw.cli(['audit', 'verify', '--file', exportFile, '--public-key', keyFile], {
        token: null,
      });
      assert.equal(res.code, 0, res.stderr);
      assert.match(
        res.stdout,
        new RegExp(
          `^OK: \\d+ records \\(seq 1\\.\\.\\d+, from genesis\\), \\d+ signed checkpoint\\(s\\), last at seq ${signedAt} `,
        ),
      );
    });

    it('fails offline verification of an edited export', async () => {
      const lines = readFileSync(exportFile, 'utf8').trimEnd().split('\n');
      const at = lines.findIndex((l) => l.includes('"type":"connection.created"'));
      assert.ok(at > 0);
      lines[at] = lines[at]!.replace('"host":"db.internal"', '"host":"elsewhere.internal"');
      const edited = join(gw.store.dataDir, 'edited.jsonl');
      writeFileSync(edited, `${lines.join('\n')}\n`);
      const res = await gw.cli(['audit', 'verify', '--file', edited, '--public-key', keyFile], {
        token: null,
      });
      assert.equal(res.code, 1);
      assert.match(res.stdout, /^FAILED at seq \d+ /);
    });

    it('does not accept an export checked against another key', async () => {
      const other = join(gw.store.dataDir, 'other.pem');
      const { publicKey } = generateKeyPairSync('ed25519');
      writeFileSync(other, publicKey.export({ type: 'spki', format: 'pem' }) as string);
      const res = await gw.cli(['audit', 'verify', '--file', exportFile, '--public-key', other], {
        token: null,
      });
      assert.equal(res.code, 1, res.stdout);
      assert.match(
        res.stdout,
        /^FAILED at seq \d+ \(forged_checkpoint\): checkpoint at seq \d+ is signed by unknown key /,
      );
    });

    it('insists on --public-key for an offline check', async () => {
      const res = await gw.cli(['audit', 'verify', '--file', exportFile], { token: null });
      assert.equal(res.code, 2);
      assert.deepEqual(stderrLines(res), [
        'warden: --file needs --public-key: the key must come from a source you trust',
      ]);
    });

    it('lets no key reach the process log, stderr or the export', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
      const exported = readFileSync(exportFile, 'utf8');
      assert.ok(!exported.includes(keySecret(gw.adminKey)!));
    });
  });
}
