// Announces reviews to webhooks and Slack. Every review this gateway opens or changes is queued per
// notifier and delivered in the background, so a slow or dead receiver never holds up a statement
// or an API call; failed attempts are retried with backoff, and a delivery that finally fails is
// audited as `review.notification.failed`.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditLog } from '../audit/log.js';
import { SYSTEM_ACTOR } from '../audit/record.js';
import type { NotifierConfig, ReviewEvent } from '../config/schema.js';
import type { ReviewView } from '../store/reviews.js';
import { reviewEvent, slackMessage, type WebhookPayload, webhookSignature } from './notification-messages.js';

/** A receiver's Retry-After is followed up to this; a longer one gets the usual backoff. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Deliveries waiting per notifier; beyond it the oldest is dropped (a receiver that has been down for long). */
const DEFAULT_MAX_QUEUE = 5_000;

export type NotifierKind = NotifierConfig['kind'];

/** How a delivery ended, for metrics and logs. Carries the receiver's host only: a Slack URL is a secret. */
export interface DeliveryOutcome {
  kind: NotifierKind;
  host: string;
  review: string;
  event: ReviewEvent;
  outcome: 'sent' | 'failed' | 'dropped';
  attempts: number;
  /** Why the last attempt failed (`HTTP 500`, `timed out after 5000 ms`, a network error). */
  error?: string;
}

export interface NotificationsOptions {
  onOutcome?: (o: DeliveryOutcome) => void;
  maxQueue?: number;
}

/** The notifier's `retry` settings: the wait after failed attempt `n` (1-based). */
export function backoffMs(retry: NotifierConfig['retry'], failedAttempt: number): number {
  return Math.min(retry.initial_backoff * 2 ** (failedAttempt - 1), retry.max_backoff);
}

/** Retry-After in seconds or as an HTTP date; undefined when absent, unreadable or too long to follow. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const ms = /^\d+$/.test(header.trim()) ? Number(header.trim()) * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_RETRY_AFTER_MS) return undefined;
  return ms;
}

interface Delivery {
  id: string;
  review: ReviewView;
  event: ReviewEvent;
}

/** One failed attempt: retried (network, 5xx, 429) or not (any other status). */
interface AttemptFailure {
  error: string;
  retry: boolean;
  waitMs?: number;
}

class Notifier {
  private readonly queue: Delivery[] = [];
  private worker: Promise<void> = Promise.resolve();
  private running = false;

  constructor(
    private readonly config: NotifierConfig,
    private readonly secret: string | undefined,
    private readonly consoleUrl: string | undefined,
    private readonly stopping: AbortSignal,
    private readonly report: (
      d: Delivery,
      outcome: DeliveryOutcome['outcome'],
      attempts: number,
      error?: string,
    ) => void,
    private readonly maxQueue: number,
  ) {}

  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  enqueue(review: ReviewView): void {
    const event = reviewEvent(review);
    if (!this.config.events.includes(event)) return;
    this.queue.push({ id: randomUUID(), review, event });
    while (this.queue.length > this.maxQueue) this.report(this.queue.shift()!, 'dropped', 0, 'queue full');
    if (this.running) return;
    this.running = true;
    this.worker = this.drain();
  }

  /** Resolves once the queue is empty (or the notifier is stopping). */
  idle(): Promise<void> {
    return this.worker;
  }

  /** What was never tried because the gateway stopped. */
  abandon(): number {
    const n = this.queue.length;
    for (const d of this.queue.splice(0)) this.report(d, 'dropped', 0, 'gateway stopped');
    return n;
  }

  // One delivery at a time, in order: a receiver sees `requested` before the decision.
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.stopping.aborted) {
        // deliver() settles every failure itself; a throwing hook must not stop the queue.
        await this.deliver(this.queue.shift()!).catch(() => undefined);
      }
    } finally {
      // In the same tick as the empty-queue check: a delivery queued after it starts a new drain.
      this.running = false;
    }
  }

  private async deliver(d: Delivery): Promise<void> {
    const { attempts } = this.config.retry;
    let failure: AttemptFailure | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      failure = await this.attempt(d);
      if (!failure) return this.report(d, 'sent', attempt);
      if (!failure.retry || attempt === attempts || this.stopping.aborted) {
        return this.report(d, 'failed', attempt, failure.error);
      }
      const wait = failure.waitMs ?? backoffMs(this.config.retry, attempt);
      try {
        await sleep(wait, undefined, { signal: this.stopping });
      } catch {
        return this.report(d, 'failed', attempt, `${failure.error}; gateway stopped before the next attempt`);
      }
    }
  }

  private async attempt(d: Delivery): Promise<AttemptFailure | undefined> {
    const { body, headers } = this.request(d);
    const timeout = AbortSignal.timeout(this.config.timeout);
    try {
      const res = await fetch(this.config.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([timeout, this.stopping]),
      });
      // The body is not needed; reading it frees the connection for the next delivery.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return undefined;
      const retry = res.status === 429 || res.status >= 500;
      return { error: `HTTP ${res.status}`, retry, waitMs: retryAfterMs(res.headers.get('retry-after')) };
    } catch (err) {
      if (timeout.aborted) return { error: `timed out after ${this.config.timeout} ms`, retry: true };
      if (this.stopping.aborted) return { error: 'gateway stopped during the attempt', retry: false };
      return { error: this.describe(err as Error), retry: true };
    }
  }

  private request(d: Delivery): { body: string; headers: Record<string, string> } {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.config.kind === 'slack') {
      return { body: JSON.stringify(slackMessage(d.review, this.consoleUrl)), headers };
    }
    const payload: WebhookPayload = {
      event: `review.${d.event}`,
      review: d.review,
      sent_at: new Date().toISOString(),
    };
    const body = JSON.stringify(payload);
    const timestamp = Math.floor(Date.now() / 1000);
    headers['x-warden-event'] = payload.event;
    headers['x-warden-delivery'] = d.id;
    headers['x-warden-timestamp'] = String(timestamp);
    if (this.secret !== undefined)
      headers['x-warden-signature'] = webhookSignature(this.secret, timestamp, body);
    return { body, headers };
  }

  /** fetch's own message is a bare "fetch failed"; the cause says what went wrong. Never the URL. */
  private describe(err: Error): string {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const text = cause?.code ?? cause?.message ?? err.message;
    return text.split(this.config.url).join(new URL(this.config.url).host);
  }
}

/** Delivers review notifications for one gateway; `notify` is meant as an `Approvals.onChange` listener. */
export class Notifications {
  private readonly notifiers: Notifier[];
  private readonly stopper = new AbortController();
  private closed = false;

  constructor(
    configs: readonly NotifierConfig[],
    /** The HMAC key of each entry of `configs`, by position. */
    secrets: ReadonlyArray<string | undefined>,
    consoleUrl: string | undefined,
    private readonly audit: AuditLog,
    private readonly opts: NotificationsOptions = {},
  ) {
    this.notifiers = configs.map(
      (c, i) =>
        new Notifier(
          c,
          secrets[i],
          consoleUrl,
          this.stopper.signal,
          (d, outcome, attempts, error) =>
            this.finished(c.kind, new URL(c.url).host, d, outcome, attempts, error),
          opts.maxQueue ?? DEFAULT_MAX_QUEUE,
        ),
    );
  }

  /** Queues the review's new state for every notifier that wants its event; returns at once. */
  notify(review: ReviewView): void {
    if (this.closed) return;
    for (const n of this.notifiers) n.enqueue(review);
  }

  /** Deliveries queued or in flight. */
  get pending(): number {
    return this.notifiers.reduce((sum, n) => sum + n.pending, 0);
  }

  /**
   * Stops taking notifications, gives those queued and in flight `graceMs` to finish, then
   * abandons the rest. Returns how many were never tried.
   */
  async close(graceMs = 2_000): Promise<number> {
    this.closed = true;
    const grace = new AbortController();
    await Promise.race([
      Promise.all(this.notifiers.map((n) => n.idle())),
      sleep(graceMs, undefined, { signal: grace.signal }).catch(() => undefined),
    ]);
    grace.abort();
    this.stopper.abort();
    await Promise.all(this.notifiers.map((n) => n.idle()));
    return this.notifiers.reduce((sum, n) => sum + n.abandon(), 0);
  }

  private finished(
    kind: NotifierKind,
    host: string,
    d: Delivery,
    outcome: DeliveryOutcome['outcome'],
    attempts: number,
    error?: string,
  ): void {
    if (outcome === 'failed') {
      this.audit.record({
        type: 'review.notification.failed',
        actor: SYSTEM_ACTOR,
        target: `review:${d.review.id}`,
        outcome: 'failure',
        payload: {
          review: d.review.id,
          event: `review.${d.event}`,
          notifier: kind,
          host,
          delivery: d.id,
          attempts,
          error: error ?? null,
        },
      });
    }
    this.opts.onOutcome?.({
      kind,
      host,
      review: d.review.id,
      event: d.event,
      outcome,
      attempts,
      ...(error ? { error } : {}),
    });
  }
}
