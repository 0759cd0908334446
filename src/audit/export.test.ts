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
import { readCheckpointFile } from './checkpoints.js';
import { ExportFormatError, type ExportRange, exportLines, verifyExport } from './export.js';
import { type AuditCheckpoint, hashRecord } from './record.js';
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
function parsed(line: string): { kind: string; seq?: number } & Record<string, unknown> {
  return JSON.parse(line) as { kind: string; seq?: number } & Record<string, unknown>;
}
/** Drops the checkpoint lines at `from` and after. */
function withoutCheckpoints(all: string[], from = 1): string[] {
  return all.filter((l) => {
    const o = parsed(l);
    return o.kind !== 'checkpoint' || (o.seq ?? 0) < from;
  });
}
/** Sets the header's last_seq, as an attacker who cut the file would. */
function announcing(all: string[], lastSeq: number): string[] {
  return [JSON.stringify({ ...parsed(all[0]!), last_seq: lastSeq }), ...all.slice(1)];
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

    /**
     * What `warden audit verify --file --public-key [--anchor]` does: the key comes from a PEM
     * file, not the export, and records no signature covers fail.
     */
    async function verifyFile(
      file: string,
      pem = pemFile,
      anchors: AuditCheckpoint[] = [],
    ): Promise<VerifyReport> {
      const key = await fromPublicPemAsync(readFileSync(pem, 'utf8'));
      const input = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
      return verifyExport(input, new Map([[key.kid, key.key]]), { anchors, requireSignature: true });
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

    it('names an export with every checkpoint line removed as unsigned', async () => {
      const file = rewrite(await exportFile(), (all) => withoutCheckpoints(all));
      assertProblem(await verifyFile(file), 1, 'unsigned');
    });

    it("catches the reviewer's cut export (checkpoints and tail removed, header fixed up) with an anchor", async () => {
      // The witness file is the anchor here: it is what `--anchor` reads.
      const anchor = readCheckpointFile(trail.witnessFile);
      assert.equal(anchor.seq, 10);
      const file = await exportFile();
      const cut = (keepBelow: number) =>
        rewrite(file, (all) => {
          const kept = withoutCheckpoints(all, keepBelow);
          return announcing(kept.slice(0, recordLine(kept, 9)), 8);
        });
      // Every checkpoint line removed: nothing signed is left, which fails on its own.
      const bare = cut(1);
      assertProblem(await verifyFile(bare), 1, 'unsigned');
      assertProblem(await verifyFile(bare, pemFile, [anchor]), 9, 'truncated');
      // Keeping the checkpoint at seq 5 the file verifies without an anchor (3 records unsigned).
      const kept = cut(7);
      const report = await verifyFile(kept);
      assert.equal(report.ok, true, report.problem?.message);
      assert.deepEqual([report.last_seq, report.unsigned_tail, report.anchored_seq], [8, 3, null]);
      assertProblem(await verifyFile(kept, pemFile, [anchor]), 9, 'truncated');
    });

    it('catches an export rewritten from seq 7, its later checkpoint lines removed, with an anchor', async () => {
      const anchor = readCheckpointFile(trail.witnessFile);
      const file = rewrite(await exportFile(), (all) => {
        let prev = '';
        return withoutCheckpoints(all, 7).map((l) => {
          const { kind, hash, ...r } = parsed(l);
          if (kind !== 'record' || (r.seq ?? 0) < 7) {
            prev = typeof hash === 'string' ? hash : prev;
            return l;
          }
          const payload = r.seq === 7 ? { ...(r.payload as object), sql: 'select 1' } : r.payload;
          const next = { ...r, payload, prev_hash: prev } as unknown as Parameters<typeof hashRecord>[0];
          prev = hashRecord(next);
          return JSON.stringify({ kind, ...next, hash: prev });
        });
      });
      const report = await verifyFile(file);
      assert.equal(report.ok, true, 'without an anchor the rewrite only shows as unsigned records');
      assert.equal(report.unsigned_tail, 7);
      assertProblem(await verifyFile(file, pemFile, [anchor]), 10, 'checkpoint_mismatch');
    });

    it('names a malformed record line at its seq, and refuses a malformed header or checkpoint line', async () => {
      const file = await exportFile();
      const atSeven = (change: (o: Record<string, unknown>) => unknown) =>
        rewrite(file, (all) => {
          const i = recordLine(all, 7);
          all[i] = JSON.stringify(change(parsed(all[i]!)));
          return all;
        });
      const changes: Array<[string, (o: Record<string, unknown>) => unknown]> = [
        ['no actor', ({ actor: _a, ...o }) => o],
        ['a payload that is a string', (o) => ({ ...o, payload: 'select 7' })],
        ['a hash that is a number', (o) => ({ ...o, hash: 7 })],
        ['an outcome of no known kind', (o) => ({ ...o, outcome: 'fine' })],
        ['an array instead of a record', () => [7]],
      ];
      for (const [what, change] of changes) {
        const report = await verifyFile(atSeven(change));
        assert.equal(report.problem?.kind, 'malformed', `${what}: ${report.problem?.message}`);
        assert.equal(report.problem?.seq, 7, what);
      }
      const notJson = rewrite(file, (all) => {
        all[recordLine(all, 7)] = '{"kind":"record","seq":7,';
        return all;
      });
      assertProblem(await verifyFile(notJson), 7, 'malformed');

      const badCheckpoint = rewrite(file, (all) => {
        all[1] = all[1]!.replace(/"signature":"[^"]*"/, '"signature":42');
        return all;
      });
      await assert.rejects(verifyFile(badCheckpoint), (err: Error) => {
        assert.ok(err instanceof ExportFormatError);
        assert.match(err.message, /^line 2: malformed checkpoint \(signature: /);
        return true;
      });
      const badHeader = rewrite(file, (all) => announcing(all, '12' as unknown as number));
      await assert.rejects(
        verifyFile(badHeader),
        /^ExportFormatError: line 1: malformed warden-audit\/1 header \(last_seq: /,
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
