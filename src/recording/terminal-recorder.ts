// Records terminal sessions (SSH shells, kubectl exec) as asciicast v2: protocols hand over
// bytes as they pass, chunks are written in batches off the data path, the queue is bounded.
import { performance } from 'node:perf_hooks';
import type { TerminalChunk, TerminalRecordings } from '../store/terminal-recordings.js';
import { WriteScheduler, writeInBatches } from '../store/write-scheduler.js';
import { AsciicastWriter, formatEvent, formatHeader } from './asciicast.js';

export interface TerminalOptions {
  /** Initial size in columns and rows. */
  width: number;
  height: number;
  title?: string;
  /** E.g. { TERM: 'xterm-256color' }, shown by players. */
  env?: Record<string, string>;
  /** Record keystrokes too. Off unless asked: what a person types may be a password. */
  recordInput?: boolean;
}

/** One terminal session's recording. Every method returns at once; none throws on store trouble. */
export interface TerminalRecording {
  output(bytes: Uint8Array): void;
  input(bytes: Uint8Array): void;
  resize(width: number, height: number): void;
  /** Ends the recording and resolves once it is written (or its write failed and is retried). */
  close(): Promise<void>;
}

export interface TerminalRecorderOptions {
  /** Most bytes of chunks held in memory while the store is slow or unreachable (default 32 MiB). */
  maxQueueBytes?: number;
  /** A session's recording stops, with a marker saying so, past this many bytes (default 64 MiB). */
  maxSessionBytes?: number;
  /** A chunk is sealed once it holds this many bytes (default 64 KiB). */
  chunkBytes?: number;
  maxBatch?: number;
  /** How long output is gathered before a write (default 200 ms): fewer, larger chunks. */
  batchDelayMs?: number;
  /** Monotonic milliseconds, for event times; tests may drive it. */
  clock?: () => number;
  onError?: (err: Error, queued: number) => void;
  onDropped?: (dropped: number) => void;
}

export class TerminalRecorder {
  private queue: TerminalChunk[] = [];
  private queuedBytes = 0;
  /** Sessions holding events not yet sealed into a chunk. */
  private readonly unsealed = new Set<TerminalSession>();
  private readonly open = new Set<TerminalSession>();
  private readonly writes: WriteScheduler;
  /** Chunks lost since start because the queue was full. */
  dropped = 0;

  constructor(
    private readonly recordings: TerminalRecordings,
    readonly opts: TerminalRecorderOptions = {},
  ) {
    this.writes = new WriteScheduler({
      write: () => this.writeLoop(),
      queued: () => this.queue.length + this.unsealed.size,
      maxBatch: this.maxBatch,
      delayMs: opts.batchDelayMs ?? 200,
      urgent: () => false,
      unrefRetry: true,
    });
  }

  private get maxBatch(): number {
    return this.opts.maxBatch ?? 100;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** False while the queue is over its bound (new sessions should be refused, as for statements). */
  get healthy(): boolean {
    return this.queuedBytes < (this.opts.maxQueueBytes ?? 32 * 1024 * 1024);
  }

  now(): number {
    return this.opts.clock ? this.opts.clock() : performance.now();
  }

  /** Starts recording terminal session `sessionId`; its header is queued at once. */
  start(sessionId: string, terminal: TerminalOptions): TerminalRecording {
    const session = new TerminalSession(this, sessionId, terminal);
    this.open.add(session);
    return session;
  }

  /** Queues a chunk; false when the queue is full (the header always goes: it is tiny and vital). */
  enqueue(chunk: TerminalChunk): boolean {
    if (!this.healthy && chunk.seq > 0) {
      this.dropped++;
      this.opts.onDropped?.(this.dropped);
      return false;
    }
    this.queue.push(chunk);
    this.queuedBytes += Buffer.byteLength(chunk.data);
    this.writes.kick(false);
    return true;
  }

  /** Told by a session that it holds events to seal: they go with the next write. */
  pending(session: TerminalSession): void {
    this.unsealed.add(session);
    this.writes.kick(false);
  }

  ended(session: TerminalSession): void {
    this.open.delete(session);
    this.unsealed.delete(session);
  }

  private async writeLoop(): Promise<boolean> {
    for (const s of this.unsealed) s.seal();
    this.unsealed.clear();
    return writeInBatches(
      this.queue,
      this.maxBatch,
      async (batch) => {
        await this.recordings.append(batch);
        for (const c of batch) this.queuedBytes -= Buffer.byteLength(c.data);
      },
      this.opts.onError,
    );
  }

  /** Writes what is queued or unsealed now; resolves when that write is over. */
  async flush(): Promise<void> {
    if (!this.writes.retrying) this.writes.kick(true);
    await this.writes.settled();
  }

  /**
   * Ends the sessions still open and writes what is queued, retrying for up to `timeoutMs`;
   * returns how many chunks could not be written (lost, as statement events are).
   */
  async close(timeoutMs: number): Promise<number> {
    for (const s of [...this.open]) s.end();
    const deadline = Date.now() + timeoutMs;
    await this.writes.flushUntil(deadline, () => this.queue.length + this.unsealed.size);
    this.writes.stop();
    await this.writes.settled();
    return this.queue.length;
  }
}

class TerminalSession implements TerminalRecording {
  private readonly writer: AsciicastWriter;
  private readonly startedAt: number;
  private seq = 0;
  private lines: string[] = [];
  private bytes = 0;
  private time = 0;
  /** Bytes of sealed chunks the full queue refused: a marker says so in the next chunk. */
  private lost = 0;
  private ended = false;

  constructor(
    private readonly owner: TerminalRecorder,
    private readonly sessionId: string,
    terminal: TerminalOptions,
  ) {
    this.startedAt = owner.now();
    this.writer = new AsciicastWriter({
      recordInput: terminal.recordInput,
      maxBytes: owner.opts.maxSessionBytes ?? 64 * 1024 * 1024,
    });
    const { width, height, title, env } = terminal;
    const header = formatHeader({
      version: 2,
      width,
      height,
      timestamp: Math.floor(Date.now() / 1000),
      ...(title === undefined ? {} : { title }),
      ...(env === undefined ? {} : { env }),
    });
    owner.enqueue({ session_id: sessionId, seq: 0, time: 0, data: header });
  }

  private get seconds(): number {
    return (this.owner.now() - this.startedAt) / 1000;
  }

  output(bytes: Uint8Array): void {
    if (!this.ended) this.add(this.writer.output(bytes, this.seconds));
  }

  input(bytes: Uint8Array): void {
    if (!this.ended) this.add(this.writer.input(bytes, this.seconds));
  }

  resize(width: number, height: number): void {
    if (!this.ended) this.add(this.writer.resize(width, height, this.seconds));
  }

  async close(): Promise<void> {
    this.end();
    await this.owner.flush();
  }

  /** Ends the recording: what the decoders still hold is written, then the rest of the chunk. */
  end(): void {
    if (this.ended) return;
    this.add(this.writer.end(this.seconds));
    this.seal();
    this.ended = true;
    this.owner.ended(this);
  }

  private add(lines: string[]): void {
    if (lines.length === 0) return;
    if (this.lines.length === 0) this.time = this.writer.seconds;
    for (const line of lines) {
      this.lines.push(line);
      this.bytes += line.length; // UTF-16 units: close enough to bytes for sizing a chunk
    }
    if (this.bytes >= (this.owner.opts.chunkBytes ?? 64 * 1024)) this.seal();
    else this.owner.pending(this);
  }

  /** Moves the events gathered so far into a chunk on the write queue. */
  seal(): void {
    if (this.lines.length === 0) return;
    if (this.lost > 0) {
      const note = `${this.lost} bytes of this recording were lost: the store could not keep up`;
      // At the chunk's first time, not the writer's latest: times in a recording never go back.
      this.lines.unshift(formatEvent([this.time, 'm', note]));
    }
    const data = this.lines.join('');
    const chunk = { session_id: this.sessionId, seq: this.seq + 1, time: this.time, data };
    this.lines = [];
    this.bytes = 0;
    if (this.owner.enqueue(chunk)) {
      this.seq++;
      this.lost = 0;
    } else {
      this.lost += data.length;
    }
  }
}
