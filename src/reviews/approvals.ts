// Holding a command until people approve it. A `review` decision becomes a review row; the engine
// that holds the command waits on `hold()`'s outcome while its client simply waits. Approvers act
// through the API on any gateway sharing the store: the deciding gateway settles its own waiters at
// once, and every gateway polls the store for the reviews it holds, so a decision taken elsewhere
// releases the command within one poll interval. Every state change is in the audit chain.
import type { AuditLog } from '../audit/log.js';
import { type AuditActor, SYSTEM_ACTOR } from '../audit/record.js';
import { timeOrderedId } from '../crypto/ids.js';
import { actorOf, type Identity } from '../identity/identity.js';
import type { Decision } from '../policy/decide.js';
import { ConflictError, NotFoundError } from '../store/connections.js';
import type { PreapprovalView } from '../store/preapprovals.js';
import type { Approval, Reviews, ReviewView } from '../store/reviews.js';
import { DecisionForbiddenError, isRequester, refuseAgents } from './deciders.js';
import { Listeners } from './listeners.js';
import type { PreapprovalDesk } from './preapproval-desk.js';

/** The rule a review (and a pre-approval given from it) stands for: the one that decided to hold. */
export function reviewRule(d: Decision): string {
  return d.decidedBy ?? d.rules[0] ?? 'review';
}

/**
 * What became of a command a review rule caught. `approved`: it runs (approvers agreed, an open
 * approval of the same statement was reused, or the requester broke the glass); `preapproved`: a
 * pre-approval covers it; `pending`: not held (`hold: false`), its review waits for approvers;
 * the rest refuse it (`cancelled`: its session withdrew it or ended while it waited).
 */
export type Outcome =
  | { status: 'approved' | 'denied' | 'expired' | 'cancelled' | 'pending'; review: ReviewView }
  | { status: 'preapproved'; preapproval: PreapprovalView };

export interface HoldRequest {
  session: {
    id: string;
    actor: Readonly<AuditActor>;
    identity: Identity;
    connection: string;
    /** False once the session ended: a review opened meanwhile is cancelled at once. */
    alive: () => boolean;
  };
  /** The command as the audit trail keeps it (values of masked columns masked). */
  command: string;
  /** SHA-256 (hex) of the raw text: what an approval of a statement not held lets run again. */
  textHash: string;
  /** The statement's shape (constants replaced), for pre-approvals; null when it did not parse. */
  fingerprint: string | null;
  decision: Decision;
}

export interface ApprovalsOptions {
  /** How often held reviews are looked up in the store for decisions taken by other gateways. */
  pollMs?: number;
  onError?: (err: Error) => void;
  /** A requester broke the glass: said loudly (log, metrics) besides the audit record. */
  onAlert?: (review: ReviewView) => void;
}

interface Waiter {
  resolve: (o: Extract<Outcome, { review: ReviewView }>) => void;
  timer: NodeJS.Timeout;
  /** The review as it was created: what the outcome carries when the store cannot be read. */
  review: ReviewView;
}

/** Told of every review this gateway created or changed (the new state), for streams and notifications. */
export type ReviewListener = (review: ReviewView) => void;

/** How often a gateway looks for overdue pending reviews, and how late they must be. */
const SWEEP_MS = 10_000;
const SWEEP_GRACE_MS = 5_000;

export class Approvals {
  private readonly waiting = new Map<string, Waiter>();
  private readonly listeners: Listeners<ReviewView>;
  private readonly poller: NodeJS.Timeout;
  private polling = false;
  private nextSweep = 0;

  constructor(
    private readonly reviews: Reviews,
    private readonly preapprovals: PreapprovalDesk,
    private readonly audit: AuditLog,
    private readonly opts: ApprovalsOptions = {},
  ) {
    this.listeners = new Listeners(opts.onError);
    this.poller = setInterval(() => void this.poll(), opts.pollMs ?? 500);
    this.poller.unref();
  }

  /** Calls `listener` with each review this gateway creates or changes; returns the unsubscribe. */
  onChange(listener: ReviewListener): () => void {
    return this.listeners.add(listener);
  }

  private changed(r: ReviewView): void {
    this.listeners.emit(r);
  }

  /**
   * Decides a command a review rule caught: a pre-approval that covers it lets it run; else a
   * held command waits here until its review is decided, expires (the rule's hold) or is
   * cancelled; a command that is not held reuses the requester's open review of the same
   * statement (approved: it runs; pending: still refused) or opens one. Rejects only when the
   * store cannot be read or written (the command is then refused).
   */
  async decide(req: HoldRequest): Promise<Outcome> {
    const d = req.decision;
    const spec = d.review;
    if (d.action !== 'review' || !spec) throw new Error('decide() needs a review decision');
    const now = new Date();
    const identity = req.session.identity;
    const pre = await this.preapprovals.covering(req, now);
    if (pre) return { status: 'preapproved', preapproval: pre };
    if (spec.hold === false) {
      const open = await this.reviews.reusable(
        { subject: identity.subject, root: identity.rootSubject },
        req.session.connection,
        req.textHash,
        now,
      );
      if (open && open.status !== 'pending') {
        this.audit.record({
          type: 'command.approved',
          actor: req.session.actor,
          target: `connection:${req.session.connection}`,
          outcome: 'success',
          payload: {
            session: req.session.id,
            command: req.command,
            review: open.id,
            reuse_until: open.reuse_until,
          },
        });
        return { status: 'approved', review: open };
      }
      if (open) return { status: 'pending', review: open };
    }
    const held = spec.hold !== false;
    const waitMs = spec.hold === false ? spec.ttl : spec.hold;
    const review: ReviewView = {
      id: timeOrderedId(now.getTime()),
      status: 'pending',
      version: 1,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + waitMs).toISOString(),
      decided_at: null,
      session_id: req.session.id,
      connection: req.session.connection,
      command: req.command,
      rule: reviewRule(d),
      rules: d.rules,
      message: d.message ?? null,
      requester: {
        subject: identity.subject,
        kind: identity.kind,
        root: identity.rootSubject,
        chain: identity.chain,
        token_id: identity.tokenId,
      },
      approver_groups: spec.approvers,
      approvals_required: spec.approvals,
      approvals: [],
      decided_by: null,
      reason: null,
      fingerprint: req.fingerprint,
      break_glass: false,
      reuse_until: null,
      options: { held, reuse_ms: held ? null : spec.ttl, break_glass: spec.break_glass },
      text_hash: req.textHash,
    };
    await this.reviews.insert(review);
    this.changed(review);
    const outcome = held
      ? new Promise<Extract<Outcome, { review: ReviewView }>>((resolve) => {
          const timer = setTimeout(() => void this.settle(review.id, 'expired'), waitMs);
          this.waiting.set(review.id, { resolve, timer, review });
        })
      : Promise.resolve({ status: 'pending' as const, review });
    try {
      await this.audit.append({
        type: 'review.requested',
        actor: req.session.actor,
        target: `connection:${review.connection}`,
        outcome: 'info',
        payload: this.payload(review, { held, wait_ms: waitMs }),
      });
    } catch (err) {
      // Unaudited, it must not run: the command is refused, and its wait ends with it.
      await this.settle(review.id, 'cancelled');
      throw err;
    }
    // The session may have ended while the review was written: nobody waits for it any more.
    if (!req.session.alive()) void this.settle(review.id, 'cancelled');
    return outcome;
  }

  /**
   * One approval; the review is approved once it has the number its rule asks for. A review the
   * requester broke the glass on is approved (ratified) after the fact the same way.
   */
  async approve(id: string, who: Identity, reason?: string, address?: string | null): Promise<ReviewView> {
    return this.act(id, who, address, (r) => {
      if (r.approvals.some((a) => a.root === who.rootSubject)) {
        throw new ConflictError(`review ${id}: ${who.rootSubject} has already approved it`);
      }
      const at = new Date();
      const approval: Approval = {
        subject: who.subject,
        root: who.rootSubject,
        at: at.toISOString(),
        reason: reason ?? null,
      };
      const approvals = [...r.approvals, approval];
      if (approvals.length < r.approvals_required) return { ...r, approvals };
      const reuse = r.status === 'pending' && r.options.reuse_ms !== null;
      return {
        ...r,
        approvals,
        status: 'approved',
        decided_at: approval.at,
        decided_by: who.subject,
        reason: reason ?? null,
        reuse_until: reuse ? new Date(at.getTime() + (r.options.reuse_ms ?? 0)).toISOString() : r.reuse_until,
      };
    });
  }

  /** A denial: one approver is enough to refuse the command (after the fact: to flag a broken glass). */
  async deny(id: string, who: Identity, reason?: string, address?: string | null): Promise<ReviewView> {
    return this.act(id, who, address, (r) => ({
      ...r,
      status: 'denied',
      decided_at: new Date().toISOString(),
      decided_by: who.subject,
      reason: reason ?? null,
      reuse_until: null,
    }));
  }

  /**
   * Break-glass: the requester runs their own pending command at once, with a reason. The review
   * stays open for approvers to approve or deny after the fact, and the audit trail gets an alert.
   */
  async breakGlass(id: string, who: Identity, reason: string, address?: string | null): Promise<ReviewView> {
    if (reason.trim() === '')
      throw new DecisionForbiddenError(`review ${id}: breaking the glass needs a reason`);
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.reviews.get(id);
      if (!r || !isRequester(requesterOf(r), who)) throw new NotFoundError(`review ${id} does not exist`);
      if (!r.options.break_glass) {
        throw new DecisionForbiddenError(`review ${id}: rule "${r.rule}" does not allow breaking the glass`);
      }
      if (r.status !== 'pending') throw new ConflictError(`review ${id} is already ${r.status}`);
      const at = new Date();
      const next: ReviewView = {
        ...r,
        status: 'break-glass',
        version: r.version + 1,
        break_glass: true,
        decided_at: at.toISOString(),
        decided_by: who.subject,
        reason,
        reuse_until:
          r.options.reuse_ms === null ? null : new Date(at.getTime() + r.options.reuse_ms).toISOString(),
      };
      if (!(await this.reviews.update(next))) continue;
      await this.audit.append({
        type: 'review.break_glass',
        actor: actorOf(who, address),
        target: `review:${id}`,
        outcome: 'success',
        payload: this.payload(next, {
          alert: true,
          reason,
          needs: 'an approver to approve or deny it after the fact',
        }),
      });
      this.opts.onAlert?.(next);
      this.changed(next);
      this.release(next);
      return next;
    }
    throw new ConflictError(`review ${id} keeps changing; try again`);
  }

  /**
   * Cancels the reviews of the commands a session holds (its client cancelled them or left, the
   * session was killed): nobody waits for them any more. False when it held none.
   */
  cancelSession(sessionId: string): boolean {
    let any = false;
    for (const [id, w] of this.waiting) {
      if (w.review.session_id !== sessionId) continue;
      any = true;
      void this.settle(id, 'cancelled');
    }
    return any;
  }

  /** Stops polling and cancels the reviews of the commands still held here (their sessions end). */
  async stop(): Promise<void> {
    clearInterval(this.poller);
    await Promise.all([...this.waiting.keys()].map((id) => this.settle(id, 'cancelled')));
  }

  /**
   * Reads the review, checks the caller may act on it, applies `change` and writes it over the
   * version it read (again from the top when another approver got there first).
   */
  private async act(
    id: string,
    who: Identity,
    address: string | null | undefined,
    change: (r: ReviewView) => ReviewView,
  ): Promise<ReviewView> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.reviews.get(id);
      if (!r) throw new NotFoundError(`review ${id} does not exist`);
      mayDecide(r, who);
      const afterTheFact = r.status === 'break-glass';
      if (r.status !== 'pending' && !afterTheFact)
        throw new ConflictError(`review ${id} is already ${r.status}`);
      if (!afterTheFact && Date.parse(r.expires_at) <= Date.now()) {
        throw new ConflictError(`review ${id} has expired`);
      }
      const next = { ...change(r), version: r.version + 1 };
      if (!(await this.reviews.update(next))) continue;
      const type =
        next.status === 'denied'
          ? 'review.denied'
          : next.status === 'approved'
            ? 'review.approved'
            : 'review.approval';
      await this.audit.append({
        type,
        actor: actorOf(who, address),
        target: `review:${id}`,
        outcome: 'success',
        payload: this.payload(next, {
          approvals: next.approvals.length,
          ...(afterTheFact ? { after_the_fact: true } : {}),
          ...(next.reason ? { reason: next.reason } : {}),
        }),
      });
      this.changed(next);
      if (!afterTheFact && next.status !== 'pending') this.release(next);
      return next;
    }
    throw new ConflictError(`review ${id} keeps changing; try again`);
  }

  /**
   * Ends the wait of a held review with `status` (its hold ran out; its session withdrew it or
   * ended) unless a decision got there first. When the store cannot say, the command is not run.
   */
  private async settle(id: string, status: 'expired' | 'cancelled'): Promise<void> {
    const w = this.waiting.get(id);
    if (!w) return;
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.reviews.get(id).catch(() => undefined);
      if (!r) break;
      if (r.status !== 'pending') return this.release(r);
      const next: ReviewView = { ...r, status, version: r.version + 1, decided_at: new Date().toISOString() };
      if (!(await this.reviews.update(next).catch(() => false))) continue;
      this.audit.record({
        type: `review.${status}`,
        actor: SYSTEM_ACTOR,
        target: `review:${id}`,
        outcome: status === 'expired' ? 'denied' : 'info',
        payload: this.payload(next, {}),
      });
      this.changed(next);
      return this.release(next);
    }
    this.finish(id, { status, review: { ...w.review, status } });
  }

  /** Resolves the waiter of a decided review, if this gateway holds its command. */
  private release(r: ReviewView): void {
    if (r.status === 'pending') return;
    // A broken glass runs the command as an approval would.
    this.finish(r.id, { status: r.status === 'break-glass' ? 'approved' : r.status, review: r });
  }

  private finish(reviewId: string, o: Extract<Outcome, { review: ReviewView }>): void {
    const w = this.waiting.get(reviewId);
    if (!w) return;
    this.waiting.delete(reviewId);
    clearTimeout(w.timer);
    w.resolve(o);
  }

  /** Decisions other gateways wrote for the commands held here. */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const r of await this.reviews.decided([...this.waiting.keys()])) this.release(r);
      if (Date.now() >= this.nextSweep) {
        this.nextSweep = Date.now() + SWEEP_MS;
        await this.expireOverdue();
      }
    } catch (err) {
      this.opts.onError?.(err as Error);
    } finally {
      this.polling = false;
    }
  }

  /**
   * Expires pending reviews whose time ran out with nobody holding them: not held (`hold: false`),
   * or held by a gateway that is gone. A grace lets the holding gateway's own timer go first.
   */
  private async expireOverdue(): Promise<void> {
    for (const r of await this.reviews.overdue(new Date(Date.now() - SWEEP_GRACE_MS))) {
      if (this.waiting.has(r.id)) continue;
      const next: ReviewView = {
        ...r,
        status: 'expired',
        version: r.version + 1,
        decided_at: new Date().toISOString(),
      };
      if (!(await this.reviews.update(next))) continue;
      this.audit.record({
        type: 'review.expired',
        actor: SYSTEM_ACTOR,
        target: `review:${r.id}`,
        outcome: 'denied',
        payload: this.payload(next, {}),
      });
      this.changed(next);
    }
  }

  private payload(r: ReviewView, extra: Record<string, unknown>): Record<string, unknown> {
    return {
      review: r.id,
      status: r.status,
      session: r.session_id,
      command: r.command,
      rule: r.rule,
      requester: r.requester.subject,
      root: r.requester.root,
      ...extra,
    };
  }
}

/**
 * Throws DecisionForbiddenError unless `who` may decide on `r`: a member of one of its rule's
 * approver groups, and never the requester or anyone in its chain.
 */
export function mayDecide(r: ReviewView, who: Identity): void {
  if (isRequester(requesterOf(r), who)) {
    throw new DecisionForbiddenError(
      `review ${r.id}: you cannot decide on a command you (or an agent acting for you) ran`,
    );
  }
  refuseAgents(who, `review ${r.id}`);
  if (!who.groups.some((g) => r.approver_groups.includes(g))) {
    throw new DecisionForbiddenError(
      `review ${r.id} needs an approver from ${r.approver_groups.join(', ')}; you are in ${who.groups.join(', ') || 'no group'}`,
    );
  }
}

const requesterOf = (r: ReviewView): string[] => [
  r.requester.subject,
  r.requester.root,
  ...r.requester.chain,
];
