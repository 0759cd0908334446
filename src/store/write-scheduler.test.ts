import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteScheduler, writeInBatches } from './write-scheduler.js';

/** A queue whose writes can be made to fail, and a record of what each write took. */
function harness(delayMs: number, maxBatch = 100) {
  const queue: number[] = [];
  const writes: number[][] = [];
  let failing = false;
  const scheduler = new WriteScheduler({
    write: async () => {
      if (failing) return false;
      writes.push(queue.splice(0));
      return true;
    },
    queued: () => queue.length,
    maxBatch,
    delayMs,
    urgent: () => false,
    unrefRetry: true,
  });
  return {
    queue,
    writes,
    scheduler,
    fail: (on: boolean) => {
      failing = on;
    },
  };
}

describe('WriteScheduler', () => {
  it('gathers what is queued within the delay into one write', async () => {
    const h = harness(60_000);
    for (let i = 0; i < 5; i++) {
      h.queue.push(i);
      h.scheduler.kick(false);
    }
    assert.deepEqual(h.writes, [], 'nothing written before the delay or a flush');
    await h.scheduler.flush();
    assert.deepEqual(h.writes, [[0, 1, 2, 3, 4]]);
    h.scheduler.stop();
  });

  it('writes at once when urgent or when a batch is full', async () => {
    const h = harness(60_000, 3);
    h.queue.push(1);
    h.scheduler.kick(true);
    await h.scheduler.settled();
    h.queue.push(2, 3, 4);
    h.scheduler.kick(false);
    await h.scheduler.settled();
    assert.deepEqual(h.writes, [[1], [2, 3, 4]]);
    h.scheduler.stop();
  });

  it('retries a refused write on its own, and flush() does not wait for the retry timer', async () => {
    const h = harness(0);
    h.fail(true);
    h.queue.push(1);
    h.scheduler.kick(true);
    await h.scheduler.settled();
    assert.equal(h.scheduler.retrying, true);
    h.fail(false);
    await h.scheduler.flush();
    assert.equal(h.scheduler.retrying, false);
    assert.deepEqual(h.writes, [[1]]);
    h.scheduler.stop();
  });

  it('starts nothing after stop()', async () => {
    const h = harness(0);
    h.scheduler.stop();
    h.queue.push(1);
    h.scheduler.kick(true);
    await h.scheduler.settled();
    assert.deepEqual(h.writes, []);
  });
});

describe('writeInBatches', () => {
  it('writes from the head in batches, and keeps a refused batch and all after it queued', async () => {
    const queue = [1, 2, 3, 4, 5];
    const written: number[][] = [];
    const errors: Array<[string, number]> = [];
    const ok = await writeInBatches(
      queue,
      2,
      async (batch) => {
        if (batch[0] === 3) throw new Error('store down');
        written.push(batch);
      },
      (err, queued) => errors.push([err.message, queued]),
    );
    assert.equal(ok, false);
    assert.deepEqual(written, [[1, 2]]);
    assert.deepEqual(queue, [3, 4, 5]);
    assert.deepEqual(errors, [['store down', 3]]);
    assert.equal(await writeInBatches(queue, 2, async (batch) => void written.push(batch)), true);
    assert.deepEqual(written, [[1, 2], [3, 4], [5]]);
    assert.deepEqual(queue, []);
  });
});
