// The session recorder: statement events are queued in memory and written in batches by one
// writer loop, off the hot path, retried while the store refuses them. The queue is bounded.
import type { SessionEvent, SessionEvents } from '../store/session-events.js';

export interface RecorderOptions {
  /** Most events held in memory while the store is slow or unreachable. */
  maxQueue?: number;
  maxBatch?: number;
  /** How long events are gathered before a write (default 10 ms): one transaction per batch. */
  batchDelayMs?: number;
  /** Told on every failed write (the batch is retried) and on every event dropped. */
  onError?: (err: Error, queued: number) => void;
  onDropped?: (dropped: number) => void;
}

export class Recorder {
  private queue: SessionEvent[] = [];
  private writing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private retryDelay = 100;
  private closed = false;
  /** Events lost since start because the queue was full. */
  dropped = 0;

  constructor(
    private readonly events: SessionEvents,
    private readonly opts: RecorderOptions = {},
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  private get maxQueue(): number {
    return this.opts.maxQueue ?? 50_000;
  }

  /**
   * False while the queue is over its bound: the gateway then refuses new sessions, since it
   * could not record them (sessions already open keep running, their overflow is dropped).
   */
  get healthy(): boolean {
    return this.queue.length < this.maxQueue;
  }

  /** Queues one event; never throws and never waits. */
  record(event: SessionEvent): void {
    if (this.closed) return;
    if (!this.healthy) {
      this.dropped++;
      this.opts.onDropped?.(this.dropped);
      return;
    }
    this.queue.push(event);
    this.kick(false);
  }

  /** Starts a write now (`urgent`, or a full batch) or after the batch delay. */
  private kick(urgent: boolean): void {
    if (this.writing || this.retryTimer) return;
    const delay = this.opts.batchDelayMs ?? 10;
    if (!urgent && delay > 0 && this.queue.length < (this.opts.maxBatch ?? 500)) {
      this.batchTimer ??= setTimeout(() => {
        this.batchTimer = undefined;
        this.kick(true);
      }, delay);
      return;
    }
    if (this.batchTimer) {
      clearTimeout(this.batchTimer);
      this.batchTimer = undefined;
    }
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
      if (this.queue.length > 0 && !this.retryTimer && !this.closed) this.kick(false);
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.opts.maxBatch ?? 500);
      try {
        await this.events.insert(batch);
      } catch (err) {
        this.opts.onError?.(err as Error, this.queue.length);
        if (!this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.kick(true);
          }, this.retryDelay);
          this.retryTimer.unref();
          this.retryDelay = Math.min(this.retryDelay * 2, 5_000);
        }
        return;
      }
      this.retryDelay = 100;
      this.queue.splice(0, batch.length);
    }
  }

  /** Resolves when everything queued so far is written (or a write failed and awaits its retry). */
  async idle(): Promise<void> {
    if (this.queue.length > 0 && !this.retryTimer) this.kick(true);
    while (this.writing) await this.writing;
  }

  /**
   * Writes what is queued, retrying for up to `timeoutMs`; returns how many events could not be
   * written (they are lost: unlike the audit trail, recordings are not spooled to disk).
   */
  async close(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.kick(true);
      await this.idle();
      if (this.queue.length > 0) await new Promise((r) => setTimeout(r, 100));
    }
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.batchTimer) clearTimeout(this.batchTimer);
    await this.idle();
    return this.queue.length;
  }
}
