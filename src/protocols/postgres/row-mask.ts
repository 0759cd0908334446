// Masking applied to result bytes: DataRow values (text format, and binary format of text-like
// types) and text COPY rows, rebuilt only when a value changes; everything else keeps its bytes.
import type { RowPlan } from '../../policy/mask/values.js';
import { Back, type FieldDescription, message } from './codec.js';

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
const codesByFields = new WeakMap<readonly FieldDescription[], Uint8Array>();

function codesOf(fields: readonly FieldDescription[]): Uint8Array {
  let codes = codesByFields.get(fields);
  if (!codes) {
    codes = Uint8Array.from(fields, (f) => {
      const e = encodingOf(f);
      const kind = e === 'opaque' ? OPAQUE : e === 'jsonb' ? JSONB_TEXT : TEXT;
      return kind | (JSON_TYPES.has(f.typeOid) ? AS_JSON : 0);
    });
    codesByFields.set(fields, codes);
  }
  return codes;
}

/** A constant replacement (redact) encoded once: as is, and as a JSON string for json/jsonb columns. */
const constantBytes = new Map<string, { text: Buffer; quoted: Buffer }>();

function bytesOf(constant: string): { text: Buffer; quoted: Buffer } {
  let b = constantBytes.get(constant);
  if (!b) {
    b = { text: Buffer.from(constant, 'utf8'), quoted: Buffer.from(JSON.stringify(constant), 'utf8') };
    if (constantBytes.size < 64) constantBytes.set(constant, b);
  }
  return b;
}

/**
 * The fields a row rewrite changes, in order: where the old field starts (a DataRow field's length word,
 * a COPY field's first byte) and ends, and its new value (null for SQL NULL). Reused across calls: a rewrite runs to completion before the next.
 */
const edit = {
  count: 0,
  at: [] as number[],
  end: [] as number[],
  value: [] as Array<Buffer | string | null>,
  /** Bytes of the new value after its length word (jsonb's version byte included); -1 for NULL. */
  size: [] as number[],
  versionByte: [] as boolean[],
};

/** Records one edit; the new value's size in bytes (jsonb's version byte included), -1 for NULL. */
function addEdit(at: number, end: number, value: Buffer | string | null, versionByte: boolean): number {
  const k = edit.count++;
  const bytes =
    value === null ? -1 : typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
  const size = bytes < 0 ? -1 : bytes + (versionByte ? 1 : 0);
  edit.at[k] = at;
  edit.end[k] = end;
  edit.value[k] = value;
  edit.size[k] = size;
  edit.versionByte[k] = versionByte;
  return size;
}

/** `src[from, to)` into `dst` at `at`; short ranges byte by byte, which beats `copy`'s view per call. */
function copyRange(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  if (to - from > 96) return src.copy(dst, at, from, to);
  for (let i = from; i < to; i++) dst[at++] = src[i]!;
  return to - from;
}

/** The message `type` with `body` whose edits are applied, written into one buffer of its final size. */
function rebuild(type: number, body: Buffer, growth: number, withLengths: boolean): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length + growth);
  out[0] = type;
  out.writeInt32BE(4 + body.length + growth, 1);
  let o = 5;
  let from = 0;
  for (let k = 0; k < edit.count; k++) {
    o += copyRange(body, from, edit.at[k]!, out, o);
    const value = edit.value[k]!;
    if (withLengths) o = out.writeInt32BE(edit.size[k]!, o);
    if (value !== null) {
      if (edit.versionByte[k]) out[o++] = 1;
      o +=
        typeof value === 'string' ? out.write(value, o, 'utf8') : copyRange(value, 0, value.length, out, o);
    }
    from = edit.end[k]!;
  }
  copyRange(body, from, body.length, out, o);
  edit.value.fill(null, 0, edit.count); // drop references to the row's strings
  edit.count = 0;
  return out;
}

/**
 * The DataRow with masked values, or `raw` itself when nothing changed. A masked value of a
 * binary-format type that is not text (an int4, a timestamp) becomes NULL: its binary encoding
 * cannot say "[masked]", and any number would be a lie the client cannot tell from data.
 * A json/jsonb value masked whole is sent as a JSON string, so the client still parses it.
 * Only masked or scanned values are decoded; the rest are copied as byte ranges of the original.
 */
export function maskDataRow(
  raw: Buffer,
  body: Buffer,
  fields: readonly FieldDescription[],
  plan: RowPlan,
  scans: boolean,
): Buffer {
  const codes = codesOf(fields);
  const masked = plan.masked;
  const n = body.readInt16BE(0);
  let growth = 0;
  let pos = 2;
  edit.count = 0;
  for (let i = 0; i < n; i++) {
    const at = pos;
    const len = body.readInt32BE(at);
    const start = at + 4;
    pos = len < 0 ? start : start + len;
    const whole = masked[i] === true;
    if (len < 0 || !(whole || scans)) continue;
    const code = i < codes.length ? codes[i]! : TEXT;
    if ((code & KIND) === OPAQUE) {
      if (whole) {
        addEdit(at, pos, null, false);
        growth -= len;
      }
      continue;
    }
    const versionByte = (code & KIND) === JSONB_TEXT;
    const from = versionByte ? start + 1 : start;
    const constant = whole ? plan.constants[i] : undefined;
    if (constant !== undefined) {
      const b = bytesOf(constant);
      const same = pos - from === b.text.length && body.compare(b.text, 0, b.text.length, from, pos) === 0;
      if (!same) growth += addEdit(at, pos, code & AS_JSON ? b.quoted : b.text, versionByte) - len;
      continue;
    }
    const before = body.toString('utf8', from, pos);
    const after = plan.maskAt(i, before);
    if (after === before) continue;
    growth += addEdit(at, pos, whole && code & AS_JSON ? JSON.stringify(after) : after, versionByte) - len;
  }
  if (edit.count === 0) return raw;
  return rebuild(Back.DataRow, body, growth, true);
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
  return rebuild(Back.CopyData, body, growth, false);
}

/** A CommandComplete whose row count says `rows` (`SELECT 20` → `SELECT 5`). */
export function commandCompleteWithRows(tag: string, rows: number): Buffer {
  return message(Back.CommandComplete, tag.replace(/\d+$/, String(rows)));
}
