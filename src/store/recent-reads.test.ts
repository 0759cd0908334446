import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentReads } from './recent-reads.js';

describe('recent reads', () => {
  it('makes room by dropping expired entries first, then the oldest live one', () => {
    const reads = new RecentReads<string>(1_000, 3);
    reads.keep('a', 'A', reads.mark(), 0);
    reads.keep('b', 'B', reads.mark(), 10);
    reads.keep('c', 'C', reads.mark(), 1_500);
    // At 1,600 a and b have expired: both go, c stays.
    reads.keep('d', 'D', reads.mark(), 1_600);
    assert.equal(reads.size, 2);
    assert.deepEqual([reads.get('c', 1_600), reads.get('d', 1_600)], ['C', 'D']);
    reads.keep('e', 'E', reads.mark(), 1_700);
    // Full of live entries: the oldest (c) makes room.
    reads.keep('f', 'F', reads.mark(), 1_800);
    assert.equal(reads.size, 3);
    assert.equal(reads.get('c', 1_800), undefined);
    assert.deepEqual(
      ['d', 'e', 'f'].map((k) => reads.get(k, 1_800)),
      ['D', 'E', 'F'],
    );
  });

  it('keeps no read begun before a forget(), and honours a sooner end', () => {
    const reads = new RecentReads<number>(1_000);
    const mark = reads.mark();
    reads.forget();
    assert.equal(reads.keep('x', 1, mark, 0), false);
    assert.equal(reads.keep('x', 1, reads.mark(), 0, 200), true);
    assert.equal(reads.get('x', 199), 1);
    assert.equal(reads.get('x', 200), undefined);
  });
});
