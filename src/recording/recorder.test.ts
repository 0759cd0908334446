import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionEvent, SessionEvents } from '../store/session-events.js';
import { SessionEvents as StoreSessionEvents } from '../store/session-events.js';
import { DIALECTS, storeForSuite } from '../testing/dialects.js';
import { Recorder } from './recorder.js';

const event = (seq: number, over: Partial<SessionEvent> = {}): SessionEvent => ({
  id: `e-${seq}-${Math.random()}`,
  session_id: 's-1',
  seq,
  kind: 'statement',
  time: new Date(0).toISOString(),
  duration_ms: 1.5,
  text: `select ${seq}`,
  params: null,
  decision: 'allow',
  rules: [],
  rows: 1,
  bytes: 10,
  error: null,
  sample: [[String(seq)]],
  ...over,
});

/** A repository that fails while `down` is set and remembers each batch it wrote. */
function fakeEvents() {
  const batches: SessionEvent[][] = [];
  const fake = {
    down: false,
    batches,
    async insert(events: readonly SessionEvent[]) {
      await new Promise((r) => setTimeout(r, 5));
      if (fake.down) throw new Error('store down');
      batches.push([...events]);
    },
  };
  return fake;
}

describe('recorder: statement events written in batches off the hot path', () => {
  it('writes queued events in multi-row batches, in order', async () => {
    const fake = fakeEvents();
    const rec = new Recorder(fake as unknown as SessionEvents, { maxBatch: 50 });
    for (let i = 1; i <= 120; i++) rec.record(event(i));
    assert.equal(fake.batches.length, 0, 'record() does not wait for the store');
    assert.equal(await rec.close(5_000), 0);
    assert.ok(fake.batches.length < 120 && fake.batches.every((b) => b.length <= 50));
    assert.deepEqual(
      fake.batches.flat().map((e) => e.seq),
      Array.from({ length: 120 }, (_, i) => i + 1),
    );
  });

  it('gathers events recorded in one tick into one insert', async () => {
    const fake = fakeEvents();
    const rec = new Recorder(fake as unknown as SessionEvents);
    for (let i = 1; i <= 300; i++) rec.record(event(i));
    const deadline = Date.now() + 5_000;
    while (rec.queued > 0 || fake.batches.length === 0) {
      assert.ok(Date.now() < deadline, 'the batch timer never wrote');
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(
      fake.batches.map((b) => b.length),
      [300],
    );
    assert.equal(await rec.close(5_000), 0);
  });

  it('starts a full batch at once and gathers what arrives meanwhile into the next', async () => {
    const fake = fakeEvents();
    const rec = new Recorder(fake as unknown as SessionEvents, { maxBatch: 50, batchDelayMs: 60_000 });
    for (let i = 1; i <= 120; i++) rec.record(event(i));
    await rec.idle();
    assert.deepEqual(
      fake.batches.map((b) => b.length),
      [50, 50, 20],
    );
    assert.equal(await rec.close(5_000), 0);
  });

  it('idle() and close() write events still waiting for their batch without waiting for the timer', async () => {
    const fake = fakeEvents();
    // A timer that would outlast the test: only idle() and close() can have written them.
    const rec = new Recorder(fake as unknown as SessionEvents, { batchDelayMs: 60_000 });
    for (let i = 1; i <= 3; i++) rec.record(event(i));
    await rec.idle();
    assert.deepEqual(
      fake.batches.map((b) => b.map((e) => e.seq)),
      [[1, 2, 3]],
    );
    rec.record(event(4));
    rec.record(event(5));
    assert.equal(await rec.close(5_000), 0);
    assert.deepEqual(
      fake.batches.map((b) => b.map((e) => e.seq)),
      [
        [1, 2, 3],
        [4, 5],
      ],
    );
    rec.record(event(6));
    assert.equal(rec.queued, 0, 'a closed recorder takes nothing more');
  });

  it('retries while the store is down and flushes on close once it is back', async () => {
    const fake = fakeEvents();
    const errors: string[] = [];
    const rec = new Recorder(fake as unknown as SessionEvents, { onError: (e) => errors.push(e.message) });
    fake.down = true;
    rec.record(event(1));
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(errors.length > 0);
    assert.equal(rec.queued, 1);
    fake.down = false;
    assert.equal(await rec.close(5_000), 0);
    assert.deepEqual(
      fake.batches.flat().map((e) => e.seq),
      [1],
    );
  });

  it('turns unhealthy over its queue bound, drops the overflow loudly, and recovers once written', async () => {
    const fake = fakeEvents();
    const dropped: number[] = [];
    const rec = new Recorder(fake as unknown as SessionEvents, {
      maxQueue: 3,
      onDropped: (n) => dropped.push(n),
      onError: () => undefined,
    });
    fake.down = true;
    for (let i = 1; i <= 5; i++) rec.record(event(i));
    assert.equal(rec.healthy, false);
    assert.deepEqual(dropped, [1, 2]);
    fake.down = false;
    assert.equal(await rec.close(5_000), 0);
    assert.equal(rec.healthy, true);
    assert.deepEqual(
      fake.batches.flat().map((e) => e.seq),
      [1, 2, 3],
    );
  });

  it('reports the events it could not write before the close deadline', async () => {
    const fake = fakeEvents();
    const rec = new Recorder(fake as unknown as SessionEvents, { onError: () => undefined });
    fake.down = true;
    rec.record(event(1));
    rec.record(event(2));
    assert.equal(await rec.close(300), 2);
  });
});

for (const dialect of DIALECTS) {
  describe(`session events in the store (${dialect})`, () => {
    const suite = storeForSuite(dialect);

    it('reads back what it wrote, in seq order, with numbers as numbers; a retried batch is not doubled', async () => {
      const events = new StoreSessionEvents(suite.store);
      const a = event(2, {
        params: ['[masked]', null],
        rows: null,
        error: '42501: refused',
        decision: 'deny',
      });
      const b = event(1, { rules: ['hide-ssn'], duration_ms: 0.25, bytes: 12_345_678_901 });
      await events.insert([a, b]);
      await events.insert([a]);
      assert.deepEqual(await events.list('s-1'), [b, a]);
      assert.deepEqual(await events.list('other'), []);
    });

    it(`writes through ${dialect === 'sqlite' ? 'prepared statements on the embedded store' : 'Kysely'}: a batch retried with new events adds only those, and a failing batch adds nothing`, async () => {
      assert.equal(suite.store.embedded, dialect === 'sqlite');
      const events = new StoreSessionEvents(suite.store);
      const batch = Array.from({ length: 700 }, (_, i) => event(i + 1, { session_id: 's-retried' }));
      await events.insert(batch.slice(0, 400));
      // Retried after a lost acknowledgement, with more queued meanwhile; over one INSERT's rows.
      await events.insert(batch);
      await events.insert(batch.slice(650));
      assert.deepEqual(await events.list('s-retried'), batch);

      const broken = { ...event(1, { session_id: 's-broken' }), text: null as unknown as string };
      await assert.rejects(events.insert([event(2, { session_id: 's-broken' }), broken]));
      assert.deepEqual(await events.list('s-broken'), [], 'all or none');
    });
  });
}
