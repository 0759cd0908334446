// The export format (JSON lines): a header, then the signed checkpoints in range, then the
// records in seq order. Checkpoints come first so a verifier can stream the records in
// constant memory. The public key is deliberately not in the file: it must come from
// somewhere the exporter cannot rewrite.
import type { KeyObject } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { AuditCheckpoint, AuditRecord } from './record.js';
import { storeCheckpoints, storeRecords, type VerifyReport, verifyTrail } from './verify.js';

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

/** Verifies an export read line by line (e.g. from a file), checking checkpoints with `keys`. */
export async function verifyExport(
  lines: AsyncIterable<string>,
  keys: Map<string, KeyObject>,
): Promise<VerifyReport> {
  const it = lines[Symbol.asyncIterator]();
  let lineNo = 0;
  const next = async (): Promise<Record<string, unknown> | undefined> => {
    for (;;) {
      const { value, done } = await it.next();
      if (done) return undefined;
      lineNo += 1;
      if (value.trim() === '') continue;
      try {
        return JSON.parse(value) as Record<string, unknown>;
      } catch {
        throw new ExportFormatError(`line ${lineNo} is not JSON`);
      }
    }
  };
  const header = await next();
  if (header?.kind !== 'header' || header.format !== EXPORT_FORMAT) {
    throw new ExportFormatError(`not a ${EXPORT_FORMAT} export (line 1 has no header)`);
  }
  const checkpoints: AuditCheckpoint[] = [];
  let firstRecord: Record<string, unknown> | undefined;
  for (;;) {
    const obj = await next();
    if (!obj) break;
    if (obj.kind === 'checkpoint') {
      const { kind: _k, ...c } = obj;
      checkpoints.push(c as unknown as AuditCheckpoint);
      continue;
    }
    firstRecord = obj;
    break;
  }
  async function* records(): AsyncGenerator<AuditRecord> {
    let obj = firstRecord;
    while (obj) {
      if (obj.kind !== 'record')
        throw new ExportFormatError(`line ${lineNo}: expected a record, found "${String(obj.kind)}"`);
      const { kind: _k, ...r } = obj;
      yield r as unknown as AuditRecord;
      obj = await next();
    }
  }
  const partial = header.since !== null || header.until !== null;
  const report = await verifyTrail({ records: records(), checkpoints, keys, allowPartial: partial });
  // The header is not signed, but a file that holds less than it announces was cut short
  // (a partial download or copy), even where no checkpoint covers the lost records.
  if (report.ok && typeof header.first_seq === 'number' && (report.first_seq ?? 0) > header.first_seq) {
    report.ok = false;
    report.problem = {
      seq: header.first_seq,
      kind: 'missing',
      message: `the header announces records from seq ${header.first_seq} but the file starts at seq ${report.first_seq}`,
    };
  } else if (report.ok && typeof header.last_seq === 'number' && (report.last_seq ?? 0) < header.last_seq) {
    report.ok = false;
    report.problem = {
      seq: (report.last_seq ?? 0) + 1,
      kind: 'truncated',
      message: `the header announces records up to seq ${header.last_seq} but the file ends at seq ${report.last_seq ?? 0}`,
    };
  }
  return report;
}
