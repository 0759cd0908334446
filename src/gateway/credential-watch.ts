// Live sessions end when the credential they were opened with stops standing: a token (or one it
// was delegated from) revoked, the API key behind it revoked or expired, or a subject it names disabled. Every gateway checks
// the sessions it carries on an interval, so a revocation made through any gateway sharing the
// store ends them within that interval.

import type { AuditLog } from '../audit/log.js';
import { SYSTEM_ACTOR } from '../audit/record.js';
import type { LiveSessions, SessionCredential } from './live-sessions.js';
import { PeriodicCheck } from './periodic-check.js';

export interface CredentialWatchDeps {
  live: LiveSessions;
  audit: AuditLog;
  /** Why the credential no longer stands, or undefined while it does. */
  revocation: (c: SessionCredential) => Promise<string | undefined>;
  intervalMs: number;
  onError: (err: Error) => void;
}

/** One check per distinct credential and the subjects it names. */
const credentialKey = (c: SessionCredential): string => `${c.via}:${c.id}:${c.subjects.join('>')}`;

export class CredentialWatch {
  private readonly periodic: PeriodicCheck;

  constructor(private readonly deps: CredentialWatchDeps) {
    this.periodic = new PeriodicCheck(() => this.sweep(), deps.intervalMs, deps.onError);
  }

  /** Checks every revocable live session once (one check per distinct credential). */
  async check(): Promise<void> {
    return this.periodic.now();
  }

  private async sweep(): Promise<void> {
    const sessions = this.deps.live.revocable();
    const verdicts = new Map<string, Promise<string | undefined>>();
    for (const { credential } of sessions) {
      const key = credentialKey(credential);
      if (!verdicts.has(key)) verdicts.set(key, this.deps.revocation(credential));
    }
    for (const { id, credential } of sessions) {
      const why = await verdicts.get(credentialKey(credential));
      if (why === undefined) continue;
      if (!this.deps.live.kill(id, `session ended: ${why}`)) continue;
      this.deps.audit.record({
        type: 'session.revoked',
        actor: SYSTEM_ACTOR,
        target: `session:${id}`,
        outcome: 'success',
        payload: { session: id, credential: credential.via, credential_id: credential.id, reason: why },
      });
    }
  }

  stop(): void {
    this.periodic.stop();
  }
}
