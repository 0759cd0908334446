import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { oneLine } from './output.js';

describe('one-line output of recorded text', () => {
  it('folds whitespace, clips with an ellipsis and drops control characters (terminal escapes)', () => {
    assert.equal(oneLine('select\n  1\t;', 80), 'select 1 ;');
    assert.equal(oneLine('delete from orders where id = 1', 10), 'delete fr…');
    assert.equal(oneLine('drop table x\u001b]0;owned\u0007\u001b[2J', 80), 'drop table x]0;owned[2J');
    assert.equal(oneLine('x'.repeat(500), Number.POSITIVE_INFINITY).length, 500);
  });
});
