// Masking applied to result bytes: DataRow values (text format, and binary format of text-like
// types) and text COPY rows, rebuilt only when a value changes; everything else keeps its bytes.
import type { BytesWriter } from '../../policy/mask/styles.js';
import type { RowPlan } from '../../policy/mask/values.js';
import { ChunkOutput } from './chunk-output.js';
import { Back, type FieldDescription, int32Into, type Message, message, ProtocolError } from './codec.js';

/** Types whose binary format is their UTF-8 text (jsonb after a one-byte version). */
const TEXT_LIKE = new Set([25, 1043, 1042, 19, 114, 3802, 705]);
const JSON_TYPES = new Set([114, 3802]);
const JSONB = 3802;

/** How field `i` can be read as text: 'text', 'jsonb' (binary with version byte), or 'opaque'. */
export function encodingOf(f: FieldDescription | undefined): 'text' | 'jsonb' | 'opaque' {
  if (!f || f.format === 0) return 'text';
  if (!TEXT_LIKE.has(f.typeOid)) return 'opaque';
  return f.typeOid === JSONB ? 'jsonb' : 'text';
}

// Per field of a result: how its bytes read as text, and whether a value masked whole is sent as JSON.
const TEXT = 0;
const JSONB_TEXT = 1;
const OPAQUE = 2;
const KIND = 3;
const AS_JSON = 4;

function codeOf(f: FieldDescription | undefined): number {
  const e = encodingOf(f);
  const kind = e === 'opaque' ? OPAQUE : e === 'jsonb' ? JSONB_TEXT : TEXT;
  return kind | (f && JSON_TYPES.has(f.typeOid) ? AS_JSON : 0);
}

const EMPTY = Buffer.alloc(0);

/**
 * The rewrite being prepared: the message `src[start, to)`, and the fields it changes, in order:
 * where the old field starts (a DataRow field's length word, a COPY field's first byte) and ends,
 * and its new value (null for SQL NULL). Reused across calls: a rewrite is measured and written
 * before the next one starts.
 */
const edit = {
  src: EMPTY as Buffer,
  start: 0,
  to: 0,
  withLengths: true,
  count: 0,
  at: [] as number[],
  end: [] as number[],
  value: [] as Array<Buffer | string | null>,
  /** For a Buffer value, the range of it that is the value, or that `writer` turns into the value. */
  valueFrom: [] as number[],
  valueTo: [] as number[],
  writer: [] as Array<BytesWriter | undefined>,
  /** Bytes of the new value after its length word (jsonb's version byte included); -1 for NULL. */
  size: [] as number[],
  versionByte: [] as boolean[],
};

/**
 * Records one edit; the new value's size in bytes (jsonb's version byte included), -1 for NULL.
 * A Buffer value may be `value[from, to)`, or what `writer` writes for those bytes.
 */
function addEdit(
  at: number,
  end: number,
  value: Buffer | string | null,
  versionByte: boolean,
  from = 0,
  to = value === null || typeof value === 'string' ? 0 : value.length,
  writer?: BytesWriter,
): number {
  const k = edit.count++;
  let bytes = -1;
  if (typeof value === 'string') bytes = Buffer.byteLength(value, 'utf8');
  else if (value !== null) bytes = writer === undefined ? to - from : writer.size;
  const size = bytes < 0 ? -1 : bytes + (versionByte ? 1 : 0);
  edit.at[k] = at;
  edit.end[k] = end;
  edit.value[k] = value;
  edit.valueFrom[k] = from;
  edit.valueTo[k] = to;
  edit.writer[k] = writer;
  edit.size[k] = size;
  edit.versionByte[k] = versionByte;
  return size;
}

/** Keeps where the edited message `src[start, to)` lies; returns its new size on the wire. */
function measured(src: Buffer, start: number, to: number, growth: number, withLengths: boolean): number {
  edit.src = src;
  edit.start = start;
  edit.to = to;
  edit.withLengths = withLengths;
  return to - start + growth;
}

/** `src[from, to)` into `dst` at `at`, byte by byte: new values are short, and `copy` costs a native call. */
function copyRange(src: Buffer, from: number, to: number, dst: Buffer, at: number): void {
  for (let i = from; i < to; i++) dst[at++] = src[i]!;
}

/**
 * Gives `out` the measured message, `size` bytes: its unchanged parts as ranges of the source (so
 * they join the bytes around them in one copy), its new length word and values written in place.
 * Then forgets the edits.
 */
function writeEdited(out: ChunkOutput, size: number): void {
  const src = edit.src;
  const withLengths = edit.withLengths;
  // The type byte and the old length word come with the bytes before the first edit; the length is patched.
  const header = out.copy(src, edit.start, edit.at[0]!);
  out.setInt32(header + 1, size - 1);
  let from = edit.at[0]!;
  for (let k = 0; k < edit.count; k++) {
    const at = edit.at[k]!;
    if (from < at) out.copy(src, from, at);
    const value = edit.value[k]!;
    const n = edit.size[k]!;
    const room = (withLengths ? 4 : 0) + (n < 0 ? 0 : n);
    if (room > 0) {
      let o = out.room(room);
      const buf = out.buffer;
      if (withLengths) {
        int32Into(buf, o, n);
        o += 4;
      }
      if (value !== null) {
        if (edit.versionByte[k]) buf[o++] = 1;
        const writer = edit.writer[k];
        if (typeof value === 'string') buf.write(value, o, 'utf8');
        else if (writer !== undefined) writer.write(value, edit.valueFrom[k]!, edit.valueTo[k]!, buf, o);
        else copyRange(value, edit.valueFrom[k]!, edit.valueTo[k]!, buf, o);
      }
    }
    from = edit.end[k]!;
  }
  if (from < edit.to) out.copy(src, from, edit.to);
  // Drops references to the row's strings and chunk (a loop: a row has few edits, fill() is a call).
  for (let k = 0; k < edit.count; k++) {
    edit.value[k] = null;
    edit.writer[k] = undefined;
  }
  edit.count = 0;
  edit.src = EMPTY;
}

/** For messages rewritten into a buffer of their own (take() leaves it empty for the next). */
const own = new ChunkOutput();

/** The measured message in a buffer of its own. */
function rebuilt(size: number): Buffer {
  own.replace(null, size);
  writeEdited(own, size);
  return own.take();
}

/** A big-endian int32 at `at` (callers check the bounds). */
const int32At = (b: Buffer, at: number): number =>
  (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;

/**
 * Masks the DataRows of one result shape. What each field needs is worked out once, when the
 * result's RowDescription arrives (how its bytes read, the constant a redacted value becomes, whether
 * its style reads bytes in place), so a row costs only the walk over its fields and the rewrite.
 *
 * A masked value of a binary-format type that is not text (an int4, a timestamp) becomes NULL: its
 * binary encoding cannot say "[masked]", and any number would be a lie the client cannot tell from
 * data. A json/jsonb value masked whole is sent as a JSON string, so the client still parses it.
 * Only masked or scanned values are decoded; the rest are copied as byte ranges of the original.
 */
export class RowMasker {
  private readonly codes: Uint8Array;
  private readonly masked: boolean[];
  /** Per field masked whole by a constant (redact): its bytes, as is or as a JSON string. */
  private readonly constants: Array<Buffer | undefined>;
  /** The constant's own bytes: a value that already holds them is left as it is (whatever the type). */
  private readonly constantText: Array<Buffer | undefined>;
  private readonly inPlace: RowPlan['fromBytes'];
  private readonly intoBytes: RowPlan['fromBytesInto'];

  constructor(
    fields: readonly FieldDescription[],
    private readonly plan: RowPlan,
    private readonly scans: boolean,
  ) {
    this.codes = Uint8Array.from(fields, codeOf);
    this.masked = fields.map((_, i) => plan.masked[i] === true);
    this.constantText = fields.map((_, i) => {
      const c = plan.constants[i];
      return c === undefined ? undefined : Buffer.from(c, 'utf8');
    });
    this.constants = this.constantText.map((text, i) =>
      text && (this.codes[i]! & AS_JSON) !== 0
        ? Buffer.from(JSON.stringify(plan.constants[i]), 'utf8')
        : text,
    );
    this.inPlace = fields.map((_, i) => ((this.codes[i]! & AS_JSON) === 0 ? plan.fromBytes[i] : undefined));
    this.intoBytes = fields.map((_, i) =>
      (this.codes[i]! & AS_JSON) === 0 ? plan.fromBytesInto[i] : undefined,
    );
  }

  /** The DataRow `src[start, end)` with masked values, in a buffer of its own; null when nothing changed. */
  mask(src: Buffer, start = 0, end = src.length): Buffer | null {
    const size = this.measure(src, start, end);
    return size < 0 ? null : rebuilt(size);
  }

  /**
   * Reads the DataRow `src[start, end)` and works out its masked values: the masked row's size on the
   * wire, to be written by `writeTo` before the next row is measured, or -1 when nothing changes.
   * Throws ProtocolError when the row's field lengths do not fit the message.
   */
  measure(src: Buffer, start: number, end: number): number {
    const bodyStart = start + 5;
    if (end - bodyStart < 2) throw new ProtocolError('malformed DataRow: no field count');
    const n = (src[bodyStart]! << 8) | src[bodyStart + 1]!;
    let growth = 0;
    let pos = bodyStart + 2;
    edit.count = 0;
    for (let i = 0; i < n; i++) {
      const at = pos;
      if (at + 4 > end) throw new ProtocolError('malformed DataRow: more fields than bytes');
      const len = int32At(src, at);
      const from0 = at + 4;
      pos = len < 0 ? from0 : from0 + len;
      if (pos > end) throw new ProtocolError('malformed DataRow: a field runs past the message');
      const whole = i < this.masked.length ? this.masked[i]! : false;
      if (len < 0 || !(whole || this.scans)) continue;
      const code = i < this.codes.length ? this.codes[i]! : TEXT;
      if ((code & KIND) === OPAQUE) {
        if (whole) {
          addEdit(at, pos, null, false);
          growth -= len;
        }
        continue;
      }
      const versionByte = (code & KIND) === JSONB_TEXT;
      const from = versionByte ? from0 + 1 : from0;
      if (whole) {
        const constant = this.constants[i];
        if (constant !== undefined) {
          const text = this.constantText[i]!;
          const same = pos - from === text.length && src.compare(text, 0, text.length, from, pos) === 0;
          if (!same) growth += addEdit(at, pos, constant, versionByte) - len;
          continue;
        }
        // A style that reads bytes in place (tokenize) skips decoding the value and encoding it back,
        // and where its answer has a fixed size, the string too: it is written with the row.
        const into = this.intoBytes[i];
        if (into?.accepts(src, from, pos)) {
          growth += addEdit(at, pos, src, versionByte, from, pos, into) - len;
          continue;
        }
        const token = this.inPlace[i]?.(src, from, pos);
        if (token !== undefined) {
          growth += addEdit(at, pos, token, versionByte) - len;
          continue;
        }
      }
      const before = src.toString('utf8', from, pos);
      const after = this.plan.maskAt(i, before);
      if (after === before) continue;
      growth += addEdit(at, pos, whole && code & AS_JSON ? JSON.stringify(after) : after, versionByte) - len;
    }
    if (edit.count === 0) return -1;
    return measured(src, start, end, growth, true);
  }

  /** Gives `out` the row `measure` just sized (`size` bytes) as the replacement of `m`. */
  writeTo(out: ChunkOutput, m: Message, size: number): void {
    out.replace(m, size);
    writeEdited(out, size);
  }

  /** `writeTo` for a row of the batch known only by its place (`input` bytes: a row of a RowRun). */
  writeRowTo(out: ChunkOutput, input: number, size: number): void {
    out.replaceBytes(input, size);
    writeEdited(out, size);
  }
}

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
const ESCAPE: Record<string, string> = { '\\': '\\\\' };
for (const [k, v] of Object.entries(UNESCAPE)) ESCAPE[v] = `\\${k}`;

/** One field of COPY's text format (not `\N`): backslash escapes as PostgreSQL writes them. */
function unescapeCopy(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x' && e.length > 1) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return UNESCAPE[e] ?? e;
  });
}

const escapeCopy = (s: string): string => s.replace(/[\\\t\n\r\b\f\v]/g, (c) => ESCAPE[c]!);

const TAB = 0x09;
const NEWLINE = 0x0a;

/**
 * A CopyData message of a text-format COPY OUT (one row per message), masked; `raw` when unchanged.
 * Fields are split at tab bytes; only masked or scanned fields are decoded, only a changed one is re-escaped.
 */
export function maskCopyRow(raw: Buffer, body: Buffer, plan: RowPlan): Buffer {
  const lineEnd = body.length > 0 && body[body.length - 1] === NEWLINE ? body.length - 1 : body.length;
  const masked = plan.masked;
  let growth = 0;
  let start = 0;
  edit.count = 0;
  for (let i = 0; start <= lineEnd; i++) {
    let end = body.indexOf(TAB, start);
    if (end < 0 || end > lineEnd) end = lineEnd;
    if (masked[i] === true || plan.scans) {
      const field = body.toString('utf8', start, end);
      if (field !== '\\N') {
        const before = unescapeCopy(field);
        const after = plan.maskAt(i, before);
        if (after !== before) growth += addEdit(start, end, escapeCopy(after), false) - (end - start);
      }
    }
    start = end + 1;
  }
  if (edit.count === 0) return raw;
  // Positions in `body` are 5 bytes further in `raw`, where the message's type and length come first.
  for (let k = 0; k < edit.count; k++) {
    edit.at[k] = edit.at[k]! + 5;
    edit.end[k] = edit.end[k]! + 5;
  }
  return rebuilt(measured(raw, 0, raw.length, growth, false));
}

/** A CommandComplete whose row count says `rows` (`SELECT 20` → `SELECT 5`). */
export function commandCompleteWithRows(tag: string, rows: number): Buffer {
  return message(Back.CommandComplete, tag.replace(/\d+$/, String(rows)));
}
