import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Listeners } from './listeners.js';

describe('desk listeners', () => {
  it('tells every listener, reports one that throws, and forgets a removed one', () => {
    const errors: string[] = [];
    const seen: string[] = [];
    const listeners = new Listeners<string>((err) => errors.push(err.message));
    listeners.add(() => {
      throw new Error('a listener broke');
    });
    const remove = listeners.add((v) => seen.push(`b:${v}`));
    listeners.add((v) => seen.push(`c:${v}`));
    listeners.emit('revoked');
    assert.deepEqual(seen, ['b:revoked', 'c:revoked'], 'the ones after a failing listener are still told');
    assert.deepEqual(errors, ['a listener broke']);
    remove();
    listeners.emit('expired');
    assert.deepEqual(seen, ['b:revoked', 'c:revoked', 'c:expired']);
    assert.equal(listeners.size, 2);
  });
});
