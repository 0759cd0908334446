// The bytes one received chunk becomes on its way out: unchanged messages stay views of the chunk,
// and once any message changes, everything goes into one buffer per chunk, written in place.
import type { Message } from './codec.js';
import { Frame } from './codec.js';

/** The bytes the last message became, for recording: its length always, its bytes only when asked. */
export interface SentBytes {
  readonly lastLength: number;
  lastBytes(): Buffer;
}

/** A buffer already complete, as SentBytes (a message answered later, after a lookup). */
export const sentBuffer = (b: Buffer): SentBytes => ({ lastLength: b.length, lastBytes: () => b });

const EMPTY = Buffer.alloc(0);

/**
 * Collects a batch of messages from one chunk into what is sent for it. Messages passed unchanged are
 * only remembered as a range of their chunk (`run`) until something else must follow them; while
 * nothing changed, the batch leaves as one view of the chunk, with no copy. At the first changed
 * message one buffer is allocated for the rest of the batch, sized from the input still to come and
 * the growth of that message; rewritten messages are written into it where they go (`reserve`), so
 * a masked row costs no allocation of its own. Should later rows grow more, the buffer is replaced by
 * one at least twice as large (the bytes written so far are copied once more).
 */
export class ChunkOutput implements SentBytes {
  private buf: Buffer | null = null;
  private at = 0;
  /** Unchanged bytes not yet copied: `run[runStart, runEnd)`. */
  private run: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  /** Input bytes of the batch not yet consumed, for sizing the buffer. */
  private remaining = 0;
  private lastSrc: Buffer = EMPTY;
  private lastStart = 0;
  private lastEnd = 0;

  /** Starts a batch: `messages[from..]` are what will be passed, replaced or reserved for. */
  begin(messages: readonly Message[], from = 0): void {
    this.buf = null;
    this.at = 0;
    this.run = null;
    this.runStart = this.runEnd = 0;
    let total = 0;
    for (let i = from; i < messages.length; i++) total += sizeOf(messages[i]!);
    this.remaining = total;
    this.lastSrc = EMPTY;
    this.lastStart = this.lastEnd = 0;
  }

  /** The buffer `reserve` returned an offset into (it may change with each reserve). */
  get buffer(): Buffer {
    return this.buf!;
  }

  get lastLength(): number {
    return this.lastEnd - this.lastStart;
  }

  /** A view of the last message's bytes (for a recorded sample row; not made otherwise). */
  lastBytes(): Buffer {
    return this.lastSrc.subarray(this.lastStart, this.lastEnd);
  }

  /** `m` goes out as it came. */
  pass(m: Message): void {
    let src: Buffer;
    let start: number;
    let end: number;
    if (m instanceof Frame) {
      src = m.chunk;
      start = m.start;
      end = m.end;
    } else {
      src = m.raw;
      start = 0;
      end = src.length;
    }
    this.lastSrc = src;
    this.lastStart = start;
    this.lastEnd = end;
    if (this.run === src && this.runEnd === start) {
      this.runEnd = end;
    } else {
      // Not next to the pending run (a message that was split across chunks): the run goes in the buffer.
      if (this.run !== null) this.ensure(0, 0);
      this.run = src;
      this.runStart = start;
      this.runEnd = end;
    }
    this.remaining -= end - start;
  }

  /** `m` goes out as `bytes` (none: it is dropped). */
  put(m: Message, bytes: Buffer): void {
    this.remaining -= sizeOf(m);
    if (bytes.length === 0) {
      this.lastSrc = EMPTY;
      this.lastStart = this.lastEnd = 0;
      return;
    }
    this.ensure(bytes.length, 0);
    bytes.copy(this.buf!, this.at);
    this.last(bytes.length);
  }

  /**
   * Room for `m`'s replacement of `size` bytes: its offset in `buffer`, where the caller writes it
   * now (before any other call).
   */
  reserve(m: Message, size: number): number {
    const input = sizeOf(m);
    this.remaining -= input;
    this.ensure(size, size > input ? Math.ceil(this.remaining / input) * (size - input) : 0);
    return this.last(size);
  }

  /** What the batch became; the output starts afresh (the buffer now belongs to the caller). */
  take(): Buffer {
    let out: Buffer;
    if (this.buf !== null) {
      this.ensure(0, 0);
      out = this.buf.subarray(0, this.at);
    } else if (this.run !== null) {
      out =
        this.runStart === 0 && this.runEnd === this.run.length
          ? this.run
          : this.run.subarray(this.runStart, this.runEnd);
    } else out = EMPTY;
    this.buf = null;
    this.run = null;
    this.at = this.remaining = 0;
    this.lastSrc = EMPTY;
    return out;
  }

  /** Marks the last `size` bytes reserved at `at` as the last message's; returns their offset. */
  private last(size: number): number {
    const at = this.at;
    this.at += size;
    this.lastSrc = this.buf!;
    this.lastStart = at;
    this.lastEnd = at + size;
    return at;
  }

  /** Copies the pending run into the buffer and makes room for `size` more bytes (`extra`: expected growth). */
  private ensure(size: number, extra: number): void {
    const runLength = this.runEnd - this.runStart;
    const needed = this.at + runLength + size;
    if (this.buf === null) {
      this.buf = Buffer.allocUnsafe(needed + this.remaining + extra);
    } else if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, needed + this.remaining + extra));
      this.buf.copy(grown, 0, 0, this.at);
      this.buf = grown;
    }
    if (this.run !== null) {
      this.at += this.run.copy(this.buf, this.at, this.runStart, this.runEnd);
      this.run = null;
      this.runStart = this.runEnd = 0;
    }
  }
}

/** A message's length on the wire, read without making a view of it. */
function sizeOf(m: Message): number {
  return m instanceof Frame ? m.end - m.start : m.raw.length;
}
