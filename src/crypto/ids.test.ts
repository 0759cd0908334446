import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { timeOrderedId } from './ids.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond timestamp an id carries. */
const millisOf = (id: string): number => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);

describe('time-ordered ids (UUIDv7)', () => {
  it('are RFC 9562 version 7 UUIDs carrying the given millisecond timestamp in their first 48 bits', () => {
    const stamps = [
      0,
      1,
      2 ** 32 - 1, // the last one before the high/low split carries a bit
      2 ** 32,
      2 ** 32 + 1,
      Date.UTC(2026, 10, 22, 8, 18, 59, 123),
      Date.now(),
      2 ** 48 - 1,
    ];
    for (const ms of stamps) {
      const id = timeOrderedId(ms);
      assert.match(id, UUID_V7, `${ms} -> ${id}`);
      assert.equal(millisOf(id), ms, `${ms} -> ${id}`);
    }
    const now = Date.now();
    const id = timeOrderedId();
    assert.match(id, UUID_V7);
    assert.ok(millisOf(id) >= now && millisOf(id) <= Date.now(), 'defaults to the current time');
  });

  it('sort as strings in the order of their timestamps', () => {
    let ms = Date.UTC(2026, 0, 1);
    const ids: string[] = [];
    for (let i = 0; i < 2_000; i++) {
      // Steps of 1 ms up to a few years, across byte and 32-bit boundaries of the timestamp.
      ms += i % 3 === 0 ? 1 : i % 3 === 1 ? 255 + i : 2 ** 24 + i * 7;
      ids.push(timeOrderedId(ms));
    }
    ids.push(timeOrderedId(2 ** 32 - 1), timeOrderedId(2 ** 32));
    const inTimeOrder = [...ids].sort((a, b) => millisOf(a) - millisOf(b));
    assert.deepEqual([...ids].sort(), inTimeOrder);
  });

  it('are unique over 100k ids made in the same few milliseconds', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(timeOrderedId());
    assert.equal(seen.size, 100_000);
  });

  it('stay unique and valid across refills of the random pool, even within one millisecond', () => {
    // The random bits come from a pool of 256 ids: one timestamp for all of them means only a
    // refilled pool keeps them apart.
    const ms = Date.UTC(2026, 10, 22);
    const ids = Array.from({ length: 256 * 4 + 3 }, () => timeOrderedId(ms));
    for (const id of ids) {
      assert.match(id, UUID_V7);
      assert.equal(millisOf(id), ms);
    }
    assert.equal(new Set(ids).size, ids.length);
    const randomPart = (id: string) => id.replaceAll('-', '').slice(12);
    assert.equal(new Set(ids.map(randomPart)).size, ids.length, 'the random bits differ, not only the time');
  });
});
