import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { StoreUnavailableError } from '../store/store.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { event, openTrail, type Trail } from './testdata/trail.js';

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
  });
}
