// What a review notification says: the signed JSON of a generic webhook and the Slack
// incoming-webhook message. Pure functions of a review, so the wire format is testable alone.
import { createHmac } from 'node:crypto';
import type { ReviewEvent } from '../config/schema.js';
import type { ReviewView } from '../store/reviews.js';

/** The event a review's new state announces; the names are those of the audit trail without `review.`. */
export function reviewEvent(r: ReviewView): ReviewEvent {
  if (r.status === 'pending') return r.approvals.length === 0 ? 'requested' : 'approval';
  // Broken glass: announced once, then approvals after the fact until one ratifies or denies it.
  if (r.status === 'break-glass') return r.approvals.length === 0 ? 'break_glass' : 'approval';
  return r.status;
}

/** The body of a webhook delivery. */
export interface WebhookPayload {
  event: `review.${ReviewEvent}`;
  review: ReviewView;
  sent_at: string;
}

/**
 * The signature scheme of webhook deliveries. Each attempt carries
 *
 *   x-warden-timestamp: <unix seconds when the attempt was sent>
 *   x-warden-signature: sha256=<hex HMAC-SHA256, keyed with the webhook secret, of
 *                       the ASCII bytes "<timestamp>." followed by the exact body bytes>
 *
 * A receiver recomputes the HMAC over the raw body it received (before any JSON parsing),
 * compares in constant time, and refuses a timestamp more than a few minutes from its clock
 * (a replay). `x-warden-delivery` is the same on every attempt of one delivery, so a receiver
 * that saw it already can drop the repeat.
 */
export function webhookSignature(secret: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body);
  return `sha256=${mac.digest('hex')}`;
}

/** Slack incoming-webhook message (`text` is the notification fallback, `blocks` what is shown). */
export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

/** Slack's mrkdwn needs only these three escaped; the rest is shown as typed. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A section's text is at most 3000 characters; a very long statement is cut, visibly. */
function codeBlock(command: string): string {
  const body =
    command.length > 2800 ? `${command.slice(0, 2800)}\n… (${command.length} characters)` : command;
  // Three backticks would end the block early; a zero-width space between them keeps it whole.
  return `\`\`\`${esc(body).replace(/```/g, '``\u200b`')}\`\`\``;
}

function outcomeLine(r: ReviewView): string {
  const count = `${r.approvals.length} of ${r.approvals_required} approvals`;
  const why = r.reason ? `: ${esc(r.reason)}` : '';
  switch (r.status) {
    case 'pending':
      return `Waiting for ${count} from ${esc(r.approver_groups.join(', '))}; expires ${r.expires_at}.`;
    case 'approved':
      return `Approved by ${esc(r.decided_by ?? '?')} (${count})${why}. The command runs.`;
    case 'denied':
      return `Denied by ${esc(r.decided_by ?? '?')}${why}. The command was refused.`;
    case 'expired':
      return `Expired with ${count}. The command was refused.`;
    case 'cancelled':
      return 'Cancelled: the client withdrew the command or went away.';
    case 'break-glass':
      return `Run before any approval by ${esc(r.decided_by ?? '?')} (break-glass)${why}. Approvers must approve or deny it after the fact (${count}).`;
  }
}

const HEADLINES: Record<ReviewEvent, string> = {
  requested: 'asks to run a command that needs approval',
  approval: 'has one more approval',
  approved: 'was approved',
  denied: 'was denied',
  expired: 'expired',
  cancelled: 'was cancelled',
  break_glass: 'was run before approval (break-glass)',
};

export function slackMessage(r: ReviewView, consoleUrl: string | undefined): SlackMessage {
  const event = reviewEvent(r);
  const who = esc(r.requester.subject);
  const text =
    event === 'requested'
      ? `${who} asks to run a command on ${esc(r.connection)} (review ${r.id})`
      : `Review ${r.id} by ${who} on ${esc(r.connection)} ${HEADLINES[event]}`;
  const blocks: Array<Record<string, unknown>> = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${text}*` } },
    {
      type: 'section',
      fields: [
        {
          type: 'mrkdwn',
          text: `*Requested by*\n${who}${r.requester.root !== r.requester.subject ? ` (for ${esc(r.requester.root)})` : ''}`,
        },
        { type: 'mrkdwn', text: `*Connection*\n${esc(r.connection)}` },
        { type: 'mrkdwn', text: `*Rule*\n${esc(r.rule)}` },
        {
          type: 'mrkdwn',
          text: `*Approvals*\n${r.approvals.map((a) => esc(a.subject)).join(', ') || 'none yet'} (${r.approvals.length}/${r.approvals_required})`,
        },
      ],
    },
    { type: 'section', text: { type: 'mrkdwn', text: codeBlock(r.command) } },
  ];
  if (r.message) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: esc(r.message) }] });
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: outcomeLine(r) } });
  if (r.status === 'pending') {
    if (consoleUrl) {
      const link = (action: string) =>
        `${consoleUrl.replace(/\/+$/, '')}/reviews/${encodeURIComponent(r.id)}?action=${action}`;
      blocks.push({
        type: 'actions',
        elements: [
          {
            type: 'button',
            text: { type: 'plain_text', text: 'Approve' },
            style: 'primary',
            url: link('approve'),
          },
          { type: 'button', text: { type: 'plain_text', text: 'Deny' }, style: 'danger', url: link('deny') },
        ],
      });
    }
    blocks.push({
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: `\`warden reviews approve ${r.id}\` · \`warden reviews deny ${r.id}\`` },
      ],
    });
  }
  return { text, blocks };
}
