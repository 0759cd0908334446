// When a queue of events goes to the store: after a short delay that gathers a batch (one
// transaction for many events), at once when someone waits for it or a batch is full, and again,
// with backoff, after the store refused a write. The queue and the writing stay with the owner
// (the audit log, the session recorder); this only decides when `write` runs, one at a time.

export interface WriteSchedulerOptions {
  /** Writes what is queued: true once the queue is empty, false when the store refused (retried). */
  write: () => Promise<boolean>;
  queued: () => number;
  maxBatch: number;
  /** How long events are gathered before a write; 0: at once. */
  delayMs: number;
  /** Whether events left after a write are written at once (someone waits for one). */
  urgent: () => boolean;
  /** A pending retry does not keep the process up (recordings); the audit's does. */
  unrefRetry: boolean;
}

export class WriteScheduler {
  private writing: Promise<void> | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 100;
  private stopped = false;

  constructor(private readonly o: WriteSchedulerOptions) {}

  /** Whether the last write was refused and its retry is pending. */
  get retrying(): boolean {
    return this.retryTimer !== undefined;
  }

  /** A write now (`urgent`, or a full batch), else when the gathering delay is over. */
  kick(urgent: boolean): void {
    if (this.writing || this.retryTimer || this.stopped) return;
    if (!urgent && this.o.delayMs > 0 && this.o.queued() < this.o.maxBatch) {
      this.batchTimer ??= setTimeout(() => {
        this.batchTimer = undefined;
        this.kick(true);
      }, this.o.delayMs);
      return;
    }
    this.clearBatchTimer();
    this.writing = this.o
      .write()
      .then((done) => {
        if (done) this.retryDelay = 100;
        else this.scheduleRetry();
      })
      .finally(() => {
        this.writing = undefined;
        if (this.o.queued() > 0) this.kick(this.o.urgent());
      });
  }

  /** Writes now, a pending retry included; resolves when that write is over (written or refused). */
  async flush(): Promise<void> {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    if (this.o.queued() > 0) this.kick(true);
    await this.settled();
  }

  /**
   * Writes until `pending()` is 0 or `deadline` (epoch ms) passes, a refused write tried again every
   * 100 ms: what a closing owner does before stop().
   */
  async flushUntil(deadline: number, pending: () => number): Promise<void> {
    while (pending() > 0 && Date.now() < deadline) {
      await this.flush();
      if (pending() > 0) await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolves when no write is running. */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** No more writes are started; the one running finishes. */
  stop(): void {
    this.stopped = true;
    this.clearBatchTimer();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick(true);
    }, this.retryDelay);
    if (this.o.unrefRetry) this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, 5_000);
  }

  private clearBatchTimer(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
  }
}

/**
 * Writes `queue` from its head in batches of at most `maxBatch`, each removed once written: true
 * once the queue is empty, false when the store refused a batch (it stays queued for the retry).
 */
export async function writeInBatches<T>(
  queue: T[],
  maxBatch: number,
  write: (batch: T[]) => Promise<unknown>,
  onError?: (err: Error, queued: number) => void,
): Promise<boolean> {
  while (queue.length > 0) {
    const batch = queue.slice(0, maxBatch);
    try {
      await write(batch);
    } catch (err) {
      onError?.(err as Error, queue.length);
      return false;
    }
    queue.splice(0, batch.length);
  }
  return true;
}
