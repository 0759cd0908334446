// The bytes one received chunk becomes on its way out: unchanged messages stay views of the chunk,
// and once any message changes, everything goes into one buffer per chunk, written in place.
import type { Message } from './codec.js';
import { Frame, int32Into } from './codec.js';

/** The bytes the last message became, for recording: its length always, its bytes only when asked. */
export interface SentBytes {
  readonly lastLength: number;
  lastBytes(): Buffer;
}

/** A buffer already complete, as SentBytes (a message answered later, after a lookup). */
export const sentBuffer = (b: Buffer): SentBytes => ({ lastLength: b.length, lastBytes: () => b });

const EMPTY = Buffer.alloc(0);

/**
 * Collects a batch of messages from one chunk into what is sent for it. Unchanged bytes are only
 * remembered as a range of their chunk (`run`) until something else must follow them; while nothing
 * changed, the batch leaves as one view of the chunk, with no copy. At the first changed message one
 * buffer is allocated for the rest of the batch, sized from the input still to come and the growth
 * of that message, and rewritten messages are written into it where they go, so a masked row costs
 * no allocation of its own. A rewritten message gives its unchanged parts as ranges of the chunk
 * (`copy`): the end of one masked row and the start of the next then leave in one copy, and the
 * next row's new length word is patched in as that copy lands. Should later rows grow more than the
 * first foretold, the buffer is replaced by one at least twice as large.
 */
export class ChunkOutput implements SentBytes {
  private buf: Buffer | null = null;
  private at = 0;
  /** Unchanged bytes not yet copied: `run[runStart, runEnd)`. */
  private run: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  /** Length words to write over the run once copied: at output offsets, these values. */
  private readonly patchAt: number[] = [];
  private readonly patchValue: number[] = [];
  private patches = 0;
  /** Input bytes of the batch not yet consumed, for sizing the buffer. */
  private remaining = 0;
  /**
   * The batch's bytes in `chunk[mirrorFrom, mirrorEnd)`, copied once to `buf[mirrorAt..]` when the
   * buffer is made: ranges of the chunk are then moved within the buffer (copyWithin, a plain memmove)
   * instead of copied from another buffer (Buffer#copy makes a view per call). Writes only ever
   * reach bytes of the mirror already read, as long as what was written does not overtake what was
   * read; a range it did overtake is copied from the chunk instead.
   */
  private mirror: Buffer | null = null;
  private mirrorFrom = 0;
  private mirrorEnd = 0;
  private mirrorAt = -1;
  /** The last message's bytes: `lastSrc[lastStart, lastEnd)`, or the buffer's when `lastSrc` is null. */
  private lastSrc: Buffer | null = EMPTY;
  private lastStart = 0;
  private lastEnd = 0;

  /** Starts a batch: `messages[from..]` are what will be passed, put, or replaced. */
  begin(messages: readonly Message[], from = 0): void {
    this.take();
    let total = 0;
    for (let i = from; i < messages.length; i++) total += sizeOf(messages[i]!);
    this.remaining = total;
    // Frames of one read lie back to back in its chunk; a message completed from earlier reads does not.
    const last = messages[messages.length - 1];
    if (last instanceof Frame && from < messages.length) {
      let first = messages.length - 1;
      while (first > from && (messages[first - 1] as Frame).chunk === last.chunk) first--;
      this.mirror = last.chunk;
      this.mirrorFrom = (messages[first] as Frame).start;
      this.mirrorEnd = last.end;
    }
  }

  /** The buffer `room` returned an offset into (another message may replace it by a larger one). */
  get buffer(): Buffer {
    return this.buf!;
  }

  get lastLength(): number {
    return this.lastEnd - this.lastStart;
  }

  /** A view of the last message's bytes (for a recorded sample row; not made otherwise). */
  lastBytes(): Buffer {
    if (this.lastSrc !== null) return this.lastSrc.subarray(this.lastStart, this.lastEnd);
    this.flush();
    return this.buf!.subarray(this.lastStart, this.lastEnd);
  }

  /** `m` goes out as it came. */
  pass(m: Message): void {
    if (m instanceof Frame) this.passBytes(m.chunk, m.start, m.end);
    else this.passBytes(m.raw, 0, m.raw.length);
  }

  /** `src[start, end)`, a message of the batch (a row of a RowRun), goes out as it came. */
  passBytes(src: Buffer, start: number, end: number): void {
    this.lastSrc = src;
    this.lastStart = start;
    this.lastEnd = end;
    // Not next to the pending run (a message that was split across chunks), the run goes in the buffer.
    this.copy(src, start, end);
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
    this.reserve(bytes.length, 0);
    this.replaced(bytes.length);
    bytes.copy(this.buf!, this.room(bytes.length));
  }

  /**
   * Starts `m`'s replacement, `size` bytes (null: no input message, as when a row is masked into a
   * buffer of its own). The caller then gives exactly those bytes, in order: `copy` for ranges of
   * the input, `room` for new bytes, `setInt32` for a length word inside a copied range.
   */
  replace(m: Message | null, size: number): void {
    if (m === null) this.replaceBytes(size, size, false);
    else this.replaceBytes(sizeOf(m), size, true);
  }

  /**
   * `replace` for an input message of `input` bytes known only by its place in a chunk (a row of a
   * RowRun); `consumed`: those bytes are part of the batch begun (false: new bytes of their own).
   */
  replaceBytes(input: number, size: number, consumed = true): void {
    if (consumed) this.remaining -= input;
    // Rows of one result tend to change alike: expect the rest of the batch to grow as this one does.
    this.reserve(size, size > input ? Math.ceil(this.remaining / input) * (size - input) : 0);
    this.replaced(size);
  }

  /** The offset in `buffer` where `size` new bytes go; the caller writes them now. */
  room(size: number): number {
    this.flush();
    const at = this.at;
    this.at += size;
    return at;
  }

  /** Appends `src[from, to)` unchanged; returns where its first byte lands in the output. */
  copy(src: Buffer, from: number, to: number): number {
    if (this.run === src && this.runEnd === from) {
      const at = this.at + this.runEnd - this.runStart;
      this.runEnd = to;
      return at;
    }
    this.flush();
    this.run = src;
    this.runStart = from;
    this.runEnd = to;
    return this.at;
  }

  /** Writes `value` as a big-endian int32 at output offset `at`, inside bytes given by `copy`. */
  setInt32(at: number, value: number): void {
    if (at + 4 <= this.at) {
      int32Into(this.buf!, at, value);
      return;
    }
    const k = this.patches++;
    this.patchAt[k] = at;
    this.patchValue[k] = value;
  }

  /** What the batch became; the output starts afresh (the buffer now belongs to the caller). */
  take(): Buffer {
    let out: Buffer;
    if (this.buf !== null) {
      this.flush();
      out = this.buf.subarray(0, this.at);
    } else if (this.run !== null) {
      out =
        this.runStart === 0 && this.runEnd === this.run.length
          ? this.run
          : this.run.subarray(this.runStart, this.runEnd);
    } else out = EMPTY;
    this.buf = null;
    this.run = null;
    this.runStart = this.runEnd = 0;
    this.patches = 0;
    this.mirror = null;
    this.mirrorAt = -1;
    this.at = this.remaining = 0;
    this.lastSrc = EMPTY;
    this.lastStart = this.lastEnd = 0;
    return out;
  }

  /** The last message is the next `size` bytes of the buffer. */
  private replaced(size: number): void {
    this.lastSrc = null;
    this.lastStart = this.at + this.runEnd - this.runStart;
    this.lastEnd = this.lastStart + size;
  }

  /** Makes room for `size` more bytes after the pending run (`extra`: growth expected after them). */
  private reserve(size: number, extra: number): void {
    const needed = this.at + this.runEnd - this.runStart + size;
    const more = Math.max(0, this.remaining) + extra;
    if (this.buf === null) {
      const mirrored = this.mirror === null ? 0 : this.mirrorEnd - this.mirrorFrom;
      const buf = Buffer.allocUnsafe(Math.max(needed + more, mirrored));
      if (mirrored > 0) {
        this.mirrorAt = buf.length - mirrored;
        this.mirror!.copy(buf, this.mirrorAt, this.mirrorFrom, this.mirrorEnd);
      }
      this.buf = buf;
    } else if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, needed + more));
      this.buf.copy(grown, 0, 0, this.at);
      this.buf = grown;
      this.mirror = null;
      this.mirrorAt = -1;
    }
  }

  /** Copies the pending run into the buffer and writes its patches. */
  private flush(): void {
    if (this.run === null) return;
    // Rows that grew past every estimate may have left no room for the run: checked, never truncated.
    this.reserve(0, 0);
    const buf = this.buf!;
    const run = this.run;
    const length = this.runEnd - this.runStart;
    const mirrored = run === this.mirror ? this.mirrorAt + this.runStart - this.mirrorFrom : -1;
    if (mirrored >= this.at && this.runStart >= this.mirrorFrom && this.runEnd <= this.mirrorEnd) {
      buf.copyWithin(this.at, mirrored, mirrored + length);
    } else run.copy(buf, this.at, this.runStart, this.runEnd);
    this.at += length;
    this.run = null;
    this.runStart = this.runEnd = 0;
    for (let k = 0; k < this.patches; k++) int32Into(buf, this.patchAt[k]!, this.patchValue[k]!);
    this.patches = 0;
  }
}

/** A message's length on the wire, read without making a view of it. */
function sizeOf(m: Message): number {
  return m instanceof Frame ? m.end - m.start : m.raw.length;
}
