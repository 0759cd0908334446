import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { Sessions } from '../store/sessions.js';
import { StoreUnavailableError } from '../store/store.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { sessionRow } from '../testing/session-rows.js';
import { AuditLog } from './log.js';
import type { AuditRecord } from './record.js';
import { event, openTrail, type Trail } from './testdata/trail.js';

/** Polls until `done` holds (the batch timer fires on its own), failing after 5 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const dialect of DIALECTS) {
  describe(`audit appender under store errors (${dialect})`, () => {
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

    /** Makes the store refuse every audit insert with an error that is not a lost connection. */
    async function refuseWrites(on: boolean): Promise<void> {
      const db = trail.store.db;
      if (dialect === 'postgres') {
        if (on) {
          await sql`create or replace function refuse_audit() returns trigger language plpgsql as $$
                    begin raise exception 'could not extend file' using errcode = 'disk_full'; end $$`.execute(
            db,
          );
          await sql`create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()`.execute(
            db,
          );
        } else {
          await sql`drop trigger refuse_audit on audit_log`.execute(db);
        }
      } else if (on) {
        await sql`create trigger refuse_audit before insert on audit_log begin select raise(abort, 'database or disk is full'); end`.execute(
          db,
        );
      } else {
        await sql`drop trigger refuse_audit`.execute(db);
      }
    }

    it('keeps every event through store errors that are not lost connections, and writes them once it recovers', async () => {
      await trail.reset();
      assert.equal((await trail.log.append(event(0))).seq, 1);
      await refuseWrites(true);
      for (let i = 1; i <= 4; i++) trail.log.record(event(i));
      await assert.rejects(trail.log.append(event(5)), StoreUnavailableError);
      assert.equal(trail.log.queued, 5, 'nothing was dropped');
      assert.ok(trail.log.lastError, 'the failure is visible (readyz reports it)');

      await refuseWrites(false);
      await trail.log.drain();
      assert.equal(trail.log.queued, 0);
      assert.equal(trail.log.lastError, undefined);
      assert.deepEqual(
        (await trail.records()).map((r) => r.payload.i),
        [0, 1, 2, 3, 4, 5],
      );
      assert.equal((await trail.verify()).ok, true);
    });

    it('refuses an event that cannot be encoded to its caller, and the queue moves on', async () => {
      await trail.reset();
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await assert.rejects(trail.log.append(event(1, { circular })), TypeError);
      await assert.rejects(trail.log.append(event(2, { big: 10n })), TypeError);
      const r = await trail.log.append(event(3));
      assert.equal(r.seq, 1);
      assert.deepEqual(
        (await trail.records()).map((x) => x.payload.i),
        [3],
      );
    });

    it('gathers record() calls made in one tick into one write, on its own timer', async () => {
      await trail.reset();
      const batches: Array<{ count: number; lastSeq: number }> = [];
      const log = new AuditLog(trail.store, { onWritten: (w) => batches.push(w) });
      for (let i = 0; i < 200; i++) log.record(event(i));
      assert.equal(log.queued, 200, 'record() writes nothing at once');
      await until(() => log.queued === 0, 'the batch is written');
      assert.deepEqual(batches, [{ count: 200, lastSeq: 200 }]);
      assert.deepEqual(
        (await trail.records()).map((r) => [r.seq, r.payload.i]),
        Array.from({ length: 200 }, (_, i) => [i + 1, i]),
      );
      await log.close();
    });

    it('writes what drain() finds queued in one batch, without waiting for the timer', async () => {
      await trail.reset();
      const batches: Array<{ count: number; lastSeq: number }> = [];
      // A timer that would outlast the test: only drain() can have written them.
      const log = new AuditLog(trail.store, { batchDelayMs: 60_000, onWritten: (w) => batches.push(w) });
      for (let i = 0; i < 30; i++) log.record(event(i));
      await log.drain();
      assert.deepEqual(batches, [{ count: 30, lastSeq: 30 }]);
      assert.equal((await trail.records()).length, 30);
      await log.close();
    });

    it('writes an awaited append() at once, together with the records queued before it', async () => {
      await trail.reset();
      const batches: Array<{ count: number; lastSeq: number }> = [];
      const log = new AuditLog(trail.store, { batchDelayMs: 60_000, onWritten: (w) => batches.push(w) });
      for (let i = 0; i < 5; i++) log.record(event(i));
      const appended = await log.append(event(5));
      assert.equal(appended.seq, 6);
      assert.deepEqual(batches, [{ count: 6, lastSeq: 6 }]);
      assert.deepEqual(
        (await trail.records()).map((r) => r.payload.i),
        [0, 1, 2, 3, 4, 5],
        'the records queued before the append were written with it',
      );
      await log.close();
    });

    it('leaves a batched append() to its batch, and writes it with the next append that is not', async () => {
      await trail.reset();
      const batches: Array<{ count: number; lastSeq: number }> = [];
      const log = new AuditLog(trail.store, { batchDelayMs: 60_000, onWritten: (w) => batches.push(w) });
      let settled = false;
      const batched = log.append(event(0), { batched: true }).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(settled, false, 'a batched append waits for its batch');
      assert.deepEqual(batches, []);
      assert.equal((await log.append(event(1))).seq, 2);
      assert.equal((await batched).seq, 1);
      assert.deepEqual(batches, [{ count: 2, lastSeq: 2 }]);
      await log.close();
    });

    it('writes records still waiting for their batch at close()', async () => {
      await trail.reset();
      const batches: Array<{ count: number; lastSeq: number }> = [];
      const log = new AuditLog(trail.store, { batchDelayMs: 60_000, onWritten: (w) => batches.push(w) });
      for (let i = 0; i < 10; i++) log.record(event(i));
      assert.deepEqual(await log.close(), { spooled: 0, lost: 0 });
      assert.deepEqual(batches, [{ count: 10, lastSeq: 10 }]);
      assert.equal((await trail.records()).length, 10);
      assert.equal(log.queued, 0);
    });

    it('spools records still waiting for their batch when the store refuses them at close(), and replays them once', async () => {
      await trail.reset();
      const spoolFile = join(fx.dataDir, 'batched-spool.jsonl');
      const log = new AuditLog(trail.store, { spoolFile, batchDelayMs: 60_000 });
      await refuseWrites(true);
      try {
        for (let i = 0; i < 3; i++) log.record(event(i));
        assert.deepEqual(await log.close(200), { spooled: 3, lost: 0 });
      } finally {
        await refuseWrites(false);
      }
      const spooled = readFileSync(spoolFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: { payload: { i: number } } });
      assert.deepEqual(
        spooled.map((s) => s.event.payload.i),
        [0, 1, 2],
      );
      assert.equal((await trail.records()).length, 0);

      const next = new AuditLog(trail.store, { spoolFile });
      assert.equal(await next.replaySpool(), 3);
      assert.equal(await next.replaySpool(), 0, 'the spool is gone once written');
      assert.equal(existsSync(spoolFile), false);
      await next.close();
      assert.deepEqual(
        (await trail.records()).map((r) => [r.seq, r.payload.i]),
        [
          [1, 0],
          [2, 1],
          [3, 2],
        ],
      );
      assert.equal((await trail.verify()).ok, true);
    });

    it("writes a row change in its event's transaction: a refused pair waits whole, and is spooled whole", async () => {
      await trail.reset();
      const sessions = new Sessions(trail.store);
      const row = (id: string) => sessions.insertWrite(sessionRow({ id }));
      const statusOf = async (id: string) => (await sessions.get(id))?.status;

      await trail.log.append(event(0), { alongside: row('s-0') });
      assert.equal(await statusOf('s-0'), 'active');
      await refuseWrites(true);
      try {
        await assert.rejects(trail.log.append(event(1), { alongside: row('s-1') }), StoreUnavailableError);
        // The row was inserted before the refused event, in the transaction that rolled back.
        assert.equal(await statusOf('s-1'), undefined);
        // Refused too, and kept: written with the rest once the store takes writes again.
        const end = sessions.endWrite('s-0', 'closed', new Date().toISOString(), 'client');
        void trail.log.append(event(2), { alongside: end, batched: true }).catch(() => undefined);
      } finally {
        await refuseWrites(false);
      }
      await trail.log.drain();
      assert.equal(await statusOf('s-1'), 'active');
      assert.equal(await statusOf('s-0'), 'closed');

      const spoolFile = join(fx.dataDir, 'alongside-spool.jsonl');
      const log = new AuditLog(trail.store, { spoolFile, batchDelayMs: 60_000 });
      await refuseWrites(true);
      try {
        void log.append(event(3), { alongside: row('s-3'), batched: true }).catch(() => undefined);
        assert.deepEqual(await log.close(200), { spooled: 1, lost: 0 });
      } finally {
        await refuseWrites(false);
      }
      assert.equal(await statusOf('s-3'), undefined);
      const next = new AuditLog(trail.store, { spoolFile });
      assert.equal(await next.replaySpool(), 1);
      await next.close();
      assert.equal(await statusOf('s-3'), 'active');
      assert.deepEqual(
        (await trail.records()).map((r) => r.payload.i),
        [0, 1, 2, 3],
      );

      // A NUL, which PostgreSQL refuses in text, cannot hold up the queue: it is replaced.
      await trail.log.append(event(4), {
        alongside: sessions.insertWrite(sessionRow({ id: 's-4', subject: 'a\u0000b' })),
      });
      await trail.log.append(event(5), {
        alongside: sessions.endWrite('s-4', 'killed', new Date().toISOString(), 'why\u0000not'),
      });
      const killed = await sessions.get('s-4');
      assert.deepEqual(
        [killed?.subject, killed?.status, killed?.end_reason],
        ['a\uFFFDb', 'killed', 'why\uFFFDnot'],
      );
      assert.equal(trail.log.queued, 0);
    });

    it('keeps one verifiable chain through records and appends mixed in and across ticks', async () => {
      await trail.reset();
      const appended: Array<Promise<AuditRecord>> = [];
      let i = 0;
      for (let round = 0; round < 6; round++) {
        for (let k = 0; k < 40; k++, i++) {
          if (k % 9 === 4) appended.push(trail.log.append(event(i)));
          else trail.log.record(event(i));
        }
        if (round % 2 === 0) await new Promise((r) => setTimeout(r, round));
        else await appended.at(-1);
      }
      await Promise.all(appended);
      await trail.log.drain();
      await trail.checkpointer.idle();
      const records = await trail.records();
      assert.deepEqual(
        records.map((r) => [r.seq, r.payload.i]),
        Array.from({ length: i }, (_, n) => [n + 1, n]),
        'queue order is seq order',
      );
      for (const r of await Promise.all(appended)) {
        assert.deepEqual(r, records[r.seq - 1], 'an append resolves with the record as stored');
      }
      const report = await trail.verify();
      assert.equal(report.ok, true, report.problem?.message);
      assert.equal(report.records, i);
      assert.ok(report.checkpoints > 0, 'checkpoints were signed along the way');
    });
  });
}
