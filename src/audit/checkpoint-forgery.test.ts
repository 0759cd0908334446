import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { ForgedCheckpointError } from './checkpoints.js';
import { CHECKPOINT_EVERY, openTrail, readAll, type Trail } from './testdata/trail.js';
import { storeRecords, verifyTrail } from './verify.js';

for (const dialect of DIALECTS) {
  describe(`checkpoint rows written by someone else (${dialect})`, () => {
    let fx: StoreFixture;
    let trail: Trail;

    before(async () => {
      fx = await storeFixture(dialect);
      trail = await openTrail(fx);
    });
    after(async () => {
      await trail?.close();
      await fx?.cleanup();
    });

    it('keeps signing when a forged row far beyond the tail claims everything is checkpointed', async () => {
      await trail.reset();
      await trail.write(2);
      await trail.store.db
        .insertInto('audit_checkpoints')
        .values({
          seq: 1_000_000_000,
          hash: 'a'.repeat(64),
          time: '2026-01-01T00:00:00Z',
          key_id: 'x',
          signature: 'AAAA',
        })
        .execute();
      await trail.write(3 * CHECKPOINT_EVERY);
      const signed = (await trail.checkpoints()).filter((c) => c.seq < 1_000_000_000).map((c) => c.seq);
      assert.ok(signed.length >= 3, `checkpoints kept being signed: ${signed.join(', ')}`);
      assert.ok(
        trail.checkpointErrors.some(
          (e) => e instanceof ForgedCheckpointError && /seq 1000000000/.test(e.message),
        ),
        'the forged row was reported',
      );
      const latest = await trail.checkpointer.latestValid();
      assert.equal(latest?.seq, signed.at(-1), 'the forged row is never offered as the latest checkpoint');
      assert.equal((await trail.verify()).problem?.kind, 'forged_checkpoint', 'verification names it too');
    });

    it('fails when an anchor lies before the first record it was given, instead of skipping it', async () => {
      await trail.reset();
      await trail.write(CHECKPOINT_EVERY);
      const anchor = await trail.checkpointer.latestValid();
      assert.ok(anchor);
      await trail.write(CHECKPOINT_EVERY);
      const later = (await readAll(storeRecords(trail.store))).filter((r) => r.seq > anchor.seq);
      const report = await verifyTrail({
        records: later,
        checkpoints: [],
        keys: new Map([[trail.key.kid, trail.key.publicKey]]),
        anchors: [anchor],
        allowPartial: true,
      });
      assert.deepEqual(
        [report.ok, report.problem?.kind, report.problem?.seq],
        [false, 'anchor_unchecked', anchor.seq],
      );
    });
  });
}
