import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromPublicPemAsync } from '../crypto/signing.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { type ExportRange, exportLines, verifyExport } from './export.js';
import { openTrail, type Trail } from './testdata/trail.js';
import type { ProblemKind, VerifyReport } from './verify.js';

function assertProblem(report: VerifyReport, seq: number, kind: ProblemKind): void {
  assert.equal(report.ok, false, 'the tampered export must not verify');
  assert.deepEqual(
    { seq: report.problem?.seq, kind: report.problem?.kind },
    { seq, kind },
    report.problem?.message,
  );
}

/** Parsed lines of an export file, to tamper with as an attacker holding the file would. */
function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}
function recordLine(all: string[], seq: number): number {
  const i = all.findIndex((l) => {
    const o = JSON.parse(l) as { kind: string; seq?: number };
    return o.kind === 'record' && o.seq === seq;
  });
  assert.ok(i > 0, `seq ${seq} is in the export`);
  return i;
}

for (const dialect of DIALECTS) {
  describe(`audit export (${dialect})`, () => {
    let fx: StoreFixture;
    let trail: Trail;
    let pemFile: string;
    let count = 0;

    async function exportFile(range: ExportRange = {}): Promise<string> {
      count += 1;
      const file = join(fx.dataDir, `export-${count}.jsonl`);
      await pipeline(Readable.from(exportLines(trail.store, range, trail.key.kid)), createWriteStream(file));
      return file;
    }

    /** What `warden audit verify --file --public-key` does: the key comes from a PEM file, not the export. */
    async function verifyFile(file: string, pem = pemFile): Promise<VerifyReport> {
      const key = await fromPublicPemAsync(readFileSync(pem, 'utf8'));
      const input = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
      return verifyExport(input, new Map([[key.kid, key.key]]));
    }

    function rewrite(file: string, change: (all: string[]) => string[]): string {
      const tampered = file.replace(/\.jsonl$/, '-tampered.jsonl');
      writeFileSync(tampered, `${change(lines(file)).join('\n')}\n`);
      return tampered;
    }

    before(async () => {
      fx = await storeFixture(dialect);
      trail = await openTrail(fx);
      pemFile = join(fx.dataDir, 'signing.pub.pem');
      writeFileSync(pemFile, trail.key.publicPem);
      await trail.write(12); // checkpoints at 5 and 10
    });
    after(async () => {
      await trail?.close();
      await fx?.cleanup();
    });

    it('writes a file that verifies offline with the public key from PEM', async () => {
      const file = await exportFile();
      const all = lines(file);
      assert.deepEqual(
        all.map((l) => (JSON.parse(l) as { kind: string }).kind),
        ['header', 'checkpoint', 'checkpoint', ...Array<string>(12).fill('record')],
      );
      const report = await verifyFile(file);
      assert.equal(report.ok, true, report.problem?.message);
      assert.deepEqual(
        [report.records, report.checkpoints, report.first_seq, report.last_seq, report.from_genesis],
        [12, 2, 1, 12, true],
      );
      assert.equal(report.last_checkpoint?.seq, 10);
    });

    it('refuses an export checked against another public key', async () => {
      const other = join(fx.dataDir, 'other.pub.pem');
      writeFileSync(
        other,
        generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string,
      );
      assertProblem(await verifyFile(await exportFile(), other), 5, 'forged_checkpoint');
    });

    it('names an edited record line at its seq', async () => {
      const file = rewrite(await exportFile(), (all) => {
        const i = recordLine(all, 7);
        all[i] = all[i]!.replace('"outcome":"success"', '"outcome":"denied"');
        return all;
      });
      assert.match(readFileSync(file, 'utf8'), /"outcome":"denied"/);
      assertProblem(await verifyFile(file), 7, 'edited');
    });

    it('names two swapped record lines as out of order', async () => {
      const file = rewrite(await exportFile(), (all) => {
        const [a, b] = [recordLine(all, 7), recordLine(all, 9)];
        [all[a], all[b]] = [all[b]!, all[a]!];
        return all;
      });
      assertProblem(await verifyFile(file), 7, 'out_of_order');
    });

    it('names a removed record line as missing', async () => {
      const file = rewrite(await exportFile(), (all) => all.filter((_, i) => i !== recordLine(all, 7)));
      assertProblem(await verifyFile(file), 7, 'missing');
    });

    it('names a file cut before its last checkpoint, or short of its header, as truncated', async () => {
      const file = await exportFile();
      assertProblem(
        await verifyFile(rewrite(file, (all) => all.slice(0, recordLine(all, 9)))),
        9,
        'truncated',
      );
      // After the last checkpoint only the header says how far the file went (a cut download).
      assertProblem(
        await verifyFile(rewrite(file, (all) => all.slice(0, recordLine(all, 11)))),
        11,
        'truncated',
      );
    });

    it('verifies a partial export (since) and reports that it does not start at genesis', async () => {
      // Times are per millisecond: step past the last one so `since` falls between two records.
      await sleep(5);
      const since = new Date().toISOString();
      await sleep(5);
      await trail.write(6); // seq 13..18, checkpoint at 15
      const file = await exportFile({ since });
      const report = await verifyFile(file);
      assert.equal(report.ok, true, report.problem?.message);
      assert.deepEqual(
        [report.records, report.checkpoints, report.first_seq, report.last_seq, report.from_genesis],
        [6, 1, 13, 18, false],
      );
      assert.equal(report.last_checkpoint?.seq, 15);
      // Still tamper-evident: an edit inside the range is named.
      const edited = rewrite(file, (all) => {
        const i = recordLine(all, 14);
        all[i] = all[i]!.replace('"sql":"select 1"', '"sql":"select 2"');
        return all;
      });
      assertProblem(await verifyFile(edited), 14, 'edited');
    });
  });
}
