// One caller's session on one connection, whatever the protocol: the identity it runs under,
// the decision for every command (analyzer facts + the rules in force), and its audit trail.
// Protocol engines turn bytes into commands and ask this; it never sees a socket.
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/log.js';
import type { AuditActor } from '../audit/record.js';
import type { ConnectionView } from '../config/connection.js';
import { timeOrderedId } from '../crypto/ids.js';
import type { Identity } from '../identity/identity.js';
import { analyzeCommand } from '../policy/analyze.js';
import { type Decision, type DecisionContext, frozenContext, plainDecision } from '../policy/decide.js';
import { type Facts, unparseableSql } from '../policy/facts.js';
import type { RulesInForce } from '../policy/in-force.js';
import { MaskSet } from '../policy/mask/mask-set.js';
import { maskLiterals } from '../recording/params.js';
import type { Recorder } from '../recording/recorder.js';
import type { Approvals } from '../reviews/approvals.js';
import type { SessionEvent } from '../store/session-events.js';
import type { Sessions } from '../store/sessions.js';
import type { TraceContext } from './trace-context.js';

export interface SessionDeps {
  policy: RulesInForce;
  audit: AuditLog;
  sessions: Sessions;
  tokenizeKey: Buffer;
  /** The global default for commands no rule decides. */
  policyDefault: 'allow' | 'deny';
  /** Where statement events go; without it nothing is recorded (unit tests). */
  recorder?: Recorder;
  /** How many result rows each statement event keeps as a (masked) sample. */
  resultRows?: number;
  /** Holds commands a `review` rule catches until approvers decide; without it they are refused. */
  approvals?: Approvals;
  /** This gateway's id on the store, written on every session it carries. */
  gatewayId?: string;
}

/** A statement event as an engine reports it; the session adds who, where and the order. */
export type StatementRecord = Omit<SessionEvent, 'id' | 'session_id' | 'seq' | 'kind'>;

export interface Command {
  text: string;
  facts: Facts;
  decision: Decision;
}

/** Compiled masks of each decision, for the sessions sharing one set of deps (one gateway's). */
const MASK_SETS = new WeakMap<SessionDeps, WeakMap<Decision, MaskSet>>();

/** `timed_out`: its idle timeout or maximum duration; `orphaned`: its parent session ended. */
export type CloseReason = 'client' | 'target' | 'error' | 'killed' | 'shutdown' | 'timed_out' | 'orphaned';

/** The status a session row ends with, for each way it can end. */
const END_STATUS: Record<CloseReason, string> = {
  client: 'closed',
  target: 'closed',
  shutdown: 'closed',
  error: 'failed',
  killed: 'killed',
  timed_out: 'timed_out',
  orphaned: 'orphaned',
};

export class Session {
  readonly id = timeOrderedId();
  readonly startedAt = new Date();
  private readonly context: DecisionContext;
  private closed = false;
  /** Each decision's compiled masks, shared with every session of its gateway (see MASK_SETS). */
  private readonly maskSets: WeakMap<Decision, MaskSet>;
  /** Whether its `session.opened` event (and row) is queued: then close() records its end. */
  private announced = false;
  private commands = 0;
  private events = 0;
  /** Who every audit event of this session names; frozen, so the audit log encodes it once. */
  readonly actor: Readonly<AuditActor>;

  constructor(
    private readonly deps: SessionDeps,
    readonly identity: Identity,
    readonly connection: ConnectionView,
    readonly client: {
      address: string | null;
      application: string | null;
      /** The W3C trace the client's session is part of, when it sent a valid traceparent. */
      trace?: TraceContext | undefined;
    },
  ) {
    let sets = MASK_SETS.get(deps);
    if (!sets) {
      sets = new WeakMap();
      MASK_SETS.set(deps, sets);
    }
    this.maskSets = sets;
    // Frozen: the policy keys a session's decisions once, not for every statement.
    this.context = frozenContext({
      connection: {
        name: connection.name,
        tags: connection.tags,
        protocol: connection.protocol,
        default: connection.policy_default ?? deps.policyDefault,
      },
      caller: {
        subject: identity.subject,
        groups: identity.groups,
        kind: identity.kind,
        chain: identity.chain,
      },
    });
    this.actor = Object.freeze({
      subject: identity.subject,
      kind: identity.kind,
      chain: identity.chain,
      root: identity.rootSubject,
      token_id: identity.tokenId,
      ...(identity.parentTokenId ? { parent_token_id: identity.parentTokenId } : {}),
      ...(identity.parentSessionId ? { parent_session: identity.parentSessionId } : {}),
      address: client.address,
    });
  }

  /**
   * Writes the session row and its `session.opened` event, in one transaction; a store that
   * refuses them refuses the session (both stay queued: close() then records how it ended).
   */
  async open(): Promise<void> {
    if (this.deps.recorder && !this.deps.recorder.healthy) {
      throw new Error('the session recorder is over its queue bound: the store is not keeping up');
    }
    const row = this.deps.sessions.insertWrite({
      id: this.id,
      subject: this.identity.subject,
      kind: this.identity.kind,
      root_subject: this.identity.rootSubject,
      chain: this.identity.chain,
      token_id: this.identity.tokenId,
      parent_token_id: this.identity.parentTokenId,
      parent_session_id: this.identity.parentSessionId,
      connection: this.connection.name,
      protocol: this.connection.protocol,
      client_addr: this.client.address,
      status: 'active',
      started_at: this.startedAt.toISOString(),
      ended_at: null,
      end_reason: null,
      application: this.client.application,
      traceparent: this.client.trace?.received ?? null,
      gateway_id: this.deps.gatewayId ?? null,
    });
    this.announced = true;
    await this.deps.audit.append(
      {
        type: 'session.opened',
        actor: this.actor,
        target: `connection:${this.connection.name}`,
        outcome: 'success',
        payload: {
          session: this.id,
          protocol: this.connection.protocol,
          application: this.client.application,
          ...(this.identity.parentSessionId ? { parent_session: this.identity.parentSessionId } : {}),
          ...(this.client.trace ? { traceparent: this.client.trace.received } : {}),
        },
      },
      { alongside: row },
    );
  }

  /** Analyzes and decides one command, and records the decision in the audit chain (not its results). */
  decide(text: string): Command {
    const facts = analyzeCommand(this.connection.protocol, text);
    const decision = this.deps.policy.decide(this.context, facts);
    this.commands++;
    this.deps.audit.record({
      type:
        decision.action === 'allow'
          ? 'command.allowed'
          : `command.${decision.action === 'deny' ? 'denied' : 'held'}`,
      actor: this.actor,
      target: `connection:${this.connection.name}`,
      outcome: decision.action === 'allow' ? 'success' : 'denied',
      payload: {
        session: this.id,
        command: clip(this.auditText(text, decision, facts)),
        rules: decision.rules,
        decided_by: decision.decidedBy,
        ...(decision.message ? { message: decision.message } : {}),
      },
    });
    return { text, facts, decision };
  }

  /** Whether `c` goes to the approvals desk (a review decision, and a desk to ask). */
  holds(c: Command): boolean {
    return c.decision.action === 'review' && this.deps.approvals !== undefined;
  }

  /**
   * Asks the approvals desk about `c` (a held command waits here until its review is decided):
   * the command to run (approved, pre-approved, or the requester broke the glass: its decision now
   * allows it, masks and limits kept) or to refuse, with a message naming the review and who decided.
   */
  async hold(c: Command): Promise<Command> {
    const approvals = this.deps.approvals;
    if (!approvals) throw new Error('this session has no approvals desk to hold commands');
    const refuse = (message: string, action: 'deny' | 'review' = 'deny'): Command => ({
      ...c,
      decision: { ...c.decision, action, message },
    });
    const allow = (): Command => ({ ...c, decision: { ...c.decision, action: 'allow' } });
    // Approvers see the whole statement (masked values aside): one too long to show is not reviewed.
    const shown = this.auditText(c.text, c.decision, c.facts);
    if (shown.length > MAX_REVIEWED_TEXT) {
      return refuse(
        `this statement needs approval, but at ${shown.length} characters it is too long to review (at most ${MAX_REVIEWED_TEXT})`,
      );
    }
    try {
      const o = await approvals.decide({
        session: {
          id: this.id,
          actor: this.actor,
          identity: this.identity,
          connection: this.connection.name,
          alive: () => !this.closed,
        },
        command: shown,
        textHash: createHash('sha256').update(c.text).digest('hex'),
        fingerprint: c.facts.protocol_kind === 'sql' ? c.facts.fingerprint : null,
        decision: c.decision,
      });
      if (o.status === 'preapproved' || o.status === 'approved') return allow();
      const review = o.review;
      switch (o.status) {
        case 'pending':
          // Not held: refused, but recorded as awaiting review rather than denied.
          return refuse(
            `this statement needs approval (rule "${review.rule}"): review ${review.id} is waiting for ${review.approver_groups.join(' or ')}; run the same statement again once it is approved`,
            'review',
          );
        case 'denied':
          return refuse(
            `denied by ${review.decided_by ?? 'an approver'} in review ${review.id}${review.reason ? `: ${review.reason}` : ''}`,
          );
        case 'expired':
          return refuse(
            `not approved in time: review ${review.id} expired with ${review.approvals.length} of ${review.approvals_required} approvals`,
          );
        case 'cancelled':
          return refuse(`review ${review.id} was cancelled: the statement was withdrawn before a decision`);
      }
    } catch (err) {
      return refuse(
        `this statement needs approval, but no review could be opened: ${(err as Error).message}`,
      );
    }
  }

  /** Withdraws the commands this session holds for review (the client cancelled); false when none is held. */
  withdraw(): boolean {
    return this.deps.approvals?.cancelSession(this.id) ?? false;
  }

  /** A command refused by the gateway itself (nothing a rule could judge), audited like a rule's denial. */
  refuse(text: string, message: string): Command {
    const decision = plainDecision('deny', [], message);
    this.commands++;
    this.deps.audit.record({
      type: 'command.denied',
      actor: this.actor,
      target: `connection:${this.connection.name}`,
      outcome: 'denied',
      payload: { session: this.id, command: text, rules: [], decided_by: null, message },
    });
    const facts = unparseableSql(this.connection.protocol === 'mysql' ? 'mysql' : 'postgres', message);
    return { text, facts, decision };
  }

  /** A command a limit stopped while it ran (a duration limit): audited as the rule's doing. */
  limited(c: Command, message: string): void {
    const rule = c.decision.durationLimitRule;
    this.deps.audit.record({
      type: 'command.limited',
      actor: this.actor,
      target: `connection:${this.connection.name}`,
      outcome: 'denied',
      payload: {
        session: this.id,
        command: clip(this.auditText(c.text, c.decision, c.facts)),
        rules: c.decision.rules,
        decided_by: rule,
        message,
      },
    });
  }

  /**
   * The text as the audit chain keeps it: constants that stand for a masked column's value masked,
   * as the recording masks them. Decisions without such values (nearly all) cost one length check.
   */
  private auditText(text: string, decision: Decision, facts: Facts): string {
    if (decision.values.length === 0) return text;
    const set = this.masksFor(decision);
    return set ? maskLiterals(text, decision, set, facts) : text;
  }

  /** How many result rows a statement event keeps (0: none). */
  get sampleRows(): number {
    return this.deps.recorder ? (this.deps.resultRows ?? 100) : 0;
  }

  get recording(): boolean {
    return this.deps.recorder !== undefined;
  }

  /** Queues one statement event; values in it must already be masked. */
  record(e: StatementRecord): void {
    // Spelled out, not spread: one object shape for every event (a spread's copy misses the
    // property caches on every statement).
    this.deps.recorder?.record({
      id: timeOrderedId(),
      session_id: this.id,
      seq: ++this.events,
      kind: 'statement',
      time: e.time,
      duration_ms: e.duration_ms,
      text: e.text,
      params: e.params,
      decision: e.decision,
      rules: e.rules,
      rows: e.rows,
      bytes: e.bytes,
      error: e.error,
      sample: e.sample,
    });
  }

  /** The masks a decision carries, ready for result rows (null when nothing is masked). */
  masksFor(decision: Decision): MaskSet | null {
    if (decision.masks.length === 0) return null;
    // Decisions are shared per statement shape (Decider cache), by every session of a gateway:
    // each one's masks are compiled once for them all (a MaskSet keeps nothing of a session).
    let set = this.maskSets.get(decision);
    if (!set) {
      set = new MaskSet(decision.masks, this.deps.tokenizeKey);
      this.maskSets.set(decision, set);
    }
    return set;
  }

  async close(reason: CloseReason, detail?: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.announced) return;
    // Its held commands will never run: their reviews are cancelled.
    this.deps.approvals?.cancelSession(this.id);
    const endedAt = new Date();
    const status = END_STATUS[reason];
    const row = this.deps.sessions.endWrite(this.id, status, endedAt.toISOString(), detail ?? reason);
    // The row's end is written with the event, and like it kept until the store takes it. A client
    // that left is written with the next batch (often the next session's opening: one commit fewer
    // per session); an end Warden caused (a kill, a limit, an error), at once, for whoever acts on
    // it. The caller waits for it unless the store is refusing writes.
    await this.deps.audit
      .append(
        {
          type: 'session.closed',
          actor: this.actor,
          target: `connection:${this.connection.name}`,
          outcome: reason === 'error' ? 'failure' : 'info',
          payload: {
            session: this.id,
            reason,
            ...(detail ? { detail } : {}),
            commands: this.commands,
            duration_ms: endedAt.getTime() - this.startedAt.getTime(),
          },
        },
        { alongside: row, batched: reason === 'client' },
      )
      .catch(() => undefined);
  }
}

/** The longest statement (as approvers see it) that can be held for review. */
const MAX_REVIEWED_TEXT = 64 * 1024;

/** Audit payloads keep the first 4096 characters of a command. */
const clip = (text: string): string => (text.length > 4096 ? `${text.slice(0, 4096)}…` : text);
