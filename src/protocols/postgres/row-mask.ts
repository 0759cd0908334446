// Masking applied to result bytes: DataRow values (text format, and binary format of text-like
// types) and text COPY rows, rebuilt only when a value changes; everything else keeps its bytes.
import type { RowPlan } from '../../policy/mask/values.js';
import { Back, dataRow, type FieldDescription, message, readDataRow } from './codec.js';

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

/**
 * The DataRow with masked values, or `raw` itself when nothing changed. A masked value of a
 * binary-format type that is not text (an int4, a timestamp) becomes NULL: its binary encoding
 * cannot say "[masked]", and any number would be a lie the client cannot tell from data.
 * A json/jsonb value masked whole is sent as a JSON string, so the client still parses it.
 */
export function maskDataRow(
  raw: Buffer,
  body: Buffer,
  fields: readonly FieldDescription[],
  plan: RowPlan,
  scans: boolean,
): Buffer {
  const cells = readDataRow(body);
  const encodings = cells.map((_, i) => encodingOf(fields[i]));
  const values = cells.map((c, i) => {
    if (c === null || encodings[i] === 'opaque' || !(plan.masked[i] || scans)) return null;
    return encodings[i] === 'jsonb' ? c.toString('utf8', 1) : c.toString('utf8');
  });
  const masked = plan.mask(values);
  let changed = false;
  const out = cells.map((c, i) => {
    if (c === null) return null;
    if (encodings[i] === 'opaque') {
      if (!plan.masked[i]) return c;
      changed = true;
      return null;
    }
    const before = values[i];
    let after = masked[i];
    if (before === null || before === undefined || after === null || after === undefined || after === before)
      return c;
    changed = true;
    if (plan.masked[i] && JSON_TYPES.has(fields[i]?.typeOid ?? 0)) after = JSON.stringify(after);
    const text = Buffer.from(after, 'utf8');
    return encodings[i] === 'jsonb' ? Buffer.concat([Buffer.from([1]), text]) : text;
  });
  return changed ? dataRow(out) : raw;
}

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One field of COPY's text format: `\N` is NULL, backslash escapes as PostgreSQL writes them. */
function unescapeCopy(s: string): string | null {
  if (s === '\\N') return null;
  return s.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x' && e.length > 1) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return UNESCAPE[e] ?? e;
  });
}

function escapeCopy(s: string | null): string {
  if (s === null) return '\\N';
  return s.replace(/[\\\t\n\r\b\f\v]/g, (c) => {
    const named = Object.entries(UNESCAPE).find(([, v]) => v === c);
    return named ? `\\${named[0]}` : '\\\\';
  });
}

/**
 * A CopyData message of a text-format COPY OUT (one row per message), masked; `raw` when unchanged.
 * Fields are split at tabs; only a field whose value changes is re-escaped, the rest keep their text.
 */
export function maskCopyRow(raw: Buffer, body: Buffer, plan: RowPlan): Buffer {
  const line = body.toString('utf8');
  const nl = line.endsWith('\n') ? 1 : 0;
  const fields = line.slice(0, line.length - nl).split('\t');
  const values = fields.map(unescapeCopy);
  const masked = plan.mask(values);
  if (masked.every((v, i) => v === values[i])) return raw;
  const text = masked.map((v, i) => (v === values[i] ? fields[i] : escapeCopy(v))).join('\t');
  return message(Back.CopyData, Buffer.from(text + (nl ? '\n' : ''), 'utf8'));
}

/** A CommandComplete whose row count says `rows` (`SELECT 20` → `SELECT 5`). */
export function commandCompleteWithRows(tag: string, rows: number): Buffer {
  return message(Back.CommandComplete, tag.replace(/\d+$/, String(rows)));
}
