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
import type { Approval, Requester, Reviews, ReviewView } from '../store/reviews.js';

/** What happened to a held command; `cancelled`: its session ended while it waited. */
export interface Outcome {
  status: 'approved' | 'denied' | 'expired' | 'cancelled';
  review: ReviewView;
}

export interface HoldRequest {
  session: { id: string; actor: Readonly<AuditActor>; identity: Identity; connection: string };
  /** The command as the audit trail keeps it (values of masked columns masked). */
  command: string;
  decision: Decision;
}

/** A caller may not act on this review (not an approver, or it is their own command). */
export class ReviewForbiddenError extends Error {
  override name = 'ReviewForbiddenError';
}

export interface ApprovalsOptions {
  /** How often held reviews are looked up in the store for decisions taken by other gateways. */
  pollMs?: number;
  onError?: (err: Error) => void;
}

interface Waiter {
  resolve: (o: Outcome) => void;
  timer: NodeJS.Timeout;
  /** The review as it was created: what the outcome carries when the store cannot be read. */
  review: ReviewView;
}

/** Told of every review this gateway created or changed (the new state), for streams and notifications. */
export type ReviewListener = (review: ReviewView) => void;

export class Approvals {
  private readonly waiting = new Map<string, Waiter>();
  private readonly listeners = new Set<ReviewListener>();
  private readonly poller: NodeJS.Timeout;
  private polling = false;

  constructor(
    private readonly reviews: Reviews,
    private readonly audit: AuditLog,
    private readonly opts: ApprovalsOptions = {},
  ) {
    this.poller = setInterval(() => void this.poll(), opts.pollMs ?? 500);
    this.poller.unref();
  }

  /** Calls `listener` with each review this gateway creates or changes; returns the unsubscribe. */
  onChange(listener: ReviewListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(r: ReviewView): void {
    for (const l of this.listeners) {
      try {
        l(r);
      } catch (err) {
        this.opts.onError?.(err as Error);
      }
    }
  }

  /** How many commands this gateway holds now. */
  get held(): number {
    return this.waiting.size;
  }

  /**
   * Creates the review for a held command and resolves once it is decided, expires (the rule's
   * hold), or is cancelled. Rejects only when the review cannot be written (the command is then
   * refused: nobody could ever approve it).
   */
  async hold(req: HoldRequest): Promise<Outcome> {
    const d = req.decision;
    const spec = d.review;
    if (d.action !== 'review' || !spec || spec.hold === false) {
      throw new Error('hold() needs a review decision whose rule holds commands');
    }
    const holdMs = spec.hold;
    const now = new Date();
    const id = timeOrderedId(now.getTime());
    const identity = req.session.identity;
    const requester: Requester = {
      subject: identity.subject,
      kind: identity.kind,
      root: identity.rootSubject,
      chain: identity.chain,
      token_id: identity.tokenId,
    };
    const review: ReviewView = {
      id,
      status: 'pending',
      version: 1,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + holdMs).toISOString(),
      decided_at: null,
      session_id: req.session.id,
      connection: req.session.connection,
      command: req.command,
      rule: d.decidedBy ?? d.rules[0] ?? 'review',
      rules: d.rules,
      message: d.message ?? null,
      requester,
      approver_groups: spec.approvers,
      approvals_required: spec.approvals,
      approvals: [],
      decided_by: null,
      reason: null,
    };
    await this.reviews.insert(review);
    this.changed(review);
    const outcome = new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => void this.expire(id), holdMs);
      this.waiting.set(id, { resolve, timer, review });
    });
    await this.audit.append({
      type: 'review.requested',
      actor: req.session.actor,
      target: `connection:${review.connection}`,
      outcome: 'info',
      payload: this.payload(review, { hold_ms: holdMs }),
    });
    return outcome;
  }

  /** One approval; the review is approved once it has the number its rule asks for. */
  async approve(id: string, who: Identity, reason?: string, address?: string | null): Promise<ReviewView> {
    return this.act(id, who, address, (r) => {
      if (r.approvals.some((a) => a.root === who.rootSubject)) {
        throw new ConflictError(`review ${id}: ${who.rootSubject} has already approved it`);
      }
      const approval: Approval = {
        subject: who.subject,
        root: who.rootSubject,
        at: new Date().toISOString(),
        reason: reason ?? null,
      };
      const approvals = [...r.approvals, approval];
      const done = approvals.length >= r.approvals_required;
      return {
        ...r,
        approvals,
        status: done ? 'approved' : 'pending',
        decided_at: done ? approval.at : null,
        decided_by: done ? who.subject : null,
        reason: done ? (reason ?? null) : null,
      };
    });
  }

  /** A denial: one approver is enough to refuse the command. */
  async deny(id: string, who: Identity, reason?: string, address?: string | null): Promise<ReviewView> {
    return this.act(id, who, address, (r) => ({
      ...r,
      status: 'denied',
      decided_at: new Date().toISOString(),
      decided_by: who.subject,
      reason: reason ?? null,
    }));
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
      void this.settleLocally(id, 'cancelled');
    }
    return any;
  }

  stop(): void {
    clearInterval(this.poller);
    for (const id of [...this.waiting.keys()]) void this.settleLocally(id, 'cancelled');
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
      this.mayAct(r, who);
      if (r.status !== 'pending') throw new ConflictError(`review ${id} is already ${r.status}`);
      if (Date.parse(r.expires_at) <= Date.now()) throw new ConflictError(`review ${id} has expired`);
      const next = { ...change(r), version: r.version + 1 };
      if (!(await this.reviews.update(next))) continue;
      const approved = next.status === 'approved';
      const type =
        next.status === 'denied' ? 'review.denied' : approved ? 'review.approved' : 'review.approval';
      await this.audit.append({
        type,
        actor: actorOf(who, address),
        target: `review:${id}`,
        outcome: 'success',
        payload: this.payload(next, {
          approvals: next.approvals.length,
          ...(next.reason ? { reason: next.reason } : {}),
        }),
      });
      this.changed(next);
      if (next.status !== 'pending') this.release(next);
      return next;
    }
    throw new ConflictError(`review ${id} keeps changing; try again`);
  }

  /** Approvers are members of one of the rule's groups, and never the requester or anyone in its chain. */
  private mayAct(r: ReviewView, who: Identity): void {
    const mine = new Set([r.requester.subject, r.requester.root, ...r.requester.chain]);
    if (mine.has(who.subject) || mine.has(who.rootSubject)) {
      throw new ReviewForbiddenError(
        `review ${r.id}: you cannot decide on a command you (or an agent acting for you) ran`,
      );
    }
    if (!who.groups.some((g) => r.approver_groups.includes(g))) {
      throw new ReviewForbiddenError(
        `review ${r.id} needs an approver from ${r.approver_groups.join(', ')}; you are in ${who.groups.join(', ') || 'no group'}`,
      );
    }
  }

  /** The hold is over: expired in the store (unless decided meanwhile), then released. */
  private async expire(id: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.reviews.get(id).catch(() => undefined);
      if (!r) return this.settleLocally(id, 'expired');
      if (r.status !== 'pending') return this.release(r);
      const next: ReviewView = {
        ...r,
        status: 'expired',
        version: r.version + 1,
        decided_at: new Date().toISOString(),
      };
      if (!(await this.reviews.update(next).catch(() => false))) continue;
      this.audit.record({
        type: 'review.expired',
        actor: SYSTEM_ACTOR,
        target: `review:${id}`,
        outcome: 'denied',
        payload: this.payload(next, {}),
      });
      this.changed(next);
      return this.release(next);
    }
    return this.settleLocally(id, 'expired');
  }

  /** Ends the wait of a review without a decision in the store that says so (store unreachable, session gone). */
  private async settleLocally(id: string, status: 'expired' | 'cancelled'): Promise<void> {
    const w = this.waiting.get(id);
    if (!w) return;
    const r = await this.reviews.get(id).catch(() => undefined);
    if (r && r.status !== 'pending') return this.release(r);
    const next: ReviewView | undefined = r && {
      ...r,
      status,
      version: r.version + 1,
      decided_at: new Date().toISOString(),
    };
    if (next && (await this.reviews.update(next).catch(() => false))) {
      this.audit.record({
        type: `review.${status}`,
        actor: SYSTEM_ACTOR,
        target: `review:${id}`,
        outcome: 'info',
        payload: this.payload(next, {}),
      });
      this.changed(next);
      return this.release(next);
    }
    // The store could not say: the command is not run (fail closed).
    this.finish(id, { status, review: { ...(next ?? w.review), status } });
  }

  /** Resolves the waiter of a decided review, if this gateway holds its command. */
  private release(r: ReviewView): void {
    if (r.status === 'pending') return;
    this.finish(r.id, { status: r.status, review: r });
  }

  private finish(reviewId: string, o: Outcome): void {
    const w = this.waiting.get(reviewId);
    if (!w) return;
    this.waiting.delete(reviewId);
    clearTimeout(w.timer);
    w.resolve(o);
  }

  /** Decisions other gateways wrote for the commands held here. */
  private async poll(): Promise<void> {
    if (this.waiting.size === 0 || this.polling) return;
    this.polling = true;
    try {
      for (const r of await this.reviews.decided([...this.waiting.keys()])) this.release(r);
    } catch (err) {
      this.opts.onError?.(err as Error);
    } finally {
      this.polling = false;
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
