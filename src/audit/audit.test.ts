import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type RawBuilder, sql } from 'kysely';
import { fromPrivateKey, publicKeyFromPem, signDetached, verifyDetached } from '../crypto/signing.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { Checkpointer, WitnessMismatchError } from './checkpoints.js';
import { AuditLog } from './log.js';
import {
  type AuditCheckpoint,
  type AuditRecord,
  checkpointMessage,
  GENESIS_HASH,
  hashRecord,
} from './record.js';
import { CHECKPOINT_EVERY, event, openTrail, type Trail } from './testdata/trail.js';
import { type ProblemKind, storeRecords, type VerifyReport, verifyTrail } from './verify.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function assertProblem(report: VerifyReport, seq: number, kind: ProblemKind): void {
  assert.equal(report.ok, false, 'the tampered trail must not verify');
  assert.deepEqual(
    { seq: report.problem?.seq, kind: report.problem?.kind },
    { seq, kind },
    report.problem?.message,
  );
}

for (const dialect of DIALECTS) {
  describe(`audit chain (${dialect})`, () => {
    let fx: StoreFixture;
    let trail: Trail;

    /** Tampers the way an attacker with database access would: plain SQL, checked to have hit a row. */
    async function tamper(statement: RawBuilder<unknown>): Promise<void> {
      const result = await statement.execute(trail.store.db);
      assert.ok((result.numAffectedRows ?? 0n) > 0n, 'the tampering statement changed nothing');
    }

    /**
     * Rewrites history the way the reviewer's attacker did: edit seq `from` and recompute every
     * hash after it, so the chain itself is whole.
     */
    async function rewriteFrom(records: AuditRecord[], from: number): Promise<void> {
      let prev = records[from - 2]!.hash;
      for (const r of records.slice(from - 1)) {
        const base = {
          ...r,
          prev_hash: prev,
          payload: r.seq === from ? { ...r.payload, sql: 'select 1' } : r.payload,
        };
        const { hash: _old, ...unhashed } = base;
        const hash = hashRecord(unhashed);
        await tamper(
          sql`update audit_log set payload_json = ${JSON.stringify(base.payload)}, prev_hash = ${prev}, hash = ${hash}
              where seq = ${r.seq}`,
        );
        prev = hash;
      }
    }

    /** The witness file's checkpoint: what live verification passes as its anchor. */
    function witness(): AuditCheckpoint {
      const w = trail.checkpointer.witness();
      assert.ok(w, 'the checkpointer keeps a witness');
      return w;
    }

    /** A fresh trail of 12 records with signed checkpoints at seq 5 and 10. */
    async function twelve(): Promise<AuditRecord[]> {
      await trail.reset();
      const written = await trail.write(12);
      assert.deepEqual(
        (await trail.checkpoints()).map((c) => c.seq),
        [5, 10],
      );
      return written;
    }

    before(async () => {
      fx = await storeFixture(dialect);
      trail = await openTrail(fx);
    });
    after(async () => {
      await trail?.close();
      await fx?.cleanup();
    });

    it('numbers appends 1..N and links each record to the hash of the one before', async () => {
      await trail.reset();
      const written = await trail.write(8, { nested: { z: 'é ✓', a: [1, 1.5, null, { y: true }] } });
      const stored = await trail.records();
      assert.deepEqual(
        stored.map((r) => r.seq),
        range(1, 8),
      );
      // What append() returned, and hashed, is exactly what the store gives back.
      assert.deepEqual(stored, written);
      let prev = GENESIS_HASH;
      for (const { hash, ...rest } of stored) {
        assert.equal(rest.prev_hash, prev, `seq ${rest.seq} links to the previous hash`);
        assert.equal(hashRecord(rest), hash, `seq ${rest.seq} recomputes`);
        prev = hash;
      }
    });

    it('batches hundreds of concurrent appends in one process into one unbroken chain', async () => {
      await trail.reset();
      const batches: number[] = [];
      const log = new AuditLog(trail.store, { maxBatch: 50, onWritten: (w) => batches.push(w.count) });
      const n = 600;
      const results = await Promise.all(range(0, n - 1).map((i) => log.append(event(i))));
      await log.close();
      // Queue order is seq order: the i-th call got seq i + 1.
      assert.deepEqual(
        results.map((r) => [r.seq, r.payload.i]),
        range(0, n - 1).map((i) => [i + 1, i]),
      );
      assert.equal(
        batches.reduce((a, b) => a + b, 0),
        n,
      );
      assert.equal(Math.max(...batches), 50, 'appends were written in batches of at most maxBatch');
      const report = await trail.verify();
      assert.equal(report.ok, true, report.problem?.message);
      assert.deepEqual([report.records, report.first_seq, report.last_seq], [n, 1, n]);
    });

    it('signs a checkpoint every 5 records that verifies with the public key', async () => {
      const records = await twelve();
      const checkpoints = await trail.checkpoints();
      const publicKey = publicKeyFromPem(trail.key.publicPem);
      const stranger = generateKeyPairSync('ed25519').publicKey;
      for (const c of checkpoints) {
        assert.equal(c.key_id, trail.key.kid);
        assert.equal(c.hash, records[c.seq - 1]!.hash, 'a checkpoint signs the hash of its record');
        assert.ok(verifyDetached(publicKey, checkpointMessage(c), c.signature));
        assert.ok(!verifyDetached(publicKey, checkpointMessage({ ...c, seq: c.seq + 1 }), c.signature));
        assert.ok(!verifyDetached(stranger, checkpointMessage(c), c.signature));
      }
      // Asked explicitly, it signs the tail now; asked again, there is nothing new to sign.
      assert.equal((await trail.checkpointer.checkpoint())?.seq, 12);
      assert.equal(await trail.checkpointer.checkpoint(), undefined);
    });

    it('counts `every` from the last checkpoint in the store, not from its own start', async () => {
      await twelve();
      // A restarted (or second) gateway: two records after the checkpoint at 10 are not due yet.
      const second = new Checkpointer(trail.store, trail.key, { every: 5, intervalMs: 3_600_000 });
      second.noteWritten(12);
      await second.idle();
      assert.deepEqual(
        (await trail.checkpoints()).map((c) => c.seq),
        [5, 10],
      );
      await trail.write(3);
      second.noteWritten(15);
      await second.idle();
      assert.deepEqual(
        (await trail.checkpoints()).map((c) => c.seq),
        [5, 10, 15],
      );
    });

    it('verifies the untouched trail in the store and reports its counts', async () => {
      await twelve();
      const last = (await trail.checkpoints()).at(-1)!;
      assert.deepEqual(await trail.verify(), {
        ok: true,
        records: 12,
        checkpoints: 2,
        first_seq: 1,
        last_seq: 12,
        from_genesis: true,
        last_checkpoint: { seq: 10, time: last.time },
        anchored_seq: null,
        unsigned_tail: 2,
        problem: null,
      });
    });

    it('names an edited payload at its seq', async () => {
      await twelve();
      await tamper(
        sql`update audit_log set payload_json = replace(payload_json, 'select 6', 'select 1') where seq = 7`,
      );
      assert.equal((await trail.records())[6]!.payload.sql, 'select 1');
      assertProblem(await trail.verify(), 7, 'edited');
    });

    it('verifies a record whose stored JSON was re-encoded with other whitespace and key order, but not a changed value', async () => {
      await twelve();
      const row = await trail.store.db
        .selectFrom('audit_log')
        .select(['actor_json', 'payload_json'])
        .where('seq', '=', 7)
        .executeTakeFirstOrThrow();
      /** The same values, keys reversed and indented: not the bytes that were hashed. */
      const reencode = (json: string, change: Record<string, unknown> = {}) => {
        const value = { ...JSON.parse(json), ...change } as Record<string, unknown>;
        return JSON.stringify(Object.fromEntries(Object.entries(value).reverse()), null, 2);
      };
      const sameValues = {
        actor_json: reencode(row.actor_json),
        payload_json: reencode(row.payload_json),
      };
      assert.notEqual(sameValues.payload_json, row.payload_json);
      assert.notEqual(sameValues.actor_json, row.actor_json);
      await trail.store.db.updateTable('audit_log').set(sameValues).where('seq', '=', 7).execute();
      const report = await trail.verify();
      assert.equal(report.ok, true, report.problem?.message);
      assert.equal(report.records, 12);

      await trail.store.db
        .updateTable('audit_log')
        .set({ payload_json: reencode(row.payload_json, { i: 60 }) })
        .where('seq', '=', 7)
        .execute();
      assertProblem(await trail.verify(), 7, 'edited');
      // The same value in the canonical bytes fails the same way.
      await trail.store.db
        .updateTable('audit_log')
        .set({ payload_json: row.payload_json.replace('"i":6', '"i":60') })
        .where('seq', '=', 7)
        .execute();
      assertProblem(await trail.verify(), 7, 'edited');
    });

    it('names a record deleted from the middle as missing', async () => {
      await twelve();
      await tamper(sql`delete from audit_log where seq = 7`);
      assertProblem(await trail.verify(), 7, 'missing');
    });

    it('names two records that traded places as out of order', async () => {
      await twelve();
      // Swap everything but the seq key of rows 7 and 9 (the key is what the store orders by).
      await tamper(sql`update audit_log set seq = -1 where seq = 7`);
      await tamper(sql`update audit_log set seq = 7 where seq = 9`);
      await tamper(sql`update audit_log set seq = 9 where seq = -1`);
      assert.deepEqual(
        (await trail.records()).slice(6, 9).map((r) => r.payload.i),
        [8, 7, 6],
      );
      assertProblem(await trail.verify(), 7, 'out_of_order');
    });

    it('names a checkpoint with a changed hash or signature, or a stranger key, as forged', async () => {
      await twelve();
      const [five, ten] = await trail.checkpoints();
      await tamper(sql`update audit_checkpoints set hash = ${five!.hash} where seq = 10`);
      assertProblem(await trail.verify(), 10, 'forged_checkpoint');
      await tamper(sql`update audit_checkpoints set hash = ${ten!.hash} where seq = 10`);
      assert.equal((await trail.verify()).ok, true);

      await tamper(sql`update audit_checkpoints set signature = ${five!.signature} where seq = 10`);
      assertProblem(await trail.verify(), 10, 'forged_checkpoint');
      await tamper(sql`update audit_checkpoints set signature = ${ten!.signature} where seq = 10`);

      // A checkpoint the attacker signed with a key of their own.
      const mine = await fromPrivateKey(generateKeyPairSync('ed25519').privateKey);
      const tail = (await trail.records()).at(-1)!;
      const base = { seq: tail.seq, hash: tail.hash, time: tail.time, key_id: mine.kid };
      await tamper(
        sql`insert into audit_checkpoints (seq, hash, time, key_id, signature)
            values (${base.seq}, ${base.hash}, ${base.time}, ${base.key_id}, ${signDetached(mine, checkpointMessage(base))})`,
      );
      assertProblem(await trail.verify(), 12, 'forged_checkpoint');
    });

    it('catches history rewritten with recomputed hashes at the next signed checkpoint', async () => {
      const records = await twelve();
      await rewriteFrom(records, 7);
      const withoutCheckpoints = await verifyTrail({
        records: storeRecords(trail.store),
        checkpoints: [],
        keys: new Map(),
      });
      assert.equal(withoutCheckpoints.ok, true, 'the recomputed chain links on its own');
      assertProblem(await trail.verify(), 10, 'checkpoint_mismatch');
    });

    it('names a tail cut before the last checkpoint as truncated', async () => {
      await twelve();
      await tamper(sql`delete from audit_log where seq >= 9`);
      assertProblem(await trail.verify(), 9, 'truncated');
    });

    it('keeps the newest signed checkpoint in a 0600 witness file that never moves back', async () => {
      await twelve();
      const [, ten] = await trail.checkpoints();
      assert.deepEqual(witness(), ten);
      assert.deepEqual(JSON.parse(readFileSync(trail.witnessFile, 'utf8')), ten);
      assert.equal(statSync(trail.witnessFile).mode & 0o777, 0o600);

      // A checkpoint another gateway (same store and key) signed is witnessed when seen.
      await trail.write(1);
      const other = new Checkpointer(trail.store, trail.key, {
        every: CHECKPOINT_EVERY,
        intervalMs: 3_600_000,
      });
      const thirteen = await other.checkpoint();
      assert.equal(thirteen?.seq, 13);
      assert.equal(await trail.checkpointer.checkpoint(), undefined, 'the tail is already checkpointed');
      assert.deepEqual(witness(), thirteen);

      // With the store's newer checkpoints gone the tail is signed again, but the witness stays put.
      await tamper(sql`delete from audit_checkpoints where seq > 5`);
      assert.equal((await trail.checkpointer.checkpoint())?.seq, 13);
      assert.deepEqual(witness(), thirteen);
    });

    it('reports the anchored seq and how many records follow the last signature', async () => {
      await twelve();
      const anchored = await trail.verify({ anchors: [witness()] });
      assert.equal(anchored.ok, true, anchored.problem?.message);
      assert.deepEqual([anchored.anchored_seq, anchored.unsigned_tail], [10, 2]);
      await trail.checkpointer.checkpoint();
      const signed = await trail.verify({ anchors: [witness()] });
      assert.deepEqual([signed.ok, signed.anchored_seq, signed.unsigned_tail], [true, 12, 0]);

      // Required (as offline), records that nothing signed covers fail.
      await tamper(sql`delete from audit_checkpoints`);
      assert.equal((await trail.verify()).ok, true);
      assertProblem(await trail.verify({ requireSignature: true }), 1, 'unsigned');
      assert.equal((await trail.verify({ requireSignature: true, anchors: [witness()] })).ok, true);
    });

    it('catches history rewritten from seq 7 with the checkpoints from seq 7 on deleted, through the witness', async () => {
      const records = await twelve();
      const anchor = witness();
      assert.equal(anchor.seq, 10);
      await rewriteFrom(records, 7);
      await tamper(sql`delete from audit_checkpoints where seq >= 7`);
      assert.equal((await trail.verify()).ok, true, 'the store alone can no longer tell');
      assertProblem(await trail.verify({ anchors: [anchor] }), 10, 'checkpoint_mismatch');
    });

    it('refuses to sign or witness a rewritten trail, so the next checkpoint does not bury the rewrite', async () => {
      const records = await twelve();
      const anchor = witness();
      await rewriteFrom(records, 7);
      await tamper(sql`delete from audit_checkpoints where seq >= 7`);
      await assert.rejects(trail.checkpointer.checkpoint(), WitnessMismatchError);
      const errors: Error[] = [];
      const restarted = new Checkpointer(trail.store, trail.key, {
        every: CHECKPOINT_EVERY,
        intervalMs: 3_600_000,
        witnessFile: trail.witnessFile,
        onError: (err) => errors.push(err),
      });
      restarted.noteWritten(12);
      await restarted.idle();
      assert.ok(errors[0] instanceof WitnessMismatchError, String(errors[0]));
      assert.match(errors[0].message, /no longer extends the checkpoint witnessed at seq 10 /);
      assert.deepEqual(
        (await trail.checkpoints()).map((c) => c.seq),
        [5],
      );

      // Signed anyway by a gateway without a witness, the rewrite is still not witnessed.
      const blind = new Checkpointer(trail.store, trail.key, {
        every: CHECKPOINT_EVERY,
        intervalMs: 3_600_000,
      });
      assert.equal((await blind.checkpoint())?.seq, 12);
      await assert.rejects(trail.checkpointer.checkpoint(), WitnessMismatchError);
      assert.deepEqual(witness(), anchor);
      assertProblem(await trail.verify({ anchors: [anchor] }), 10, 'checkpoint_mismatch');
    });

    it('vouches without reading back only for records it appended itself, in one unbroken run', async () => {
      const records = await twelve();
      const at = (i: number) => ({ seq: records[i - 1]!.seq, hash: records[i - 1]!.hash });
      assert.equal(trail.log.vouches(at(10), at(12)), true);
      assert.equal(trail.log.vouches(at(10), { ...at(12), hash: records[0]!.hash }), false, 'another hash');
      assert.equal(trail.log.vouches(at(12), at(12)), true);
      assert.equal(
        trail.log.vouches(at(10), at(12)),
        false,
        'the run before the last checkpoint is forgotten',
      );
      // Another writer on the store (a second gateway) breaks the run: its records are not ours.
      const other = new AuditLog(trail.store, { batchDelayMs: 0 });
      const foreign = await other.append(event(99));
      await other.close();
      const mine = await trail.log.append(event(100));
      assert.equal(
        trail.log.vouches(at(12), { seq: mine.seq, hash: mine.hash }),
        false,
        `seq ${foreign.seq} was written by someone else`,
      );
      assert.equal(
        trail.log.vouches({ seq: foreign.seq, hash: foreign.hash }, { seq: mine.seq, hash: mine.hash }),
        true,
      );
    });

    it('signs what it hashed itself over a row changed in place; verification still names the row', async () => {
      await twelve();
      // Content edited, hash column left alone: the tail and every link still look like ours.
      await tamper(sql`update audit_log set payload_json = '{"i":999}' where seq = 11`);
      const [more] = await trail.write(1);
      const signed = await trail.checkpointer.checkpoint();
      assert.equal(signed?.seq, more!.seq, 'the vouched tail was signed');
      assert.equal(signed?.hash, more!.hash, 'with the hash the gateway computed');
      assertProblem(await trail.verify({ anchors: [witness()] }), 11, 'edited');
    });

    it('names a tail cut together with its checkpoints as truncated through the witness', async () => {
      await twelve();
      await trail.checkpointer.checkpoint();
      const anchor = witness();
      assert.equal(anchor.seq, 12);
      await tamper(sql`delete from audit_log where seq >= 9`);
      await tamper(sql`delete from audit_checkpoints where seq >= 9`);
      assert.equal((await trail.verify()).ok, true, 'the store alone can no longer tell');
      assertProblem(await trail.verify({ anchors: [anchor] }), 9, 'truncated');
      await assert.rejects(trail.checkpointer.checkpoint(), WitnessMismatchError);
    });

    it('names a forged anchor, and a signed checkpoint contradicting the anchor', async () => {
      const records = await twelve();
      const anchor = witness();
      // Changed after signing.
      assertProblem(
        await trail.verify({ anchors: [{ ...anchor, hash: records[8]!.hash }] }),
        10,
        'forged_checkpoint',
      );
      // Signed by a key that is not the gateway's.
      const mine = await fromPrivateKey(generateKeyPairSync('ed25519').privateKey);
      const theirs = { seq: 12, hash: records[11]!.hash, time: anchor.time, key_id: mine.kid };
      assertProblem(
        await trail.verify({
          anchors: [{ ...theirs, signature: signDetached(mine, checkpointMessage(theirs)) }],
        }),
        12,
        'forged_checkpoint',
      );
      // Two different histories signed for seq 10 (as with a leaked key): the store's checkpoint
      // does not match the trusted anchor.
      const rival = { seq: 10, hash: records[9]!.hash.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
      const base = { ...rival, time: anchor.time, key_id: trail.key.kid };
      assertProblem(
        await trail.verify({
          anchors: [{ ...base, signature: signDetached(trail.key, checkpointMessage(base)) }],
        }),
        10,
        'checkpoint_mismatch',
      );
    });
  });
}
