// Pre-approvals: an approver of a review allows its statement shape on its connection ahead of
// time, for the requester (and agents acting for them) or a group, so known-safe statements stop
// asking. The approvals desk asks here before it opens a review; every use is audited.
import type { AuditLog } from '../audit/log.js';
import { timeOrderedId } from '../crypto/ids.js';
import { actorOf, type Identity } from '../identity/identity.js';
import { ConflictError, NotFoundError } from '../store/connections.js';
import type { Preapprovals, PreapprovalView } from '../store/preapprovals.js';
import type { Reviews } from '../store/reviews.js';
import { type HoldRequest, mayDecide, reviewRule } from './approvals.js';
import { DecisionForbiddenError } from './deciders.js';

export class PreapprovalDesk {
  constructor(
    private readonly preapprovals: Preapprovals,
    private readonly reviews: Reviews,
    private readonly audit: AuditLog,
  ) {}

  /** The pre-approval in force that covers this command, audited as its use; undefined when none does. */
  async covering(req: HoldRequest, now: Date): Promise<PreapprovalView | undefined> {
    if (req.fingerprint === null) return undefined;
    const identity = req.session.identity;
    const pre = await this.preapprovals.find(
      req.session.connection,
      req.fingerprint,
      reviewRule(req.decision),
      { subject: identity.subject, root: identity.rootSubject, groups: identity.groups },
      now,
    );
    if (!pre) return undefined;
    this.audit.record({
      type: 'command.preapproved',
      actor: req.session.actor,
      target: `connection:${req.session.connection}`,
      outcome: 'success',
      payload: {
        session: req.session.id,
        command: req.command,
        preapproval: pre.id,
        rule: req.decision.decidedBy,
      },
    });
    return pre;
  }

  /**
   * Pre-approves the statement shape of review `reviewId` under its rule on its connection, for the
   * review's requester (and agents acting for them) or for `group`, for `forMs`. Only one who
   * approved that review may, once it is approved, for a rule that needs a single approval, and
   * not for a group they are in.
   */
  async create(
    reviewId: string,
    who: Identity,
    o: { forMs: number; group?: string; reason?: string; address?: string | null },
  ): Promise<PreapprovalView> {
    const r = await this.reviews.get(reviewId);
    if (!r) throw new NotFoundError(`review ${reviewId} does not exist`);
    mayDecide(r, who);
    // Only what went through its rule's own review, by one who approved it; never a shortcut
    // around a rule that wants several people, nor a pass for the one who gives it.
    if (r.status !== 'approved' || !r.approvals.some((a) => a.root === who.rootSubject)) {
      throw new DecisionForbiddenError(
        `review ${reviewId}: only one of its approvers may pre-approve it, once it is approved`,
      );
    }
    if (r.approvals_required > 1) {
      throw new DecisionForbiddenError(
        `review ${reviewId}: rule "${r.rule}" needs ${r.approvals_required} approvals each time; it cannot be pre-approved`,
      );
    }
    if (o.group !== undefined && who.groups.includes(o.group)) {
      throw new DecisionForbiddenError(
        `review ${reviewId}: you cannot pre-approve for a group you are in (${o.group})`,
      );
    }
    if (r.fingerprint === null) {
      throw new ConflictError(
        `review ${reviewId}: its statement did not parse, so it has no shape to pre-approve`,
      );
    }
    const now = new Date();
    const p: PreapprovalView = {
      id: timeOrderedId(now.getTime()),
      connection: r.connection,
      fingerprint: r.fingerprint,
      rule: r.rule,
      subject: o.group ? null : r.requester.root,
      group: o.group ?? null,
      review_id: r.id,
      created_by: who.subject,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + o.forMs).toISOString(),
      reason: o.reason ?? null,
      revoked_at: null,
    };
    await this.preapprovals.insert(p);
    await this.audit.append({
      type: 'preapproval.created',
      actor: actorOf(who, o.address),
      target: `connection:${p.connection}`,
      outcome: 'success',
      payload: { ...p },
    });
    return p;
  }

  async revoke(id: string, who: Identity, address?: string | null): Promise<PreapprovalView> {
    const p = await this.preapprovals.revoke(id, new Date());
    if (!p) throw new NotFoundError(`pre-approval ${id} does not exist`);
    await this.audit.append({
      type: 'preapproval.revoked',
      actor: actorOf(who, address),
      target: `connection:${p.connection}`,
      outcome: 'success',
      payload: { id: p.id, fingerprint: p.fingerprint, subject: p.subject, group: p.group },
    });
    return p;
  }
}
