// Verification of an audit trail, the same code for the live store and for an exported file:
// recompute every hash, follow every link, check every checkpoint signature and every trusted
// anchor from outside the store, and name the first broken seq and why.
import type { KeyObject } from 'node:crypto';
import { verifyDetached } from '../crypto/signing.js';
import type { Store } from '../store/store.js';
import {
  type AuditCheckpoint,
  type AuditRecord,
  checkpointMessage,
  GENESIS_HASH,
  hashEncodedRecord,
  hashRecord,
} from './record.js';
import { recordFromRow, storedJson } from './rows.js';

export type ProblemKind =
  | 'edited'
  | 'missing'
  | 'out_of_order'
  | 'chain_broken'
  | 'forged_checkpoint'
  | 'checkpoint_mismatch'
  | 'truncated'
  | 'malformed'
  | 'unsigned'
  | 'anchor_unchecked';

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
  /** The highest trusted anchor (a checkpoint kept outside the store) that a record was checked against. */
  anchored_seq: number | null;
  /** Records after the last signed checkpoint or anchor: nothing signed vouches for them yet. */
  unsigned_tail: number;
  problem: VerifyProblem | null;
}

/** An entry of an untrusted source (an export line) that is not a record: named where it stands. */
export class MalformedRecord {
  constructor(
    /** The seq the entry claims, when it claims one. */
    readonly seq: number | undefined,
    readonly reason: string,
  ) {}
}

export async function verifyTrail(input: {
  records: AsyncIterable<AuditRecord | MalformedRecord> | Iterable<AuditRecord | MalformedRecord>;
  /** The checkpoints the store or export holds: whoever can write there can also delete them. */
  checkpoints: AuditCheckpoint[];
  /**
   * Trusted checkpoints from outside the store (the gateway's witness file, an auditor's copy).
   * They are enforced even when the matching checkpoint was deleted from the store or export.
   * One before the first record of a partial trail cannot be checked and is skipped.
   */
  anchors?: AuditCheckpoint[];
  keys: Map<string, KeyObject>;
  /** A partial export (--since) may start after seq 1; a full trail must not. */
  allowPartial?: boolean;
  /** Offline: records that no signed checkpoint or anchor covers prove nothing, so they fail. */
  requireSignature?: boolean;
}): Promise<VerifyReport> {
  const report: VerifyReport = {
    ok: false,
    records: 0,
    checkpoints: input.checkpoints.length,
    first_seq: null,
    last_seq: null,
    from_genesis: false,
    last_checkpoint: null,
    anchored_seq: null,
    unsigned_tail: 0,
    problem: null,
  };
  const fail = (seq: number, kind: ProblemKind, message: string): VerifyReport => {
    report.problem = { seq, kind, message };
    return report;
  };

  const forgery = (c: AuditCheckpoint, what: string): string | undefined => {
    const key = input.keys.get(c.key_id);
    if (!key) return `${what} at seq ${c.seq} is signed by unknown key ${c.key_id}`;
    if (!verifyDetached(key, checkpointMessage(c), c.signature)) {
      return `${what} at seq ${c.seq} has an invalid signature`;
    }
    return undefined;
  };
  const bySeq = new Map<number, AuditCheckpoint>();
  for (const c of [...input.checkpoints].sort((a, b) => a.seq - b.seq)) {
    const forged = forgery(c, 'checkpoint');
    if (forged) return fail(c.seq, 'forged_checkpoint', forged);
    bySeq.set(c.seq, c);
  }
  const anchors = new Map<number, AuditCheckpoint>();
  for (const a of [...(input.anchors ?? [])].sort((x, y) => x.seq - y.seq)) {
    const forged = forgery(a, 'trusted anchor');
    if (forged) return fail(a.seq, 'forged_checkpoint', forged);
    const other = bySeq.get(a.seq) ?? anchors.get(a.seq);
    if (other && other.hash !== a.hash) {
      return fail(
        a.seq,
        'checkpoint_mismatch',
        `the checkpoint at seq ${a.seq} differs from the trusted anchor: history was rewritten`,
      );
    }
    anchors.set(a.seq, a);
  }

  const records = inOrder(input.records);
  // A gap or a record that does not hash at its seq is either removal/editing or a record
  // moved from further down: only the rest of the trail tells (read on the failure path only).
  // Callers inside the loop below must `return await`: leaving the loop first closes `records`.
  const comesLater = async (belongs: (later: AuditRecord) => boolean): Promise<AuditRecord | undefined> => {
    for await (const later of records)
      if (!(later instanceof MalformedRecord) && belongs(later)) return later;
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
    if (r instanceof MalformedRecord) {
      return fail(r.seq ?? (prev ? prev.seq + 1 : 1), 'malformed', r.reason);
    }
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
    if (!hashMatches(r)) return await misfit(r);
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
    const a = anchors.get(r.seq);
    if (a) {
      if (a.hash !== r.hash) {
        return fail(
          r.seq,
          'checkpoint_mismatch',
          `seq ${r.seq} differs from the trusted anchor signed at ${a.time}: history was rewritten`,
        );
      }
      report.anchored_seq = a.seq;
    }
    report.unsigned_tail = c || a ? 0 : report.unsigned_tail + 1;
    report.records += 1;
    report.last_seq = r.seq;
    prev = r;
  }

  const end = report.last_seq ?? 0;
  const lastCheckpoint = [...bySeq.values()].at(-1);
  const lastAnchor = [...anchors.values()].at(-1);
  const farthest =
    lastAnchor && lastAnchor.seq > (lastCheckpoint?.seq ?? 0)
      ? { seq: lastAnchor.seq, by: 'the trusted anchor' }
      : lastCheckpoint && { seq: lastCheckpoint.seq, by: 'a checkpoint' };
  if (farthest && end < farthest.seq) {
    return fail(
      end + 1,
      'truncated',
      `${farthest.by} signed seq ${farthest.seq} but the trail ends at seq ${end}: the tail was cut`,
    );
  }
  // An anchor the trail never reached proves nothing was kept; one the trail starts after (a
  // --since export, whose header nobody signs) cannot be checked, and must not pass silently.
  const skipped = [...anchors.values()].find((a) => report.first_seq !== null && a.seq < report.first_seq);
  if (skipped) {
    return fail(
      skipped.seq,
      'anchor_unchecked',
      `the anchor at seq ${skipped.seq} lies before the first record here (seq ${report.first_seq}): ` +
        'records up to it are missing, so it cannot be checked; verify an export that includes it',
    );
  }
  if (input.requireSignature && report.records > 0 && report.unsigned_tail === report.records) {
    return fail(
      report.first_seq ?? 1,
      'unsigned',
      'no signed checkpoint covers these records: nothing proves they came from this gateway',
    );
  }
  report.ok = true;
  return report;
}

/** One iterator over either kind of source, so a gap can read ahead and stop where it is. */
async function* inOrder<T>(records: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
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

/**
 * Whether a record recomputes to its hash. A record read from the store is first hashed over its
 * stored JSON as is (the appender stores the exact canonical bytes it hashed, so this is the
 * same computation without re-encoding); only when that differs is it re-encoded canonically.
 */
function hashMatches(r: AuditRecord): boolean {
  const json = storedJson(r);
  if (json && hashEncodedRecord(r, json.actorJson, json.payloadJson) === r.hash) return true;
  return hashRecord(r) === r.hash;
}
