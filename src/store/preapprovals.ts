// The pre-approvals repository: a statement shape (its fingerprint: constants replaced) that an
// approver allowed ahead of time on one connection, for one subject (with the agents acting for
// it) or for everyone in a group, until it expires or is revoked.
import type { Selectable } from 'kysely';
import type { Store } from './store.js';
import type { PreapprovalsTable } from './tables.js';

export interface PreapprovalView {
  id: string;
  connection: string;
  fingerprint: string;
  /** The review rule it stands in for: only statements that rule catches are covered. */
  rule: string;
  /** Who it covers: a subject (and the chains rooted at it) or a group; exactly one is set. */
  subject: string | null;
  group: string | null;
  /** The review it was given from. */
  review_id: string | null;
  created_by: string;
  created_at: string;
  expires_at: string;
  reason: string | null;
  revoked_at: string | null;
}

/** The caller a pre-approval may cover. */
export interface Covered {
  subject: string;
  root: string;
  groups: readonly string[];
}

function view(row: Selectable<PreapprovalsTable>): PreapprovalView {
  return {
    id: row.id,
    connection: row.connection_name,
    fingerprint: row.fingerprint,
    rule: row.rule,
    subject: row.subject,
    group: row.group_name,
    review_id: row.review_id,
    created_by: row.created_by,
    created_at: row.created_at,
    expires_at: row.expires_at,
    reason: row.reason,
    revoked_at: row.revoked_at,
  };
}

export class Preapprovals {
  constructor(private readonly store: Store) {}

  async insert(p: PreapprovalView): Promise<void> {
    await this.store.db
      .insertInto('preapprovals')
      .values({
        id: p.id,
        connection_name: p.connection,
        fingerprint: p.fingerprint,
        rule: p.rule,
        subject: p.subject,
        group_name: p.group,
        review_id: p.review_id,
        created_by: p.created_by,
        created_at: p.created_at,
        expires_at: p.expires_at,
        reason: p.reason,
        revoked_at: p.revoked_at,
      })
      .execute();
  }

  async get(id: string): Promise<PreapprovalView | undefined> {
    const row = await this.store.db
      .selectFrom('preapprovals')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? view(row) : undefined;
  }

  /** In force (not expired, not revoked) unless `all`; newest first. */
  async list(opts: { all?: boolean; now?: Date } = {}): Promise<PreapprovalView[]> {
    let q = this.store.db.selectFrom('preapprovals').selectAll();
    if (!opts.all) {
      q = q.where('revoked_at', 'is', null).where('expires_at', '>', (opts.now ?? new Date()).toISOString());
    }
    return (await q.orderBy('created_at', 'desc').limit(1000).execute()).map(view);
  }

  /** Revokes one in force; undefined when there is none by that id. */
  async revoke(id: string, at: Date): Promise<PreapprovalView | undefined> {
    await this.store.db
      .updateTable('preapprovals')
      .set({ revoked_at: at.toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    return this.get(id);
  }

  /**
   * The pre-approval in force that covers `who` running `fingerprint` on `connection` under review
   * rule `rule`, if any: one given under another rule (a laxer one) does not stand in for this one.
   */
  async find(
    connection: string,
    fingerprint: string,
    rule: string,
    who: Covered,
    now: Date,
  ): Promise<PreapprovalView | undefined> {
    const rows = await this.store.db
      .selectFrom('preapprovals')
      .selectAll()
      .where('connection_name', '=', connection)
      .where('fingerprint', '=', fingerprint)
      .where('rule', '=', rule)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now.toISOString())
      .execute();
    return rows
      .map(view)
      .find(
        (p) =>
          (p.subject !== null && (p.subject === who.subject || p.subject === who.root)) ||
          (p.group !== null && who.groups.includes(p.group)),
      );
  }
}
