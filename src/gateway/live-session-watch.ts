// Everything that may end a live session from outside its connection, started together: kills
// asked through any gateway, credentials revoked or subjects disabled, and lifetimes (idle, too
// old, or outliving the parent session, end_with_parent).
import type { AuditLog } from '../audit/log.js';
import type { ApiKeys } from '../identity/api-keys.js';
import type { WardenTokens } from '../identity/warden-tokens.js';
import type { DisabledSubjects } from '../store/disabled-subjects.js';
import type { Sessions } from '../store/sessions.js';
import { CredentialWatch } from './credential-watch.js';
import { LifetimeWatch } from './lifetime-watch.js';
import type { LiveSessions } from './live-sessions.js';

export interface LiveSessionWatchDeps {
  live: LiveSessions;
  sessions: Sessions;
  audit: AuditLog;
  apiKeys: ApiKeys;
  tokens: WardenTokens;
  disabledSubjects: DisabledSubjects;
  /** How often lifetimes and parents are checked (`sessions.check_interval`). */
  lifetimeIntervalMs: number;
  warn: (err: Error, what: string) => void;
}

/** Starts the watches; `stop()` ends them all. */
export function watchLiveSessions(d: LiveSessionWatchDeps): { stop(): void } {
  d.live.watch(d.sessions, 1000, (err) => d.warn(err, 'cannot read session kill requests'));
  // Sessions whose credential was revoked (or whose API key expired) end within a second or two.
  const credentials = new CredentialWatch({
    live: d.live,
    audit: d.audit,
    intervalMs: 1000,
    revocation: async (c) =>
      (await d.disabledSubjects.refusal(c.subjects)) ??
      (c.id === null || c.via === 'oidc'
        ? undefined
        : c.via === 'api_key'
          ? d.apiKeys.revocation(c.id)
          : d.tokens.revocation(c.id)),
    onError: (err) => d.warn(err, "cannot check live sessions' credentials"),
  });
  const lifetimes = new LifetimeWatch({
    live: d.live,
    sessions: d.sessions,
    audit: d.audit,
    intervalMs: d.lifetimeIntervalMs,
    onError: (err) => d.warn(err, "cannot check live sessions' limits and parents"),
  });
  return {
    stop() {
      d.live.stop();
      credentials.stop();
      lifetimes.stop();
    },
  };
}
