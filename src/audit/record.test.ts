import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson } from '../crypto/canonical.js';
import { hashEncodedRecord, hashRecord } from './record.js';

describe('audit record hashing', () => {
  it('hashes a record with pre-encoded actor and payload exactly as from the objects', () => {
    const cases = [
      { target: null, payload: {}, actor: { subject: 'warden', kind: 'system', chain: [] } },
      {
        target: 'connection:orders "db"',
        payload: { z: 1, a: [{ y: 'é\u2028', b: null }], n: 1.5, t: true, quote: '"\\\n' },
        actor: { subject: 'alice', kind: 'human', chain: ['bot-a', 'bot-b'], root: 'alice', token_id: null },
      },
    ];
    for (const [i, c] of cases.entries()) {
      const base = {
        seq: 1_000_000_000 + i,
        id: `0b1c-${i}`,
        time: '2026-11-22T07:00:00.000Z',
        type: 'command.allowed',
        actor: c.actor,
        target: c.target,
        outcome: 'success' as const,
        payload: c.payload,
        prev_hash: 'ab'.repeat(32),
      };
      assert.equal(
        hashEncodedRecord(base, canonicalJson(base.actor), canonicalJson(base.payload)),
        hashRecord(base),
      );
    }
  });
});
