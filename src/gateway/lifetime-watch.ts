// Ends live sessions that outlive their limits (idle timeout, maximum duration) or their parent
// session (`end_with_parent`), and flags the orphans allowed to run on. Protocol engines only
// report activity; this decides, on an interval, with one store query for all parents.

import type { AuditLog } from '../audit/log.js';
import { SYSTEM_ACTOR } from '../audit/record.js';
import type { ConnectionView } from '../config/connection.js';
import { formatDuration, limitMs } from '../config/duration.js';
import type { Sessions } from '../store/sessions.js';
import type { LiveSessions } from './live-sessions.js';
import { PeriodicCheck } from './periodic-check.js';

/** One session's limits, resolved from the global `sessions` config and its connection's overrides. */
export interface SessionLimits {
  /** 0: no idle timeout. */
  idleMs: number;
  /** 0: no maximum duration. */
  maxMs: number;
  endWithParent: boolean;
  /** The config key the idle timeout comes from, named in the message the client gets. */
  idleKey: string;
}

/** What a live session's limits and lineage are checked against. */
export interface Lifetime {
  /** Epoch ms. */
  startedAt: number;
  parentSessionId: string | null;
  limits: SessionLimits;
  /**
   * Epoch ms of the client's last message; null while the session is busy (a statement running,
   * held for review, or its result still being delivered), which is never idle.
   */
  idleSince(): number | null;
}

export interface GlobalSessionLimits {
  idle_timeout: number;
  max_duration: number;
  end_with_parent: boolean;
}

export function sessionLimits(
  global: GlobalSessionLimits,
  connection: Pick<ConnectionView, 'name' | 'sessions'>,
): SessionLimits {
  const own = connection.sessions ?? {};
  return {
    idleMs: own.idle_timeout !== undefined ? limitMs(own.idle_timeout) : global.idle_timeout,
    maxMs: own.max_duration !== undefined ? limitMs(own.max_duration) : global.max_duration,
    endWithParent: own.end_with_parent ?? global.end_with_parent,
    idleKey:
      own.idle_timeout !== undefined
        ? `sessions.idle_timeout of connection ${connection.name}`
        : 'sessions.idle_timeout',
  };
}

function orphanReason(parent: string, parentStatus: string | null): string {
  return `its parent session ${parent} ${parentStatus === null ? 'does not exist' : 'ended'}`;
}

/**
 * Why a new session may not open under `parentSessionId` (undefined when it may): its parent
 * already ended and the session would be ended on the next check anyway. Asked at login, so
 * the client hears it then.
 */
export async function orphanAtBirth(
  sessions: Sessions,
  parentSessionId: string | null,
  limits: SessionLimits,
): Promise<string | undefined> {
  if (parentSessionId === null || !limits.endWithParent) return undefined;
  const status = (await sessions.statuses([parentSessionId])).get(parentSessionId) ?? null;
  return status === 'active' ? undefined : orphanReason(parentSessionId, status);
}

export interface LifetimeWatchDeps {
  live: LiveSessions;
  sessions: Sessions;
  audit: AuditLog;
  intervalMs: number;
  onError: (err: Error) => void;
}

export class LifetimeWatch {
  private readonly periodic: PeriodicCheck;
  /** Orphans allowed to run on (end_with_parent off), already flagged and audited. */
  private readonly flagged = new Set<string>();

  constructor(private readonly deps: LifetimeWatchDeps) {
    this.periodic = new PeriodicCheck(() => this.sweep(), deps.intervalMs, deps.onError);
  }

  /** Checks every live session once: its limits first, then (one query) whether its parent still runs. */
  async check(): Promise<void> {
    return this.periodic.now();
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    const withParent: Array<{ id: string; lifetime: Lifetime }> = [];
    const tracked = this.deps.live.lifetimes();
    for (const { id, lifetime } of tracked) {
      if (this.timedOut(id, lifetime, now)) continue;
      if (lifetime.parentSessionId !== null && !this.flagged.has(id)) withParent.push({ id, lifetime });
    }
    const live = new Set(tracked.map((t) => t.id));
    for (const id of this.flagged) if (!live.has(id)) this.flagged.delete(id);
    if (withParent.length === 0) return;
    const parents = [...new Set(withParent.map((s) => s.lifetime.parentSessionId as string))];
    const statuses = await this.deps.sessions.statuses(parents);
    for (const { id, lifetime } of withParent) {
      const parent = lifetime.parentSessionId as string;
      const status = statuses.get(parent);
      if (status !== 'active') await this.orphaned(id, parent, status ?? null, lifetime.limits.endWithParent);
    }
  }

  /** Ends the session when it ran past its maximum duration or sat idle too long; true when it did. */
  private timedOut(id: string, l: Lifetime, now: number): boolean {
    const { idleMs, maxMs, idleKey } = l.limits;
    let reason: 'idle' | 'max_duration';
    let message: string;
    let limit: number;
    if (maxMs > 0 && now - l.startedAt >= maxMs) {
      reason = 'max_duration';
      limit = maxMs;
      message = `session ended: maximum session duration ${formatDuration(maxMs)} reached`;
    } else {
      const idle = idleMs > 0 ? l.idleSince() : null;
      if (idle === null || now - idle < idleMs) return false;
      reason = 'idle';
      limit = idleMs;
      message = `session ended: idle for ${formatDuration(idleMs)} (${idleKey})`;
    }
    if (!this.deps.live.kill(id, message, reason)) return true;
    this.deps.audit.record({
      type: 'session.timed_out',
      actor: SYSTEM_ACTOR,
      target: `session:${id}`,
      outcome: 'success',
      payload: { session: id, reason, limit: formatDuration(limit), message },
    });
    return true;
  }

  /** A session whose parent ended (or is unknown): ended, or flagged once when it may run on. */
  private async orphaned(id: string, parent: string, parentStatus: string | null, end: boolean) {
    const why = orphanReason(parent, parentStatus);
    const audit = () =>
      this.deps.audit.record({
        type: 'session.orphaned',
        actor: SYSTEM_ACTOR,
        target: `session:${id}`,
        outcome: end ? 'success' : 'info',
        payload: {
          session: id,
          parent_session: parent,
          parent_status: parentStatus,
          ended: end,
          reason: why,
        },
      });
    if (end) {
      if (!this.deps.live.kill(id, `session ended: ${why}`, 'orphaned')) return;
      audit();
      await this.deps.sessions.flagOrphaned(id, new Date().toISOString());
      return;
    }
    // Flagged in the store first: an orphan that runs on is audited once, not on every check.
    const first = await this.deps.sessions.flagOrphaned(id, new Date().toISOString());
    this.flagged.add(id);
    if (first) audit();
  }

  stop(): void {
    this.periodic.stop();
  }
}
