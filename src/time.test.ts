import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTime } from './time.js';

describe('isoTime', () => {
  it('spells every time exactly as Date#toISOString does', () => {
    const times = [
      0, 1, 999, 1000, 1001, 59_999, 60_000, 1_700_000_000_000, 1_700_000_000_999, 1_700_000_001_000,
      951_782_400_000 /* 2000-02-29 */, 253_402_300_799_999 /* 9999-12-31T23:59:59.999 */,
      253_402_300_800_000 /* year 10000: +010000- */, 8.64e15, -1, -1000.5, -0.5, -0, 1_700_000_000_123.987,
    ];
    for (let i = 0; i < 5000; i++) times.push(Math.random() * 4e12, Date.now() + i * 0.37);
    for (const t of times) assert.equal(isoTime(t), new Date(t).toISOString(), `time ${t}`);
  });

  it('keeps the milliseconds right when times go back and forth across a second', () => {
    const base = 1_700_000_000_000;
    for (const t of [base + 999, base + 1000, base + 5, base + 1999, base + 999.9, base + 1000.1]) {
      assert.equal(isoTime(t), new Date(t).toISOString());
    }
  });

  it('refuses what Date refuses (an invalid time)', () => {
    assert.throws(() => isoTime(Number.NaN), RangeError);
    assert.throws(() => isoTime(8.64e15 + 1), RangeError);
  });
});
