// The reviews repository: commands held for human approval, with every approval given. A change
// is written only over the version it was decided from, so concurrent approvers or gateways on
// one store never overwrite each other's decision.
import { type Selectable, sql } from 'kysely';
import type { Store } from './store.js';
import type { ReviewsTable } from './tables.js';

/**
 * `break-glass`: the requester ran the command before anyone approved it; it waits for approvers
 * after the fact (approved: ratified; denied: a violation on record).
 */
export const REVIEW_STATUSES = [
  'pending',
  'approved',
  'denied',
  'expired',
  'cancelled',
  'break-glass',
] as const;
export type ReviewStatus = (typeof REVIEW_STATUSES)[number];

/** Who asked: the caller of the session the command ran in, with its delegation chain. */
export interface Requester {
  subject: string;
  kind: string;
  root: string;
  chain: string[];
  token_id: string | null;
}

export interface Approval {
  subject: string;
  /** The root of the approver's own chain: one person approves once, however many tokens they hold. */
  root: string;
  at: string;
  reason: string | null;
}

/** What the rule said when the review was opened. */
export interface ReviewOptions {
  /** The statement waits on the wire (else it was refused, to be run again once approved). */
  held: boolean;
  /** Not held: how long an approval lets the requester run it again. */
  reuse_ms: number | null;
  /** The requester may run it at once with a reason, to be reviewed after the fact. */
  break_glass: boolean;
}

export interface ReviewView {
  id: string;
  status: ReviewStatus;
  version: number;
  created_at: string;
  /** When a pending review expires (the command's hold ends). */
  expires_at: string;
  decided_at: string | null;
  session_id: string;
  connection: string;
  /** The command as the audit trail keeps it (values of masked columns masked). */
  command: string;
  /** The rule that asked for the review. */
  rule: string;
  rules: string[];
  message: string | null;
  requester: Requester;
  approver_groups: string[];
  approvals_required: number;
  approvals: Approval[];
  /** Who denied it, or the last approver; null while pending and for expired or cancelled. */
  decided_by: string | null;
  reason: string | null;
  /** The statement's shape (constants replaced), when it parsed: what a pre-approval names. */
  fingerprint: string | null;
  /** The requester ran the command before any approval, with a reason. */
  break_glass: boolean;
  /**
   * A statement that was not held (`hold: false`): once approved, the requester may run the same
   * text again until this time.
   */
  reuse_until: string | null;
  options: ReviewOptions;
  /** SHA-256 (hex) of the statement's whole raw text, which `command` shows masked. */
  text_hash: string | null;
}

export interface ReviewFilter {
  status?: ReviewStatus[];
  /**
   * Only reviews of commands `root` ran (itself or through agents), or that one of `groups`
   * may decide on.
   */
  visibleTo?: { root: string; groups: string[] };
  limit: number;
}

function view(row: Selectable<ReviewsTable>): ReviewView {
  return {
    id: row.id,
    status: row.status as ReviewStatus,
    version: Number(row.version),
    created_at: row.created_at,
    expires_at: row.expires_at,
    decided_at: row.decided_at,
    session_id: row.session_id,
    connection: row.connection_name,
    command: row.command,
    rule: row.rule,
    rules: JSON.parse(row.rules_json),
    message: row.message,
    requester: JSON.parse(row.requester_json),
    approver_groups: JSON.parse(row.approver_groups_json),
    approvals_required: Number(row.approvals_required),
    approvals: JSON.parse(row.approvals_json),
    decided_by: row.decided_by,
    reason: row.reason,
    fingerprint: row.fingerprint,
    break_glass: Number(row.break_glass) === 1,
    reuse_until: row.reuse_until,
    options: { held: true, reuse_ms: null, break_glass: false, ...JSON.parse(row.options_json) },
    text_hash: row.text_hash,
  };
}

export class Reviews {
  constructor(private readonly store: Store) {}

  async insert(r: ReviewView): Promise<void> {
    await this.store.db
      .insertInto('reviews')
      .values({
        id: r.id,
        status: r.status,
        version: r.version,
        created_at: r.created_at,
        expires_at: r.expires_at,
        decided_at: r.decided_at,
        session_id: r.session_id,
        connection_name: r.connection,
        command: r.command,
        rule: r.rule,
        rules_json: JSON.stringify(r.rules),
        message: r.message,
        requester_json: JSON.stringify(r.requester),
        requester_root: r.requester.root,
        approver_groups_json: JSON.stringify(r.approver_groups),
        approvals_required: r.approvals_required,
        approvals_json: JSON.stringify(r.approvals),
        decided_by: r.decided_by,
        reason: r.reason,
        fingerprint: r.fingerprint,
        break_glass: r.break_glass ? 1 : 0,
        reuse_until: r.reuse_until,
        options_json: JSON.stringify(r.options),
        text_hash: r.text_hash,
      })
      .execute();
  }

  async get(id: string): Promise<ReviewView | undefined> {
    const row = await this.store.db.selectFrom('reviews').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? view(row) : undefined;
  }

  /** Newest first. */
  async list(f: ReviewFilter): Promise<ReviewView[]> {
    let q = this.store.db.selectFrom('reviews').selectAll();
    if (f.status?.length) q = q.where('status', 'in', f.status);
    const who = f.visibleTo;
    if (who) {
      // Groups are stored as a JSON array of strings: `"name"` with its quotes is one element.
      const like = (g: string) => `%${JSON.stringify(g).replace(/[\\%_]/g, '\\$&')}%`;
      q = q.where((eb) =>
        eb.or([
          eb('requester_root', '=', who.root),
          ...who.groups.map((g) => sql<boolean>`approver_groups_json like ${like(g)} escape '\\'`),
        ]),
      );
    }
    const rows = await q.orderBy('created_at', 'desc').limit(f.limit).execute();
    return rows.map(view);
  }

  /**
   * Writes `next` over the review if it is still at `next.version - 1`; false when someone
   * changed it first (the caller reads it again and decides anew).
   */
  async update(next: ReviewView): Promise<boolean> {
    const res = await this.store.db
      .updateTable('reviews')
      .set({
        status: next.status,
        version: next.version,
        decided_at: next.decided_at,
        approvals_json: JSON.stringify(next.approvals),
        decided_by: next.decided_by,
        reason: next.reason,
        break_glass: next.break_glass ? 1 : 0,
        reuse_until: next.reuse_until,
      })
      .where('id', '=', next.id)
      .where('version', '=', next.version - 1)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * The newest review of the statement whose raw text hashes to `textHash` that `subject` asked
   * for on `connection` and that still counts: a pending one (no second review is opened), or an
   * approved (or broken-glass) one whose reuse window is open.
   */
  async reusable(
    who: { subject: string; root: string },
    connection: string,
    textHash: string,
    now: Date,
  ): Promise<ReviewView | undefined> {
    const at = now.toISOString();
    // Narrowed to the requester's chain in the query: others running the same text often must not
    // crowd this caller's own review out of the page read.
    const rows = await this.store.db
      .selectFrom('reviews')
      .selectAll()
      .where('connection_name', '=', connection)
      .where('text_hash', '=', textHash)
      .where('requester_root', '=', who.root)
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'pending'), eb('expires_at', '>', at)]),
          eb.and([eb('status', 'in', ['approved', 'break-glass']), eb('reuse_until', '>', at)]),
        ]),
      )
      .orderBy('created_at', 'desc')
      .limit(50)
      .execute();
    return rows.map(view).find((r) => r.requester.subject === who.subject);
  }

  /** Pending reviews whose time ran out before `before` (their gateway is gone, or nobody held them). */
  async overdue(before: Date, limit = 100): Promise<ReviewView[]> {
    const rows = await this.store.db
      .selectFrom('reviews')
      .selectAll()
      .where('status', '=', 'pending')
      .where('expires_at', '<', before.toISOString())
      .limit(limit)
      .execute();
    return rows.map(view);
  }

  /** The status of each of these reviews that is no longer pending. */
  async decided(ids: string[]): Promise<ReviewView[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('reviews')
      .selectAll()
      .where('id', 'in', ids)
      .where('status', '!=', 'pending')
      .execute();
    return rows.map(view);
  }
}
