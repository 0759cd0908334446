// The session recorder: statement events are queued in memory and written in batches by one
// writer loop, off the hot path, retried while the store refuses them. The queue is bounded.
// Terminal sessions go the same way through a TerminalRecorder it owns.
import type { SessionEvent, SessionEvents } from '../store/session-events.js';
import type { TerminalRecordings } from '../store/terminal-recordings.js';
import { WriteScheduler, writeInBatches } from '../store/write-scheduler.js';
import {
  type TerminalOptions,
  TerminalRecorder,
  type TerminalRecorderOptions,
  type TerminalRecording,
} from './terminal-recorder.js';

export interface RecorderOptions {
  /** Most events held in memory while the store is slow or unreachable. */
  maxQueue?: number;
  maxBatch?: number;
  /** How long events are gathered before a write (default 10 ms): one transaction per batch. */
  batchDelayMs?: number;
  /** Told on every failed write (the batch is retried) and on every event dropped. */
  onError?: (err: Error, queued: number) => void;
  onDropped?: (dropped: number) => void;
  /** Where terminal sessions go (none: `terminal()` is refused), and how they are batched. */
  terminals?: TerminalRecordings;
  terminal?: Omit<TerminalRecorderOptions, 'onError' | 'onDropped'>;
}

export class Recorder {
  private queue: SessionEvent[] = [];
  private readonly writes: WriteScheduler;
  private closed = false;
  private readonly terminals: TerminalRecorder | undefined;
  /** Events lost since start because the queue was full. */
  dropped = 0;

  constructor(
    private readonly events: SessionEvents,
    private readonly opts: RecorderOptions = {},
  ) {
    this.writes = new WriteScheduler({
      write: () => this.writeLoop(),
      queued: () => this.queue.length,
      maxBatch: this.maxBatch,
      delayMs: opts.batchDelayMs ?? 10,
      urgent: () => false,
      unrefRetry: true,
    });
    if (opts.terminals) {
      this.terminals = new TerminalRecorder(opts.terminals, {
        ...opts.terminal,
        onError: opts.onError,
        onDropped: opts.onDropped,
      });
    }
  }

  /**
   * Starts recording a terminal session (a shell, an exec) as asciicast v2. The protocol feeds
   * it bytes as they pass; nothing it does waits for the store.
   */
  terminal(sessionId: string, terminal: TerminalOptions): TerminalRecording {
    if (!this.terminals) throw new Error('this recorder was built without a store for terminal recordings');
    return this.terminals.start(sessionId, terminal);
  }

  get queued(): number {
    return this.queue.length;
  }

  private get maxQueue(): number {
    return this.opts.maxQueue ?? 50_000;
  }

  private get maxBatch(): number {
    return this.opts.maxBatch ?? 500;
  }

  /**
   * False while the queue is over its bound: the gateway then refuses new sessions, since it
   * could not record them (sessions already open keep running, their overflow is dropped).
   */
  get healthy(): boolean {
    return this.queue.length < this.maxQueue && (this.terminals?.healthy ?? true);
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
    this.writes.kick(false);
  }

  private writeLoop(): Promise<boolean> {
    return writeInBatches(this.queue, this.maxBatch, (batch) => this.events.insert(batch), this.opts.onError);
  }

  /** Resolves when everything queued so far is written (or a write failed and awaits its retry). */
  async idle(): Promise<void> {
    if (!this.writes.retrying) this.writes.kick(true);
    await Promise.all([this.writes.settled(), this.terminals?.flush()]);
  }

  /**
   * Writes what is queued, retrying for up to `timeoutMs`; returns how many events (and terminal
   * chunks) could not be written (lost: unlike the audit trail, recordings are not spooled to disk).
   */
  async close(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const lostChunks = this.terminals ? this.terminals.close(timeoutMs) : Promise.resolve(0);
    await this.writes.flushUntil(deadline, () => this.queue.length);
    this.closed = true;
    this.writes.stop();
    await this.writes.settled();
    return this.queue.length + (await lostChunks);
  }
}
