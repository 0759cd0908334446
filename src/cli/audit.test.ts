import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AuditCheckpoint, type AuditRecord, checkpointMessage, hashRecord } from '../audit/record.js';
import { storeRecords } from '../audit/verify.js';
import { canonicalJson } from '../crypto/canonical.js';
import { publicKeyFromPem, verifyDetached } from '../crypto/signing.js';
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

    /** `warden audit checkpoint --json` after a fresh record, so there is a new tail to sign. */
    async function signedCheckpoint(): Promise<AuditCheckpoint> {
      assert.equal((await gw.cli(['audit', 'verify'])).code, 0, 'a live verify appends audit.verified');
      const res = await gw.cli(['audit', 'checkpoint', '--json']);
      assert.equal(res.code, 0, res.stderr);
      const checkpoint = JSON.parse(res.stdout) as AuditCheckpoint;
      assert.ok(checkpoint, res.stdout);
      return checkpoint;
    }

    it('prints a signed checkpoint with checkpoint --json that anchors an offline verify', async () => {
      const checkpoint = await signedCheckpoint();
      assert.deepEqual(Object.keys(checkpoint).sort(), ['hash', 'key_id', 'seq', 'signature', 'time']);
      const pem = (await gw.cli(['audit', 'public-key'])).stdout;
      assert.ok(verifyDetached(publicKeyFromPem(pem), checkpointMessage(checkpoint), checkpoint.signature));
      const anchorFile = join(gw.store.dataDir, 'anchor.json');
      writeFileSync(anchorFile, JSON.stringify(checkpoint));
      writeFileSync(keyFile, pem);

      const file = join(gw.store.dataDir, 'anchored.jsonl');
      assert.equal((await gw.cli(['audit', 'export', '-o', file])).code, 0);
      const verify = (f: string, ...more: string[]) =>
        gw.cli(['audit', 'verify', '--file', f, '--public-key', keyFile, ...more], { token: null });
      const ok = await verify(file, '--anchor', anchorFile);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(
        ok.stdout,
        new RegExp(`, anchored at seq ${checkpoint.seq}, \\d+ record\\(s\\) after the last signature\n$`),
      );

      // The reviewer's cut: every checkpoint line and the tail from the anchored seq on, header fixed up.
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      const kept = lines.slice(1).filter((l) => {
        const o = JSON.parse(l) as { kind: string; seq: number };
        return o.kind === 'record' && o.seq < checkpoint.seq;
      });
      const header = { ...JSON.parse(lines[0]!), last_seq: checkpoint.seq - 1 };
      const cut = join(gw.store.dataDir, 'cut.jsonl');
      writeFileSync(cut, `${[JSON.stringify(header), ...kept].join('\n')}\n`);
      const unsigned = await verify(cut);
      assert.equal(unsigned.code, 1, unsigned.stdout);
      assert.match(
        unsigned.stdout,
        /^FAILED at seq 1 \(unsigned\): no signed checkpoint covers these records/,
      );
      const truncated = await verify(cut, '--anchor', anchorFile);
      assert.equal(truncated.code, 1, truncated.stdout);
      assert.match(
        truncated.stdout,
        new RegExp(`^FAILED at seq ${checkpoint.seq} \\(truncated\\): the trusted anchor`),
      );

      const notACheckpoint = join(gw.store.dataDir, 'not-a-checkpoint.json');
      writeFileSync(notACheckpoint, JSON.stringify({ ...checkpoint, signature: undefined }));
      const refused = await verify(file, '--anchor', notACheckpoint);
      assert.equal(refused.code, 2);
      assert.equal(stderrLines(refused).length, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^warden: \S+not-a-checkpoint\.json: not a signed checkpoint \(signature: /,
      );
    });

    it('catches a store rewritten with its checkpoints deleted through the witness, live', async () => {
      const checkpoint = await signedCheckpoint();
      const witnessFile = join(gw.store.dataDir, 'audit-witness.json');
      assert.ok(existsSync(witnessFile), 'the gateway keeps audit-witness.json in its data dir');
      assert.deepEqual(JSON.parse(readFileSync(witnessFile, 'utf8')), checkpoint);

      // An attacker with write access to the database: edit an early record, recompute every hash
      // after it, and delete the checkpoints that signed the old history.
      const db = gw.openStore();
      try {
        const records: AuditRecord[] = [];
        for await (const r of storeRecords(db)) records.push(r);
        const from = records.find((r) => r.type === 'connection.created')!.seq;
        let prev = records[from - 2]!.hash;
        for (const r of records.slice(from - 1)) {
          const { hash: _old, ...rest } = r;
          const payload =
            r.seq === from ? { ...r.payload, target: { host: 'elsewhere.internal' } } : r.payload;
          const next = { ...rest, payload, prev_hash: prev };
          prev = hashRecord(next);
          await db.db
            .updateTable('audit_log')
            .set({ payload_json: canonicalJson(payload), prev_hash: next.prev_hash, hash: prev })
            .where('seq', '=', r.seq)
            .execute();
        }
        await db.db.deleteFrom('audit_checkpoints').where('seq', '>=', from).execute();
      } finally {
        await db.close();
      }

      const res = await gw.cli(['audit', 'verify']);
      assert.equal(res.code, 1, res.stdout);
      assert.match(
        res.stdout,
        new RegExp(
          `^FAILED at seq ${checkpoint.seq} \\(checkpoint_mismatch\\): seq ${checkpoint.seq} differs from the trusted anchor`,
        ),
      );
      // Nor will the gateway sign the rewritten tail (which would move the witness past it).
      const refused = await gw.cli(['audit', 'checkpoint']);
      assert.notEqual(refused.code, 0, refused.stdout);
      assert.match(
        refused.stderr,
        new RegExp(`no longer extends the checkpoint witnessed at seq ${checkpoint.seq} `),
      );
    });

    it('lets no key reach the process log, stderr or the export', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
      const exported = readFileSync(exportFile, 'utf8');
      assert.ok(!exported.includes(keySecret(gw.adminKey)!));
    });
  });
}
