// Verification of an audit trail, the same code for the live store and for an exported file:
// recompute every hash, follow every link, check every checkpoint signature, and name the
// first broken seq and why.
import type { KeyObject } from 'node:crypto';
import { verifyDetached } from '../crypto/signing.js';
import type { Store } from '../store/store.js';
import {
  type AuditCheckpoint,
  type AuditRecord,
  checkpointMessage,
  GENESIS_HASH,
  hashRecord,
} from './record.js';
import { recordFromRow } from './rows.js';

export type ProblemKind =
  | 'edited'
  | 'missing'
  | 'out_of_order'
  | 'chain_broken'
  | 'forged_checkpoint'
  | 'checkpoint_mismatch'
  | 'truncated'
  | 'malformed';

export interface VerifyProblem {
  seq: number;
  kind: ProblemKind;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  checkpoints: number;
  first_seq: number | null;
  last_seq: number | null;
  /** True when the trail starts at seq 1 (so nothing before it could have been removed unseen). */
  from_genesis: boolean;
  last_checkpoint: { seq: number; time: string } | null;
  problem: VerifyProblem | null;
}

export async function verifyTrail(input: {
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>;
  checkpoints: AuditCheckpoint[];
  keys: Map<string, KeyObject>;
  /** A partial export (--since) may start after seq 1; a full trail must not. */
  allowPartial?: boolean;
}): Promise<VerifyReport> {
  const report: VerifyReport = {
    ok: false,
    records: 0,
    checkpoints: input.checkpoints.length,
    first_seq: null,
    last_seq: null,
    from_genesis: false,
    last_checkpoint: null,
    problem: null,
  };
  const fail = (seq: number, kind: ProblemKind, message: string): VerifyReport => {
    report.problem = { seq, kind, message };
    return report;
  };

  const bySeq = new Map<number, AuditCheckpoint>();
  for (const c of [...input.checkpoints].sort((a, b) => a.seq - b.seq)) {
    const key = input.keys.get(c.key_id);
    if (!key)
      return fail(
        c.seq,
        'forged_checkpoint',
        `checkpoint at seq ${c.seq} is signed by unknown key ${c.key_id}`,
      );
    if (!verifyDetached(key, checkpointMessage(c), c.signature)) {
      return fail(c.seq, 'forged_checkpoint', `checkpoint at seq ${c.seq} has an invalid signature`);
    }
    bySeq.set(c.seq, c);
  }

  const records = inOrder(input.records);
  // A gap or a record that does not hash at its seq is either removal/editing or a record
  // moved from further down: only the rest of the trail tells (read on the failure path only).
  // Callers inside the loop below must `return await`: leaving the loop first closes `records`.
  const comesLater = async (belongs: (later: AuditRecord) => boolean): Promise<AuditRecord | undefined> => {
    for await (const later of records) if (belongs(later)) return later;
    return undefined;
  };
  const gap = async (expected: number, found: number, missing: string): Promise<VerifyReport> => {
    const moved = await comesLater((later) => later.seq === expected);
    if (!moved) return fail(expected, 'missing', missing);
    return fail(
      expected,
      'out_of_order',
      `seq ${found} appears where seq ${expected} belongs and seq ${expected} comes later: records were reordered`,
    );
  };
  const misfit = async (r: AuditRecord): Promise<VerifyReport> => {
    const moved = await comesLater(
      (later) => typeof later.hash === 'string' && hashRecord({ ...later, seq: r.seq }) === later.hash,
    );
    if (!moved) {
      return fail(r.seq, 'edited', `seq ${r.seq} does not match its hash: the record was edited or moved`);
    }
    return fail(
      r.seq,
      'out_of_order',
      `the record written as seq ${r.seq} is stored at seq ${moved.seq}: records were reordered`,
    );
  };

  let prev: AuditRecord | undefined;
  for await (const r of records) {
    if (!Number.isSafeInteger(r.seq) || typeof r.hash !== 'string' || typeof r.prev_hash !== 'string') {
      return fail(prev ? prev.seq + 1 : 1, 'malformed', `record after seq ${prev?.seq ?? 0} is malformed`);
    }
    if (prev === undefined) {
      report.first_seq = r.seq;
      report.from_genesis = r.seq === 1;
      if (r.seq !== 1 && !input.allowPartial) {
        return await gap(1, r.seq, `the trail starts at seq ${r.seq}: records 1..${r.seq - 1} are missing`);
      }
      if (r.seq === 1 && r.prev_hash !== GENESIS_HASH) {
        return fail(1, 'chain_broken', 'seq 1 does not link to the genesis hash');
      }
    } else if (r.seq <= prev.seq) {
      return fail(
        r.seq,
        'out_of_order',
        `seq ${r.seq} appears after seq ${prev.seq}: records were reordered`,
      );
    } else if (r.seq !== prev.seq + 1) {
      return await gap(
        prev.seq + 1,
        r.seq,
        `seq ${prev.seq + 1}${r.seq - prev.seq > 2 ? `..${r.seq - 1}` : ''} missing`,
      );
    }
    if (hashRecord(r) !== r.hash) return await misfit(r);
    if (prev !== undefined && r.prev_hash !== prev.hash) {
      return fail(
        r.seq,
        'chain_broken',
        `seq ${r.seq} does not link to seq ${prev.seq}: a record was replaced`,
      );
    }
    const c = bySeq.get(r.seq);
    if (c) {
      if (c.hash !== r.hash) {
        return fail(
          r.seq,
          'checkpoint_mismatch',
          `seq ${r.seq} differs from its signed checkpoint: history was rewritten`,
        );
      }
      report.last_checkpoint = { seq: c.seq, time: c.time };
    }
    report.records += 1;
    report.last_seq = r.seq;
    prev = r;
  }

  const lastCheckpoint = [...bySeq.values()].at(-1);
  if (lastCheckpoint && (report.last_seq ?? 0) < lastCheckpoint.seq) {
    const first = (report.last_seq ?? 0) + 1;
    return fail(
      first,
      'truncated',
      `a checkpoint signed seq ${lastCheckpoint.seq} but the trail ends at seq ${report.last_seq ?? 0}: the tail was cut`,
    );
  }
  report.ok = true;
  return report;
}

/** One iterator over either kind of source, so a gap can read ahead and stop where it is. */
async function* inOrder(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
): AsyncGenerator<AuditRecord> {
  yield* records;
}

/** Streams records from the store in seq order, a page at a time (constant memory). */
export async function* storeRecords(
  store: Store,
  range: { sinceSeq?: number; sinceTime?: string; untilTime?: string } = {},
  pageSize = 1000,
): AsyncGenerator<AuditRecord> {
  let after = (range.sinceSeq ?? 1) - 1;
  for (;;) {
    let q = store.db.selectFrom('audit_log').selectAll().where('seq', '>', after);
    if (range.sinceTime) q = q.where('time', '>=', range.sinceTime);
    if (range.untilTime) q = q.where('time', '<=', range.untilTime);
    const rows = await q.orderBy('seq', 'asc').limit(pageSize).execute();
    for (const row of rows) yield recordFromRow(row);
    if (rows.length < pageSize) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

export async function storeCheckpoints(store: Store): Promise<AuditCheckpoint[]> {
  const rows = await store.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'asc').execute();
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}
