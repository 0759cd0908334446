import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { Preapprovals, type PreapprovalView } from './preapprovals.js';
import { Store } from './store.js';

const now = new Date('2026-11-22T12:00:00Z');
const pre = (id: string, over: Partial<PreapprovalView>): PreapprovalView => ({
  id,
  connection: 'shop',
  fingerprint: 'delete from shapes',
  rule: 'review-deletes',
  subject: 'alice',
  group: null,
  review_id: null,
  created_by: 'bob',
  created_at: now.toISOString(),
  expires_at: new Date(now.getTime() + 3_600_000).toISOString(),
  reason: null,
  revoked_at: null,
  ...over,
});

for (const dialect of DIALECTS) {
  describe(`pre-approvals in the store (${dialect})`, () => {
    let fx: StoreFixture;
    let store: Store;
    let preapprovals: Preapprovals;
    const alice = { subject: 'alice', root: 'alice', groups: ['dev'] };

    before(async () => {
      fx = await storeFixture(dialect);
      store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
      preapprovals = new Preapprovals(store);
      await preapprovals.insert(pre('p-subject', {}));
      await preapprovals.insert(
        pre('p-group', { subject: null, group: 'dev', fingerprint: 'truncate logs' }),
      );
      await preapprovals.insert(
        pre('p-expired', { fingerprint: 'delete from old', expires_at: now.toISOString() }),
      );
    });
    after(async () => {
      await store.close();
      await fx.cleanup();
    });

    it('covers the same shape, connection and rule, for the person or a group they are in', async () => {
      assert.equal(
        (await preapprovals.find('shop', 'delete from shapes', 'review-deletes', alice, now))?.id,
        'p-subject',
      );
      const viaAgent = { subject: 'agent-a', root: 'alice', groups: [] };
      assert.equal(
        (await preapprovals.find('shop', 'delete from shapes', 'review-deletes', viaAgent, now))?.id,
        'p-subject',
      );
      assert.equal(
        (await preapprovals.find('shop', 'truncate logs', 'review-deletes', alice, now))?.id,
        'p-group',
      );
    });

    it('does not stand in for a stricter rule that catches the same shape, nor elsewhere, for others, or once expired', async () => {
      assert.equal(
        await preapprovals.find('shop', 'delete from shapes', 'two-person-rule', alice, now),
        undefined,
      );
      assert.equal(
        await preapprovals.find('billing', 'delete from shapes', 'review-deletes', alice, now),
        undefined,
      );
      const carol = { subject: 'carol', root: 'carol', groups: ['ops'] };
      assert.equal(
        await preapprovals.find('shop', 'delete from shapes', 'review-deletes', carol, now),
        undefined,
      );
      assert.equal(
        await preapprovals.find('shop', 'delete from old', 'review-deletes', alice, now),
        undefined,
      );
    });
  });
}
