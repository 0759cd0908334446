// Everything that may end a session from outside its connection, started together: kills asked
// through any gateway, credentials revoked or subjects disabled, lifetimes (idle, too old, or
// outliving the parent session, end_with_parent), and the sessions of gateways that went silent.
import type { AuditLog } from '../audit/log.js';
import type { ApiKeys } from '../identity/api-keys.js';
import type { WardenTokens } from '../identity/warden-tokens.js';
import type { DisabledSubjects } from '../store/disabled-subjects.js';
import type { Gateways } from '../store/gateways.js';
import type { Sessions } from '../store/sessions.js';
import { CredentialWatch } from './credential-watch.js';
import { GatewayLiveness } from './gateway-liveness.js';
import { LifetimeWatch } from './lifetime-watch.js';
import type { LiveSessions } from './live-sessions.js';

export interface LiveSessionWatchDeps {
  live: LiveSessions;
  sessions: Sessions;
  audit: AuditLog;
  apiKeys: ApiKeys;
  tokens: WardenTokens;
  disabledSubjects: DisabledSubjects;
  gateways: Gateways;
  /** `sessions.check_interval`, `.gateway_heartbeat` and `.gateway_timeout`. */
  intervals: { lifetimeMs: number; heartbeatMs: number; gatewayTimeoutMs: number };
  warn: (err: Error, what: string) => void;
}

/** Starts the watches; `gatewayId` is this gateway's on the store; `stop()` ends them all. */
export function watchLiveSessions(d: LiveSessionWatchDeps): { gatewayId: string; stop(): Promise<void> } {
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
    intervalMs: d.intervals.lifetimeMs,
    onError: (err) => d.warn(err, "cannot check live sessions' limits and parents"),
  });
  const liveness = new GatewayLiveness({
    gateways: d.gateways,
    sessions: d.sessions,
    audit: d.audit,
    heartbeatMs: d.intervals.heartbeatMs,
    timeoutMs: d.intervals.gatewayTimeoutMs,
    onError: (err) => d.warn(err, 'cannot beat or sweep gateways on the store'),
  });
  liveness.start();
  return {
    gatewayId: liveness.id,
    async stop() {
      d.live.stop();
      credentials.stop();
      lifetimes.stop();
      await liveness.stop();
    },
  };
}
