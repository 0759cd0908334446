// Just-in-time access: a caller asks for time on a connection with `access: jit`, an approver
// grants it for a while (or denies it), and the gateway lets that person in only while the grant
// is in force. Every state change is written over the version it was decided from and audited.
import type { AuditLog } from '../audit/log.js';
import { SYSTEM_ACTOR } from '../audit/record.js';
import { formatDuration } from '../config/duration.js';
import { timeOrderedId } from '../crypto/ids.js';
import { actorOf, hasRole, type Identity, scopeCovers } from '../identity/identity.js';
import { ConflictError, type Connections, NotFoundError } from '../store/connections.js';
import type { Grants, GrantView } from '../store/grants.js';
import { DecisionForbiddenError, isRequester, refuseAgents } from './deciders.js';
import { Listeners } from './listeners.js';

export interface AccessGrantsOptions {
  /** Groups that may decide besides the approver role. */
  approvers: string[];
  /** Where a grant-end listener's failure is reported. */
  onError?: (err: Error) => void;
}

/** Whether a caller may connect: the grant in force, or why not. */
export type Admission = { grant: GrantView } | { refusal: string };

/** Told of every grant that stopped letting anyone in (expired or revoked), by this gateway. */
export type GrantEndListener = (grant: GrantView) => void;

export class AccessGrants {
  private readonly listeners: Listeners<GrantView>;

  constructor(
    private readonly grants: Grants,
    private readonly connections: Connections,
    private readonly audit: AuditLog,
    private readonly opts: AccessGrantsOptions,
  ) {
    this.listeners = new Listeners(opts.onError);
  }

  onEnd(listener: GrantEndListener): void {
    this.listeners.add(listener);
  }

  /** Approvers decide on every request: the approver role (admins too) or an `access.approvers` group. */
  isApprover(who: Identity): boolean {
    return hasRole(who, 'approver') || who.groups.some((g) => this.opts.approvers.includes(g));
  }

  /** Asks for `forMs` of access to `connection`, for the caller's root subject. */
  async request(
    who: Identity,
    r: { connection: string; forMs: number; reason: string },
    address?: string | null,
  ): Promise<GrantView> {
    const conn = await this.connections.get(r.connection);
    if (!conn) throw new NotFoundError(`connection "${r.connection}" does not exist`);
    if (conn.access !== 'jit') {
      throw new ConflictError(`connection "${r.connection}" is not just-in-time: it needs no access grant`);
    }
    if (!scopeCovers(who.scope, r.connection)) {
      throw new DecisionForbiddenError(`your credential does not cover connection "${r.connection}"`);
    }
    const [open] = await this.grants.list({
      connection: r.connection,
      subject: who.rootSubject,
      status: ['pending'],
      limit: 1,
    });
    if (open) {
      throw new ConflictError(
        `access request ${open.id} for "${r.connection}" is already waiting for an approver`,
      );
    }
    const now = new Date();
    const g: GrantView = {
      id: timeOrderedId(now.getTime()),
      connection: r.connection,
      subject: who.rootSubject,
      requested_by: who.subject,
      requester_chain: who.chain,
      reason: r.reason,
      duration_ms: r.forMs,
      status: 'pending',
      version: 1,
      created_at: now.toISOString(),
      decided_at: null,
      decided_by: null,
      decision_reason: null,
      starts_at: null,
      expires_at: null,
      revoked_at: null,
      revoked_by: null,
    };
    await this.grants.insert(g);
    await this.audit.append({
      type: 'access.requested',
      actor: actorOf(who, address),
      target: `access_grant:${g.id}`,
      outcome: 'info',
      payload: payload(g, { reason: g.reason, duration: formatDuration(g.duration_ms) }),
    });
    return g;
  }

  /** Grants a pending request from now on, for what was asked or less (`forMs`). */
  async grant(
    id: string,
    who: Identity,
    o: { reason?: string; forMs?: number },
    address?: string | null,
  ): Promise<GrantView> {
    return this.act(id, who, address, 'access.granted', ['pending'], (g, at) => {
      const ms = Math.min(o.forMs ?? g.duration_ms, g.duration_ms);
      return {
        ...g,
        status: 'granted',
        duration_ms: ms,
        decided_at: at.toISOString(),
        decided_by: who.subject,
        decision_reason: o.reason ?? null,
        starts_at: at.toISOString(),
        expires_at: new Date(at.getTime() + ms).toISOString(),
      };
    });
  }

  async deny(id: string, who: Identity, reason?: string, address?: string | null): Promise<GrantView> {
    return this.act(id, who, address, 'access.denied', ['pending'], (g, at) => ({
      ...g,
      status: 'denied',
      decided_at: at.toISOString(),
      decided_by: who.subject,
      decision_reason: reason ?? null,
    }));
  }

  /** Ends a grant in force at once (live sessions under it get the grace period). */
  async revoke(id: string, who: Identity, reason?: string, address?: string | null): Promise<GrantView> {
    const g = await this.act(id, who, address, 'access.revoked', ['granted'], (g, at) => ({
      ...g,
      status: 'revoked',
      revoked_at: at.toISOString(),
      revoked_by: who.subject,
      decision_reason: reason ?? g.decision_reason,
    }));
    this.ended(g);
    return g;
  }

  /** The requester withdraws a request nobody decided on yet. */
  async cancel(id: string, who: Identity, address?: string | null): Promise<GrantView> {
    return this.act(id, who, address, 'access.cancelled', ['pending'], (g, at) => ({
      ...g,
      status: 'cancelled',
      decided_at: at.toISOString(),
      decided_by: who.subject,
    }));
  }

  /** Marks a grant whose time is up as expired (once, whichever gateway gets there first). */
  async expire(id: string): Promise<GrantView | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const g = await this.grants.get(id);
      if (g?.status !== 'granted' || g.expires_at === null || Date.parse(g.expires_at) > Date.now()) return;
      const next: GrantView = { ...g, status: 'expired', version: g.version + 1 };
      if (!(await this.grants.update(next))) continue;
      await this.audit.append({
        type: 'access.expired',
        actor: SYSTEM_ACTOR,
        target: `access_grant:${id}`,
        outcome: 'info',
        payload: payload(next, { expires_at: next.expires_at }),
      });
      this.ended(next);
      return next;
    }
    return undefined;
  }

  /** Expires every grant whose time is up. */
  async expireDue(now = new Date()): Promise<void> {
    for (const g of await this.grants.due(now)) await this.expire(g.id);
  }

  /**
   * Whether `who` may connect to the just-in-time `connection` now: the grant in force for its
   * root subject, or a refusal telling how to get one (audited as `access.refused`).
   */
  async admit(who: Identity, connection: string, address?: string | null): Promise<Admission> {
    const grant = await this.grants.inForce(connection, who.rootSubject, new Date());
    if (grant) return { grant };
    const [pending] = await this.grants.list({
      connection,
      subject: who.rootSubject,
      status: ['pending'],
      limit: 1,
    });
    const refusal = pending
      ? `connection "${connection}" needs a just-in-time access grant: your request ${pending.id} is waiting for an approver ("warden access grant ${pending.id}")`
      : `connection "${connection}" needs a just-in-time access grant: run "warden access request ${connection} --for 30m --reason …" and ask an approver to grant it`;
    this.audit.record({
      type: 'access.refused',
      actor: actorOf(who, address),
      target: `connection:${connection}`,
      outcome: 'denied',
      payload: { connection, subject: who.rootSubject, pending: pending?.id ?? null },
    });
    return { refusal };
  }

  /**
   * Reads the grant, checks the caller may act on it and that it is in one of `from`, applies
   * `change` and writes it over the version it read (again from the top when someone got there first).
   */
  private async act(
    id: string,
    who: Identity,
    address: string | null | undefined,
    type: string,
    from: GrantView['status'][],
    change: (g: GrantView, at: Date) => GrantView,
  ): Promise<GrantView> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const g = await this.grants.get(id);
      if (!g) throw new NotFoundError(`access request ${id} does not exist`);
      this.mayAct(g, who, type);
      if (!from.includes(g.status)) throw new ConflictError(`access request ${id} is already ${g.status}`);
      if (g.status === 'granted' && g.expires_at !== null && Date.parse(g.expires_at) <= Date.now()) {
        throw new ConflictError(`access grant ${id} has expired`);
      }
      const next = { ...change(g, new Date()), version: g.version + 1 };
      if (!(await this.grants.update(next))) continue;
      await this.audit.append({
        type,
        actor: actorOf(who, address),
        target: `access_grant:${id}`,
        outcome: 'success',
        payload: payload(next, {
          ...(next.decision_reason ? { reason: next.decision_reason } : {}),
          ...(next.expires_at
            ? { expires_at: next.expires_at, duration: formatDuration(next.duration_ms) }
            : {}),
        }),
      });
      return next;
    }
    throw new ConflictError(`access request ${id} keeps changing; try again`);
  }

  /**
   * Approvers grant, deny and revoke, never on their own request (nor one an agent acting for
   * them made); the requester may cancel its request and give up (revoke) its own grant.
   */
  private mayAct(g: GrantView, who: Identity, type: string): void {
    const own = isRequester([g.subject, g.requested_by, ...g.requester_chain], who);
    if (type === 'access.cancelled') {
      if (!own) throw new DecisionForbiddenError(`access request ${g.id}: only its requester may cancel it`);
      return;
    }
    if (type === 'access.revoked' && own) return;
    if (own) {
      throw new DecisionForbiddenError(
        `access request ${g.id}: you cannot decide on access you (or an agent acting for you) asked for`,
      );
    }
    refuseAgents(who, `access request ${g.id}`);
    if (!this.isApprover(who)) {
      throw new DecisionForbiddenError(
        `access request ${g.id} needs an approver (the approver role${this.opts.approvers.length ? ` or a group of ${this.opts.approvers.join(', ')}` : ''})`,
      );
    }
  }

  private ended(g: GrantView): void {
    // A listener that throws (ending live sessions) must not turn a committed revocation into an error.
    this.listeners.emit(g);
  }
}

function payload(g: GrantView, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    grant: g.id,
    status: g.status,
    connection: g.connection,
    subject: g.subject,
    requested_by: g.requested_by,
    ...extra,
  };
}
