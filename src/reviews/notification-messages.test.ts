import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { AuditLog } from '../audit/log.js';
import type { AuditEvent } from '../audit/record.js';
import type { ReviewView } from '../store/reviews.js';
import { reviewEvent, slackMessage, webhookSignature } from './notification-messages.js';
import { backoffMs, Notifications, retryAfterMs } from './notify.js';

const review = (over: Partial<ReviewView> = {}): ReviewView => ({
  id: 'r1',
  status: 'pending',
  version: 1,
  created_at: '2026-01-01T00:00:00.000Z',
  expires_at: '2026-01-01T00:05:00.000Z',
  decided_at: null,
  session_id: 's1',
  connection: 'shop',
  command: 'DELETE FROM orders',
  rule: 'hold-deletes',
  rules: ['hold-deletes'],
  message: null,
  requester: { subject: 'agent-7', kind: 'agent', root: 'alice', chain: ['alice'], token_id: null },
  approver_groups: ['dba'],
  approvals_required: 2,
  approvals: [],
  decided_by: null,
  reason: null,
  fingerprint: null,
  break_glass: false,
  reuse_until: null,
  options: { held: true, reuse_ms: null, break_glass: true },
  text_hash: null,
  ...over,
});

describe('review notification messages', () => {
  it('names the event after the review state: requested, approval, then the outcome', () => {
    assert.equal(reviewEvent(review()), 'requested');
    const one = { subject: 'bob', root: 'bob', at: '2026-01-01T00:01:00.000Z', reason: null };
    assert.equal(reviewEvent(review({ approvals: [one] })), 'approval');
    assert.equal(reviewEvent(review({ status: 'expired' })), 'expired');
    // Broken glass is announced once; approvals after the fact then follow as approvals.
    const broken = review({
      status: 'break-glass',
      break_glass: true,
      decided_by: 'agent-7',
      reason: 'outage',
    });
    assert.equal(reviewEvent(broken), 'break_glass');
    assert.equal(reviewEvent({ ...broken, approvals: [one] }), 'approval');
    assert.match(slackMessage(broken, undefined).text, /was run before approval \(break-glass\)/);
  });

  it('signs "<timestamp>.<body>" with HMAC-SHA256, so a changed body or timestamp does not verify', () => {
    const body = '{"event":"review.requested"}';
    const expected = createHmac('sha256', 'k').update(`1700000000.${body}`).digest('hex');
    assert.equal(webhookSignature('k', 1700000000, body), `sha256=${expected}`);
    assert.notEqual(webhookSignature('k', 1700000001, body), `sha256=${expected}`);
    assert.notEqual(webhookSignature('k', 1700000000, `${body} `), `sha256=${expected}`);
  });

  it('keeps a command with backticks and angle brackets inside its Slack code block', () => {
    const m = slackMessage(review({ command: "SELECT '```' <x> & 1" }), undefined);
    const code = JSON.stringify(m.blocks);
    assert.ok(code.includes("```SELECT '``\u200b`' &lt;x&gt; &amp; 1```"), code);
    assert.ok(m.text.includes('agent-7'));
    assert.ok(code.includes('(for alice)'));
    assert.ok(!code.includes('action=approve'), 'no links without console_url');
    assert.ok(code.includes('warden reviews approve r1'));
  });
});

describe('review notification retries', () => {
  it('doubles the wait after each failed attempt up to max_backoff', () => {
    const retry = { attempts: 6, initial_backoff: 500, max_backoff: 3_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffMs(retry, n)),
      [500, 1_000, 2_000, 3_000, 3_000],
    );
  });

  it('follows a short Retry-After, in seconds or as a date, and ignores a long or unreadable one', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterMs('2', now), 2_000);
    assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
    assert.equal(retryAfterMs('3600', now), undefined);
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });
});

describe('review notifications at shutdown', () => {
  it('drops the oldest when the queue is full; at close gives a delivery in flight a short grace, then records it as failed', async () => {
    const server = createServer(() => undefined); // takes every request and never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const audited: AuditEvent[] = [];
    const outcomes: string[] = [];
    const n = new Notifications(
      [
        {
          kind: 'webhook',
          url,
          secret_env: 'X',
          events: ['requested'],
          timeout: 60_000,
          retry: { attempts: 5, initial_backoff: 500, max_backoff: 30_000 },
        },
      ],
      ['k'],
      undefined,
      { record: (e: AuditEvent) => audited.push(e) } as unknown as AuditLog,
      { onOutcome: (o) => outcomes.push(`${o.review}:${o.outcome}:${o.error}`), maxQueue: 1 },
    );
    try {
      n.notify(review({ id: 'a' }));
      n.notify(review({ id: 'b' }));
      assert.equal(n.pending, 2, 'a in flight, b queued');
      n.notify(review({ id: 'c' }));
      assert.deepEqual(outcomes, ['b:dropped:queue full']);
      const started = Date.now();
      assert.equal(await n.close(200), 1, 'c was never tried');
      assert.ok(Date.now() - started < 5_000, 'close does not wait for the 60 s timeout');
      assert.deepEqual(outcomes, [
        'b:dropped:queue full',
        'a:failed:gateway stopped during the attempt',
        'c:dropped:gateway stopped',
      ]);
      assert.equal(audited[0]?.type, 'review.notification.failed');
      assert.equal(audited[0]?.payload?.error, 'gateway stopped during the attempt');
      n.notify(review({ id: 'd' }));
      assert.equal(n.pending, 0, 'nothing is queued once closed');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
