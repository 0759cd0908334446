import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import { timeOrderedId } from '../crypto/ids.js';
import { createLogger } from '../logging.js';
import type { SessionEvent } from '../store/session-events.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { startWarden, type Warden } from '../warden.js';

const statement = (seq: number): SessionEvent => ({
  id: timeOrderedId(),
  session_id: 's-overfull',
  seq,
  kind: 'statement',
  time: new Date().toISOString(),
  duration_ms: 0.5,
  text: `select ${seq}`,
  params: null,
  decision: 'allow',
  rules: [],
  rows: 1,
  bytes: 10,
  error: null,
  sample: null,
});

/** Polls until `check` passes, failing with its last error after `ms`. */
async function eventually(check: () => Promise<void>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// The gateway in this process, so the test can hold its recorder; its store refuses recordings.
for (const dialect of DIALECTS) {
  describe(`readiness and metrics of the session recorder (${dialect})`, () => {
    let fx: StoreFixture;
    let warden: Warden;

    before(async () => {
      fx = await storeFixture(dialect);
      const file = join(fx.dataDir, 'warden.yaml');
      writeFileSync(
        file,
        stringify({
          data_dir: fx.dataDir,
          ...(fx.url ? { store: { url: fx.url } } : {}),
          api: { port: 0 },
          listeners: { postgres: { enabled: false } },
        }),
      );
      warden = await startWarden(loadConfig(file, {}), { env: {}, log: createLogger('silent') });
    });
    after(async () => {
      await warden?.close();
      await fx?.cleanup();
    });

    /** Makes the store refuse every statement event with an error that is not a lost connection. */
    async function refuseRecordings(on: boolean): Promise<void> {
      const db = warden.ctx.store.db;
      if (dialect === 'postgres') {
        if (on) {
          await sql`create or replace function refuse_recording() returns trigger language plpgsql as $$
                    begin raise exception 'could not extend file' using errcode = 'disk_full'; end $$`.execute(
            db,
          );
          await sql`create trigger refuse_recording before insert on session_events for each row execute function refuse_recording()`.execute(
            db,
          );
        } else {
          await sql`drop trigger refuse_recording on session_events`.execute(db);
        }
      } else if (on) {
        await sql`create trigger refuse_recording before insert on session_events begin select raise(abort, 'database or disk is full'); end`.execute(
          db,
        );
      } else {
        await sql`drop trigger refuse_recording`.execute(db);
      }
    }

    const get = async (path: string) => {
      const res = await fetch(`${warden.url}${path}`);
      return { status: res.status, text: await res.text() };
    };
    const metric = (text: string, name: string): number => {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      assert.ok(m, `${name} is missing from /metrics`);
      return Number(m[1]);
    };

    it('is ready with an empty recorder queue, and exports the recorder series at zero', async () => {
      const ready = await get('/readyz');
      assert.equal(ready.status, 200, ready.text);
      const body = JSON.parse(ready.text) as Record<string, unknown>;
      assert.deepEqual(
        [body.status, body.store, typeof body.audit_queue, body.recorder_queue],
        ['ready', dialect, 'number', 0],
      );
      const { text } = await get('/metrics');
      assert.match(text, /^# TYPE warden_recorder_queue gauge$/m);
      assert.match(text, /^# TYPE warden_recorder_dropped_total counter$/m);
      assert.match(text, /^# TYPE warden_recorder_write_failures_total counter$/m);
      assert.equal(metric(text, 'warden_recorder_queue'), 0);
      assert.equal(metric(text, 'warden_recorder_dropped_total'), 0);
      assert.equal(metric(text, 'warden_recorder_write_failures_total'), 0);
    });

    it('is not ready while the recorder queue is full, names the recorder, counts drops and failed writes, and recovers', async () => {
      const recorder = warden.ctx.recorder;
      await refuseRecordings(true);
      let seq = 0;
      try {
        while (recorder.healthy) {
          recorder.record(statement(++seq));
          assert.ok(seq <= 1_000_000, 'the recorder queue has no bound');
        }
        const bound = recorder.queued;
        for (let i = 0; i < 3; i++) recorder.record(statement(++seq));
        assert.equal(recorder.queued, bound, 'over the bound events are dropped');

        const ready = await get('/readyz');
        assert.equal(ready.status, 503, ready.text);
        const body = JSON.parse(ready.text) as { status: string; reason: string; recorder_queue: number };
        assert.equal(body.status, 'unavailable');
        assert.equal(body.recorder_queue, bound);
        assert.match(body.reason, /^session recorder queue full: \d+ statement events unwritten, 3 dropped/);

        await eventually(async () => {
          const { text } = await get('/metrics');
          assert.equal(metric(text, 'warden_recorder_queue'), bound);
          assert.equal(metric(text, 'warden_recorder_dropped_total'), 3);
          assert.ok(metric(text, 'warden_recorder_write_failures_total') >= 1, 'a failed write is counted');
        });
      } finally {
        await refuseRecordings(false);
      }

      // The retried writes get through: ready again, and nothing but the dropped events is lost.
      await eventually(async () => {
        const ready = await get('/readyz');
        assert.equal(ready.status, 200, ready.text);
      });
      await eventually(async () => {
        await recorder.idle();
        assert.equal(recorder.queued, 0);
      });
      const { count } = await warden.ctx.store.db
        .selectFrom('session_events')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('session_id', '=', 's-overfull')
        .executeTakeFirstOrThrow();
      assert.equal(Number(count), seq - 3);
      const { text } = await get('/metrics');
      assert.equal(metric(text, 'warden_recorder_queue'), 0);
      assert.equal(metric(text, 'warden_recorder_dropped_total'), 3);
    });
  });
}
