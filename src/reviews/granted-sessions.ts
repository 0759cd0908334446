// The live sessions this gateway carries under just-in-time grants. When a grant runs out (a timer
// here, and a poll that also expires grants in the store) or is revoked (here, or through another
// gateway: the poll sees it), its sessions are ended after the grace period with the protocol's
// own "terminated" error, and each termination is audited.
import type { AuditLog } from '../audit/log.js';
import { SYSTEM_ACTOR } from '../audit/record.js';
import type { LiveSessions } from '../gateway/live-sessions.js';
import { PeriodicCheck } from '../gateway/periodic-check.js';
import type { Grants, GrantView } from '../store/grants.js';
import type { AccessGrants } from './access-grants.js';

export interface GrantedSessionsOptions {
  graceMs: number;
  pollMs: number;
  onError: (err: Error) => void;
}

/** setTimeout's longest delay; a later expiry is left to the poll. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class GrantedSessions {
  /** Session id → the grant it runs under. */
  private readonly sessions = new Map<string, GrantView>();
  /** Grant id → the timer that ends it on time. */
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  /** Session id → the grace timer of a session being ended. */
  private readonly ending = new Map<string, NodeJS.Timeout>();
  private poller: PeriodicCheck | undefined;

  constructor(
    private readonly desk: AccessGrants,
    private readonly grants: Grants,
    private readonly live: LiveSessions,
    private readonly audit: AuditLog,
    private readonly opts: GrantedSessionsOptions,
  ) {
    desk.onEnd((g) => this.end(g));
  }

  start(): void {
    this.poller = new PeriodicCheck(() => this.poll(), this.opts.pollMs, this.opts.onError);
  }

  /** A session opened under `grant` (it must already be registered with LiveSessions). */
  hold(sessionId: string, grant: GrantView): void {
    this.sessions.set(sessionId, grant);
    if (this.expiries.has(grant.id) || grant.expires_at === null) return;
    const left = Math.max(0, Date.parse(grant.expires_at) - Date.now());
    if (left > MAX_TIMER_MS) return;
    const timer = setTimeout(() => {
      this.expiries.delete(grant.id);
      this.end({ ...grant, status: 'expired' });
      this.desk.expire(grant.id).catch(this.opts.onError);
    }, left);
    timer.unref();
    this.expiries.set(grant.id, timer);
  }

  /** The session ended (for whatever reason). */
  release(sessionId: string): void {
    const grant = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    clearTimeout(this.ending.get(sessionId));
    this.ending.delete(sessionId);
    if (grant && ![...this.sessions.values()].some((g) => g.id === grant.id)) {
      clearTimeout(this.expiries.get(grant.id));
      this.expiries.delete(grant.id);
    }
  }

  /** Ends, after the grace period, every session here under `grant`, which no longer lets anyone in. */
  end(grant: GrantView): void {
    const message =
      grant.status === 'revoked'
        ? `access grant ${grant.id} to connection "${grant.connection}" was revoked by ${grant.revoked_by ?? 'an approver'}${grant.decision_reason ? `: ${grant.decision_reason}` : ''}`
        : `access grant ${grant.id} to connection "${grant.connection}" expired; ask for more time with "warden access request ${grant.connection}"`;
    for (const [sessionId, g] of this.sessions) {
      if (g.id !== grant.id || this.ending.has(sessionId)) continue;
      const timer = setTimeout(() => this.terminate(sessionId, grant, message), this.opts.graceMs);
      timer.unref();
      this.ending.set(sessionId, timer);
    }
  }

  stop(): void {
    this.poller?.stop();
    for (const t of [...this.expiries.values(), ...this.ending.values()]) clearTimeout(t);
    this.expiries.clear();
    this.ending.clear();
  }

  private terminate(sessionId: string, grant: GrantView, message: string): void {
    this.ending.delete(sessionId);
    if (!this.live.kill(sessionId, message)) return;
    this.audit.record({
      type: 'access.session_terminated',
      actor: SYSTEM_ACTOR,
      target: `session:${sessionId}`,
      outcome: 'success',
      payload: {
        session: sessionId,
        grant: grant.id,
        connection: grant.connection,
        subject: grant.subject,
        cause: grant.status === 'revoked' ? 'revoked' : 'expired',
        grace_ms: this.opts.graceMs,
        message,
      },
    });
  }

  /** Expires grants whose time is up, and ends the sessions here whose grant ended on another gateway. */
  private async poll(): Promise<void> {
    await this.desk.expireDue();
    const ids = [...new Set([...this.sessions.values()].map((g) => g.id))];
    for (const g of await this.grants.ended(ids, new Date())) {
      this.end(g.status === 'granted' ? { ...g, status: 'expired' } : g);
    }
  }
}
