// Everything a route handler may use, built once by the composition root (warden.ts).
import type { Logger } from 'pino';
import type { Checkpointer } from '../audit/checkpoints.js';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/schema.js';
import type { Keyring } from '../crypto/seal.js';
import type { SigningKey } from '../crypto/signing.js';
import type { ConnectionProbe } from '../gateway/connection-probe.js';
import type { LiveSessions } from '../gateway/live-sessions.js';
import type { ApiKeys } from '../identity/api-keys.js';
import type { Authenticator } from '../identity/authenticate.js';
import type { WardenTokens } from '../identity/warden-tokens.js';
import type { RulesInForce } from '../policy/in-force.js';
import type { Recorder } from '../recording/recorder.js';
import type { AccessGrants } from '../reviews/access-grants.js';
import type { Approvals } from '../reviews/approvals.js';
import type { PreapprovalDesk } from '../reviews/preapproval-desk.js';
import type { Connections } from '../store/connections.js';
import type { DisabledSubjects } from '../store/disabled-subjects.js';
import type { Grants } from '../store/grants.js';
import type { PolicyVersions } from '../store/policy-versions.js';
import type { Preapprovals } from '../store/preapprovals.js';
import type { Reviews } from '../store/reviews.js';
import type { SessionEvents } from '../store/session-events.js';
import type { Sessions } from '../store/sessions.js';
import type { Store } from '../store/store.js';
import type { Metrics } from './metrics.js';

export interface ApiContext {
  config: Config;
  store: Store;
  audit: AuditLog;
  checkpointer: Checkpointer;
  keyring: Keyring;
  signingKey: SigningKey;
  connections: Connections;
  /** Logs in to a connection's target as a session would, with the probe of its protocol. */
  probeConnection: ConnectionProbe;
  policy: RulesInForce;
  policyVersions: PolicyVersions;
  /** HMAC key for `style: tokenize` masks, shared by every gateway on the store. */
  tokenizeKey: Buffer;
  sessions: Sessions;
  sessionEvents: SessionEvents;
  reviews: Reviews;
  preapprovals: Preapprovals;
  /** Creates and revokes pre-approvals (from a review, by one of its approvers). */
  preapprovalDesk: PreapprovalDesk;
  /** Commands held for review on this gateway, and the decisions approvers make through the API. */
  approvals: Approvals;
  grants: Grants;
  /** Just-in-time access requests and the decisions approvers make on them. */
  access: AccessGrants;
  /** Writes sessions' statement events; its queue and health are reported by /readyz and /metrics. */
  recorder: Recorder;
  /** Sessions this gateway carries now. */
  live: LiveSessions;
  apiKeys: ApiKeys;
  tokens: WardenTokens;
  authenticator: Authenticator;
  /** People and service accounts an admin disabled. */
  disabledSubjects: DisabledSubjects;
  metrics: Metrics;
  log: Logger;
}
