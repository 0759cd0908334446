import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionEvents } from '../store/session-events.js';
import { type TerminalChunk, TerminalRecordings } from '../store/terminal-recordings.js';
import { DIALECTS, storeForSuite } from '../testing/dialects.js';
import { parseAsciicast } from './asciicast.js';
import { Recorder } from './recorder.js';

/** A repository that fails while `down` is set and remembers each batch it wrote. */
function fakeRecordings() {
  const batches: TerminalChunk[][] = [];
  const fake = {
    down: false,
    batches,
    async append(chunks: readonly TerminalChunk[]) {
      await new Promise((r) => setTimeout(r, 5));
      if (fake.down) throw new Error('store down');
      batches.push([...chunks]);
    },
  };
  return fake;
}

/** A clock the test moves: event times are exactly what it says. */
function manualClock() {
  const clock = { ms: 0, now: () => clock.ms };
  return clock;
}

const text = (s: string) => Buffer.from(s);
const castOf = (chunks: TerminalChunk[]) => parseAsciicast(chunks.map((c) => c.data).join(''));

describe('terminal recorder: protocols feed bytes, chunks are written in batches', () => {
  it('queues the header at once and writes output on close, with times from the session start', async () => {
    const fake = fakeRecordings();
    const clock = manualClock();
    clock.ms = 5_000;
    const rec = new Recorder(new SessionEvents(null as never), {
      terminals: fake as unknown as TerminalRecordings,
      terminal: { clock: clock.now, batchDelayMs: 60_000 },
    });
    const term = rec.terminal('t-1', { width: 80, height: 24, env: { TERM: 'xterm-256color' } });
    clock.ms += 250;
    term.output(text('$ ls\r\n'));
    clock.ms += 1_000;
    term.resize(120, 40);
    term.input(text('secret\r'));
    assert.equal(fake.batches.length, 0, 'nothing waits for the store');
    await term.close();
    const cast = castOf(fake.batches.flat());
    assert.equal(cast.header.width, 80);
    assert.deepEqual(cast.header.env, { TERM: 'xterm-256color' });
    assert.ok(Number.isInteger(cast.header.timestamp));
    assert.deepEqual(cast.events, [
      [0.25, 'o', '$ ls\r\n'],
      [1.25, 'r', '120x40'],
    ]);
    assert.deepEqual(
      fake.batches.flat().map((c) => [c.seq, c.time]),
      [
        [0, 0],
        [1, 0.25],
      ],
    );
    assert.equal(await rec.close(1_000), 0);
  });

  it('seals a chunk once it reaches its size, so no stored chunk grows without bound', async () => {
    const fake = fakeRecordings();
    const rec = new Recorder(new SessionEvents(null as never), {
      terminals: fake as unknown as TerminalRecordings,
      terminal: { chunkBytes: 200, batchDelayMs: 60_000 },
    });
    const term = rec.terminal('t-big', { width: 80, height: 24 });
    for (let i = 0; i < 50; i++) term.output(text(`row ${i} ${'x'.repeat(40)}\n`));
    await term.close();
    const chunks = fake.batches.flat();
    assert.ok(chunks.length > 10);
    // Whole lines only: every chunk ends where an event does.
    assert.ok(chunks.every((c) => c.data.endsWith('\n') && c.data.length < 200 + 80));
    assert.deepEqual(
      chunks.map((c) => c.seq),
      chunks.map((_, i) => i),
    );
    assert.equal(castOf(chunks).events.length, 50);
    await rec.close(1_000);
  });

  it('retries while the store is down and writes everything in order once it is back', async () => {
    const fake = fakeRecordings();
    const errors: string[] = [];
    const rec = new Recorder(new SessionEvents(null as never), {
      terminals: fake as unknown as TerminalRecordings,
      terminal: { batchDelayMs: 0 },
      onError: (e) => errors.push(e.message),
    });
    fake.down = true;
    const term = rec.terminal('t-down', { width: 80, height: 24 });
    term.output(text('one\n'));
    await term.close();
    assert.deepEqual(errors.slice(0, 1), ['store down']);
    fake.down = false;
    assert.equal(await rec.close(5_000), 0);
    assert.deepEqual(
      castOf(fake.batches.flat()).events.map((e) => e[2]),
      ['one\n'],
    );
  });

  it('turns unhealthy over its queue bound, drops output, and says in the recording what was lost', async () => {
    const fake = fakeRecordings();
    const dropped: number[] = [];
    const rec = new Recorder(new SessionEvents(null as never), {
      terminals: fake as unknown as TerminalRecordings,
      terminal: { maxQueueBytes: 100, chunkBytes: 1, batchDelayMs: 0 },
      onDropped: (n) => dropped.push(n),
      onError: () => undefined,
    });
    fake.down = true;
    const term = rec.terminal('t-full', { width: 80, height: 24 });
    for (let i = 0; i < 5; i++) term.output(text(`${'y'.repeat(30)}\n`));
    assert.equal(rec.healthy, false);
    assert.ok(dropped.length > 0);
    fake.down = false;
    const deadline = Date.now() + 5_000;
    while (!rec.healthy) {
      assert.ok(Date.now() < deadline, 'the queue was never written once the store was back');
      await new Promise((r) => setTimeout(r, 10));
    }
    term.output(text('after\n'));
    await term.close();
    const events = castOf(fake.batches.flat()).events;
    const marker = events.find((e) => e[1] === 'm');
    assert.ok(marker, JSON.stringify(events));
    assert.match(marker[2], /^\d+ bytes of this recording were lost/);
    assert.equal(events.at(-1)![2], 'after\n');
    assert.equal(rec.healthy, true);
    await rec.close(1_000);
  });

  it('idle() writes output still gathering for its batch without waiting for the timer', async () => {
    const fake = fakeRecordings();
    const rec = new Recorder(new SessionEvents(null as never), {
      terminals: fake as unknown as TerminalRecordings,
      terminal: { batchDelayMs: 60_000 },
    });
    const term = rec.terminal('t-idle', { width: 80, height: 24 });
    term.output(text('still open\n'));
    await rec.idle();
    assert.deepEqual(
      castOf(fake.batches.flat()).events.map((e) => e[2]),
      ['still open\n'],
    );
    assert.equal(await rec.close(1_000), 0);
  });

  it('refuses a terminal recording when built without a store for one', () => {
    const rec = new Recorder(new SessionEvents(null as never));
    assert.throws(
      () => rec.terminal('t', { width: 80, height: 24 }),
      /without a store for terminal recordings/,
    );
  });
});

for (const dialect of DIALECTS) {
  describe(`terminal recordings in the store (${dialect})`, () => {
    const suite = storeForSuite(dialect);

    it('reads back as asciicast v2 what the recorder wrote, keystrokes only when asked', async () => {
      const clock = manualClock();
      const rec = new Recorder(new SessionEvents(suite.store), {
        terminals: new TerminalRecordings(suite.store),
        terminal: { clock: clock.now, chunkBytes: 64 },
      });
      const quiet = rec.terminal('t-quiet', { width: 80, height: 24, title: 'psql' });
      const keys = rec.terminal('t-keys', { width: 80, height: 24, recordInput: true });
      for (const term of [quiet, keys]) {
        clock.ms = 0;
        term.input(text('ls\r'));
        clock.ms = 500;
        term.output(Buffer.from([0xe2, 0x9c]));
        clock.ms = 750;
        term.output(Buffer.from([0x93, 0x0a]));
        term.resize(100, 30);
        for (let i = 0; i < 5; i++) term.output(text(`line ${i} of a listing\n`));
        await term.close();
      }
      const recordings = new TerminalRecordings(suite.store);
      const quietCast = parseAsciicast((await recordings.read('t-quiet'))!);
      assert.deepEqual(quietCast.header.title, 'psql');
      assert.deepEqual(quietCast.events.slice(0, 2), [
        [0.75, 'o', '✓\n'],
        [0.75, 'r', '100x30'],
      ]);
      assert.equal(quietCast.events.length, 7);
      const keysCast = parseAsciicast((await recordings.read('t-keys'))!);
      assert.deepEqual(keysCast.events[0], [0, 'i', 'ls\r']);
      assert.ok((await recordings.chunks('t-keys')).length > 2, 'several bounded chunks');
      assert.equal(await recordings.read('t-none'), undefined);
      assert.equal(await rec.close(1_000), 0);
    });

    it('stops a recording at its size bound with a truncation marker instead of growing', async () => {
      const rec = new Recorder(new SessionEvents(suite.store), {
        terminals: new TerminalRecordings(suite.store),
        terminal: { maxSessionBytes: 2_000, chunkBytes: 256 },
      });
      const term = rec.terminal('t-long', { width: 80, height: 24 });
      for (let i = 0; i < 500; i++) term.output(text(`${i} ${'z'.repeat(60)}\n`));
      await term.close();
      const stored = (await new TerminalRecordings(suite.store).read('t-long'))!;
      const cast = parseAsciicast(stored);
      assert.equal(cast.events.at(-1)![1], 'm');
      assert.match(cast.events.at(-1)![2], /^recording truncated: over 2000 bytes/);
      assert.ok(Buffer.byteLength(stored) < 2_000 + 300, `${Buffer.byteLength(stored)} bytes stored`);
      // Read page by page (as the API streams it), the text is the same, in the same order.
      const chunks = await new TerminalRecordings(suite.store).chunks('t-long');
      assert.ok(chunks.length > 3, `${chunks.length} chunks`);
      const paged: string[] = [];
      for await (const part of new TerminalRecordings(suite.store).text('t-long', 2)) paged.push(part);
      assert.equal(paged.length, chunks.length);
      assert.equal(paged.join(''), stored);
      await rec.close(1_000);
    });

    it('writes a chunk retried after a lost acknowledgement once, and a failing batch not at all', async () => {
      const recordings = new TerminalRecordings(suite.store);
      const chunk = (seq: number, data: string) => ({ session_id: 't-retry', seq, time: seq / 10, data });
      await recordings.append([
        chunk(0, '{"version":2,"width":80,"height":24}\n'),
        chunk(1, '[0.1,"o","a"]\n'),
      ]);
      await recordings.append([chunk(1, '[0.1,"o","a"]\n'), chunk(2, '[0.2,"o","b"]\n')]);
      assert.deepEqual(
        parseAsciicast((await recordings.read('t-retry'))!).events.map((e) => e[2]),
        ['a', 'b'],
      );
      assert.deepEqual(
        (await recordings.chunks('t-retry')).map((c) => [c.seq, c.time]),
        [
          [0, 0],
          [1, 0.1],
          [2, 0.2],
        ],
      );
      const broken = { ...chunk(1, 'x'), session_id: 't-broken', data: null as unknown as string };
      await assert.rejects(recordings.append([{ ...chunk(0, 'h'), session_id: 't-broken' }, broken]));
      assert.equal(await recordings.read('t-broken'), undefined, 'all or none');
    });
  });
}
