// Every change to a review, once, for live streams: what this gateway's approvals desk creates or
// changes the moment it happens, and what other gateways on the store do by polling it.
import type { Reviews, ReviewView } from '../store/reviews.js';
import type { Approvals } from './approvals.js';
import { Listeners } from './listeners.js';

export type FeedListener = (review: ReviewView) => void;

export interface ReviewFeedOptions {
  /** How often the store is read for changes made through other gateways. */
  pollMs?: number;
  onError?: (err: Error) => void;
}

/** How many awaiting reviews one poll reads (the newest); older ones are seen only through this gateway. */
const PENDING_READ = 500;

/** A decided review's last version is remembered this long, so a late local echo is not sent again. */
const DECIDED_KEPT_MS = 60_000;

/**
 * Polls only while someone listens. A review is identified by id and version: a version is
 * passed on once, whichever of the local desk or the poll reports it first, and never after a
 * newer one.
 */
export class ReviewFeed {
  private readonly listeners: Listeners<ReviewView>;
  /** Last version passed on, per review; decided ones with the time they were dropped from the watch. */
  private readonly seen = new Map<string, { version: number; decidedAt?: number }>();
  /** Reviews pending at the last poll: a decision on one of them is read by id at the next. */
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private polling = false;

  constructor(
    private readonly reviews: Reviews,
    private readonly approvals: Approvals,
    private readonly opts: ReviewFeedOptions = {},
  ) {
    this.listeners = new Listeners(opts.onError);
  }

  /** Calls `listener` with each new review version; returns the unsubscribe. */
  subscribe(listener: FeedListener): () => void {
    const remove = this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      remove();
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Stops polling and forgets every listener (the server is closing). */
  close(): void {
    this.listeners.clear();
    this.stop();
  }

  private start(): void {
    this.unsubscribe = this.approvals.onChange((r) => this.offer(r));
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs ?? 1_000);
    this.timer.unref();
    void this.poll();
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    this.seen.clear();
    this.pending.clear();
  }

  private offer(r: ReviewView): void {
    const last = this.seen.get(r.id);
    if (last && last.version >= r.version) return;
    this.seen.set(r.id, { version: r.version, ...(r.status === 'pending' ? {} : { decidedAt: Date.now() }) });
    this.listeners.emit(r);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      // Awaiting approvers: pending, and broken glass to review after the fact.
      const pending = await this.reviews.list({
        status: ['pending', 'break-glass'],
        limit: PENDING_READ,
      });
      const now = new Set(pending.map((r) => r.id));
      const gone = [...this.pending].filter((id) => !now.has(id));
      const decided = await this.reviews.decided(gone);
      if (!this.unsubscribe) return; // stopped while reading
      for (const r of [...pending, ...decided]) this.offer(r);
      this.pending = now;
      const cutoff = Date.now() - DECIDED_KEPT_MS;
      for (const [id, s] of this.seen)
        if (s.decidedAt !== undefined && s.decidedAt < cutoff) this.seen.delete(id);
    } catch (err) {
      this.opts.onError?.(err as Error);
    } finally {
      this.polling = false;
    }
  }
}
