// The export format (JSON lines): a header, then the signed checkpoints in range, then the
// records in seq order. Checkpoints come first so a verifier can stream the records in
// constant memory. The public key is deliberately not in the file: it must come from
// somewhere the exporter cannot rewrite.
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { Store } from '../store/store.js';
import {
  type AuditCheckpoint,
  type AuditRecord,
  auditCheckpointSchema,
  auditRecordSchema,
  schemaProblem,
} from './record.js';
import { MalformedRecord, storeCheckpoints, storeRecords, type VerifyReport, verifyTrail } from './verify.js';

export const EXPORT_FORMAT = 'warden-audit/1';

export interface ExportRange {
  since?: string;
  until?: string;
}

export async function* exportLines(store: Store, range: ExportRange, keyId: string): AsyncGenerator<string> {
  let bounds = store.db
    .selectFrom('audit_log')
    .select((eb) => [eb.fn.min('seq').as('first'), eb.fn.max('seq').as('last')]);
  if (range.since) bounds = bounds.where('time', '>=', range.since);
  if (range.until) bounds = bounds.where('time', '<=', range.until);
  const b = await bounds.executeTakeFirst();
  const first = b?.first == null ? null : Number(b.first);
  const last = b?.last == null ? null : Number(b.last);
  yield `${JSON.stringify({
    kind: 'header',
    format: EXPORT_FORMAT,
    exported_at: new Date().toISOString(),
    since: range.since ?? null,
    until: range.until ?? null,
    first_seq: first,
    last_seq: last,
    key_id: keyId,
  })}\n`;
  if (first === null || last === null) return;
  for (const c of await storeCheckpoints(store)) {
    if (c.seq >= first && c.seq <= last) yield `${JSON.stringify({ kind: 'checkpoint', ...c })}\n`;
  }
  for await (const r of storeRecords(store, { sinceSeq: first })) {
    if (r.seq > last) break;
    yield `${JSON.stringify({ kind: 'record', ...r })}\n`;
  }
}

export class ExportFormatError extends Error {
  override name = 'ExportFormatError';
}

const exportHeader = z.object({
  kind: z.literal('header'),
  format: z.literal(EXPORT_FORMAT),
  since: z.string().nullable(),
  until: z.string().nullable(),
  first_seq: z.number().int().nullable(),
  last_seq: z.number().int().nullable(),
});

export interface VerifyExportOptions {
  /** Trusted checkpoints kept apart from the export (a witness file, `warden audit checkpoint --json`). */
  anchors?: AuditCheckpoint[];
  /** Default true: offline, only a signature ties the records to the gateway. */
  requireSignature?: boolean;
}

/** One non-blank line of the file: its parsed JSON, or why it has none. */
type Line = { no: number; value: unknown } | { no: number; notJson: true };

/**
 * Verifies an export read line by line (e.g. from a file), checking checkpoints and anchors
 * with `keys`. Every line is untrusted: a bad header or checkpoint line throws ExportFormatError,
 * a bad line among the records is reported as 'malformed' at its seq.
 */
export async function verifyExport(
  lines: AsyncIterable<string>,
  keys: Map<string, KeyObject>,
  opts: VerifyExportOptions = {},
): Promise<VerifyReport> {
  const it = lines[Symbol.asyncIterator]();
  let lineNo = 0;
  const next = async (): Promise<Line | undefined> => {
    for (;;) {
      const { value, done } = await it.next();
      if (done) return undefined;
      lineNo += 1;
      if (value.trim() === '') continue;
      try {
        return { no: lineNo, value: JSON.parse(value) as unknown };
      } catch {
        return { no: lineNo, notJson: true };
      }
    }
  };
  const first = await next();
  const header = first && 'value' in first ? exportHeader.safeParse(first.value) : undefined;
  if (!header?.success) {
    const kind = first && 'value' in first ? fieldOf(first.value, 'kind') : undefined;
    throw new ExportFormatError(
      kind === 'header' && header
        ? `line ${first?.no}: malformed ${EXPORT_FORMAT} header (${schemaProblem(header.error)})`
        : `not a ${EXPORT_FORMAT} export (line 1 has no header)`,
    );
  }
  const checkpoints: AuditCheckpoint[] = [];
  let firstRecord: Line | undefined;
  for (;;) {
    const line = await next();
    if (!line) break;
    if ('value' in line && fieldOf(line.value, 'kind') === 'checkpoint') {
      const c = auditCheckpointSchema.safeParse(line.value);
      if (!c.success) {
        throw new ExportFormatError(`line ${line.no}: malformed checkpoint (${schemaProblem(c.error)})`);
      }
      checkpoints.push(c.data);
      continue;
    }
    firstRecord = line;
    break;
  }
  async function* records(): AsyncGenerator<AuditRecord | MalformedRecord> {
    for (let line = firstRecord; line; line = await next()) yield recordOf(line);
  }
  const report = await verifyTrail({
    records: records(),
    checkpoints,
    anchors: opts.anchors,
    keys,
    allowPartial: header.data.since !== null || header.data.until !== null,
    requireSignature: opts.requireSignature ?? true,
  });
  // The header is not signed, but a file that holds less than it announces was cut short
  // (a partial download or copy), even where no checkpoint covers the lost records.
  const { first_seq: firstSeq, last_seq: lastSeq } = header.data;
  if (report.ok && firstSeq !== null && (report.first_seq ?? 0) > firstSeq) {
    report.ok = false;
    report.problem = {
      seq: firstSeq,
      kind: 'missing',
      message: `the header announces records from seq ${firstSeq} but the file starts at seq ${report.first_seq}`,
    };
  } else if (report.ok && lastSeq !== null && (report.last_seq ?? 0) < lastSeq) {
    report.ok = false;
    report.problem = {
      seq: (report.last_seq ?? 0) + 1,
      kind: 'truncated',
      message: `the header announces records up to seq ${lastSeq} but the file ends at seq ${report.last_seq ?? 0}`,
    };
  }
  return report;
}

function fieldOf(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

function recordOf(line: Line): AuditRecord | MalformedRecord {
  if (!('value' in line)) return new MalformedRecord(undefined, `line ${line.no} is not JSON`);
  const claimed = fieldOf(line.value, 'seq');
  const seq = Number.isSafeInteger(claimed) ? (claimed as number) : undefined;
  const kind = fieldOf(line.value, 'kind');
  if (kind !== 'record') {
    return new MalformedRecord(
      seq,
      `line ${line.no}: expected a record, found ${kind === undefined ? 'no kind' : `"${String(kind)}"`}`,
    );
  }
  const r = auditRecordSchema.safeParse(line.value);
  if (!r.success)
    return new MalformedRecord(seq, `line ${line.no}: malformed record (${schemaProblem(r.error)})`);
  return r.data;
}
