// The access-grants repository: requests for just-in-time access to a connection and what became
// of them. A change is written only over the version it was decided from, so two approvers, or a
// revocation and a gateway expiring the grant, never overwrite each other.
import type { Selectable } from 'kysely';
import type { Store } from './store.js';
import type { AccessGrantsTable } from './tables.js';

export const GRANT_STATUSES = ['pending', 'granted', 'denied', 'expired', 'revoked', 'cancelled'] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

export interface GrantView {
  id: string;
  connection: string;
  /** The requester's root subject: the grant covers that person and the agents acting for them. */
  subject: string;
  /** Who asked (the subject itself, or an agent acting for it). */
  requested_by: string;
  /** The delegation chain of whoever asked, outermost first. */
  requester_chain: string[];
  reason: string;
  /** How long access was asked for (once granted: how long it lasts). */
  duration_ms: number;
  status: GrantStatus;
  version: number;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  decision_reason: string | null;
  starts_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
}

export interface GrantFilter {
  status?: GrantStatus[];
  /** Only the grants of this root subject. */
  subject?: string;
  connection?: string;
  limit: number;
}

function view(row: Selectable<AccessGrantsTable>): GrantView {
  return {
    id: row.id,
    connection: row.connection_name,
    subject: row.subject,
    requested_by: row.requested_by,
    requester_chain: JSON.parse(row.requester_chain_json),
    reason: row.reason,
    duration_ms: Number(row.duration_ms),
    status: row.status as GrantStatus,
    version: Number(row.version),
    created_at: row.created_at,
    decided_at: row.decided_at,
    decided_by: row.decided_by,
    decision_reason: row.decision_reason,
    starts_at: row.starts_at,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    revoked_by: row.revoked_by,
  };
}

export class Grants {
  constructor(private readonly store: Store) {}

  async insert(g: GrantView): Promise<void> {
    await this.store.db
      .insertInto('access_grants')
      .values({
        id: g.id,
        connection_name: g.connection,
        subject: g.subject,
        requested_by: g.requested_by,
        requester_chain_json: JSON.stringify(g.requester_chain),
        reason: g.reason,
        duration_ms: g.duration_ms,
        status: g.status,
        version: g.version,
        created_at: g.created_at,
        decided_at: g.decided_at,
        decided_by: g.decided_by,
        decision_reason: g.decision_reason,
        starts_at: g.starts_at,
        expires_at: g.expires_at,
        revoked_at: g.revoked_at,
        revoked_by: g.revoked_by,
      })
      .execute();
  }

  async get(id: string): Promise<GrantView | undefined> {
    const row = await this.store.db
      .selectFrom('access_grants')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? view(row) : undefined;
  }

  /** Newest first. */
  async list(f: GrantFilter): Promise<GrantView[]> {
    let q = this.store.db.selectFrom('access_grants').selectAll();
    if (f.status?.length) q = q.where('status', 'in', f.status);
    if (f.subject !== undefined) q = q.where('subject', '=', f.subject);
    if (f.connection !== undefined) q = q.where('connection_name', '=', f.connection);
    const rows = await q.orderBy('created_at', 'desc').limit(f.limit).execute();
    return rows.map(view);
  }

  /** Writes `next` if the grant is still at `next.version - 1`; false when someone changed it first. */
  async update(next: GrantView): Promise<boolean> {
    const res = await this.store.db
      .updateTable('access_grants')
      .set({
        status: next.status,
        version: next.version,
        duration_ms: next.duration_ms,
        decided_at: next.decided_at,
        decided_by: next.decided_by,
        decision_reason: next.decision_reason,
        starts_at: next.starts_at,
        expires_at: next.expires_at,
        revoked_at: next.revoked_at,
        revoked_by: next.revoked_by,
      })
      .where('id', '=', next.id)
      .where('version', '=', next.version - 1)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The grant in force for `subject` on `connection` at `now` (the one lasting longest), if any. */
  async inForce(connection: string, subject: string, now: Date): Promise<GrantView | undefined> {
    const row = await this.store.db
      .selectFrom('access_grants')
      .selectAll()
      .where('connection_name', '=', connection)
      .where('subject', '=', subject)
      .where('status', '=', 'granted')
      .where('expires_at', '>', now.toISOString())
      .orderBy('expires_at', 'desc')
      .executeTakeFirst();
    return row ? view(row) : undefined;
  }

  /** Granted ones whose time is up at `now` (still marked granted: nobody expired them yet). */
  async due(now: Date, limit = 100): Promise<GrantView[]> {
    const rows = await this.store.db
      .selectFrom('access_grants')
      .selectAll()
      .where('status', '=', 'granted')
      .where('expires_at', '<=', now.toISOString())
      .limit(limit)
      .execute();
    return rows.map(view);
  }

  /** Those of these grants that no longer let anyone in at `now` (expired, revoked, or past their time). */
  async ended(ids: string[], now: Date): Promise<GrantView[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('access_grants')
      .selectAll()
      .where('id', 'in', ids)
      .where((eb) => eb.or([eb('status', '!=', 'granted'), eb('expires_at', '<=', now.toISOString())]))
      .execute();
    return rows.map(view);
  }
}
