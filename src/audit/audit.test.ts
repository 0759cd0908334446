import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type RawBuilder, sql } from 'kysely';
import { fromPrivateKey, publicKeyFromPem, signDetached, verifyDetached } from '../crypto/signing.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { Checkpointer } from './checkpoints.js';
import { AuditLog } from './log.js';
import { type AuditRecord, checkpointMessage, GENESIS_HASH, hashRecord } from './record.js';
import { event, openTrail, type Trail } from './testdata/trail.js';
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
      const log = new AuditLog(trail.store, { maxBatch: 50, onWritten: (w) => batches.push(w.length) });
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
      // The attacker edits seq 7 and recomputes every hash after it, so the chain itself is whole.
      let prev = records[5]!.hash;
      for (const r of records.slice(6)) {
        const base = {
          ...r,
          prev_hash: prev,
          payload: r.seq === 7 ? { ...r.payload, sql: 'select 1' } : r.payload,
        };
        const { hash: _old, ...unhashed } = base;
        const hash = hashRecord(unhashed);
        await tamper(
          sql`update audit_log set payload_json = ${JSON.stringify(base.payload)}, prev_hash = ${prev}, hash = ${hash}
              where seq = ${r.seq}`,
        );
        prev = hash;
      }
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
  });
}
