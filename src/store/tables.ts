// Row types of every table, as Kysely sees them. Timestamps are ISO-8601 UTC strings in both
// dialects (they sort as text); JSON columns hold canonical JSON text.

export interface ConnectionsTable {
  id: string;
  name: string;
  protocol: string;
  host: string;
  port: number;
  database: string | null;
  tls_json: string;
  username: string | null;
  /** AES-256-GCM sealed password, bound to the row id; never leaves the process. */
  secret_sealed: string | null;
  access: string;
  /** allow | deny, or null for the global `policy.default`. */
  policy_default: string | null;
  /** 'none' or 'session' (server connections reused across sessions). */
  pool: string;
  /** The connection's overrides of the global session limits (SessionOverrides, in ms), or null. */
  sessions_json: string | null;
  tags_json: string;
  description: string;
  source: string;
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  kind: string;
  groups_json: string;
  /** SHA-256 of the key's secret part; the key itself is shown once and never stored. */
  secret_hash: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface TokensTable {
  jti: string;
  parent_jti: string | null;
  subject: string;
  kind: string;
  groups_json: string;
  scope_json: string;
  chain_json: string;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
  /** How the caller authenticated when the token was minted: api_key:<id>, oidc:<issuer>, token:<jti>. */
  issued_via: string;
  /** The identity at the root of the token's chain (null for tokens minted before it was kept). */
  root_subject: string | null;
  /** The Warden session the token was minted in, when the minter named or used one. */
  parent_session_id: string | null;
}

export interface SessionsTable {
  id: string;
  subject: string;
  kind: string;
  root_subject: string;
  chain_json: string;
  token_id: string | null;
  parent_session_id: string | null;
  connection_name: string;
  protocol: string;
  client_addr: string | null;
  status: string;
  started_at: string;
  ended_at: string | null;
  /** The message a kill asked through some gateway carries, until the session ends. */
  kill_requested: string | null;
  parent_token_id: string | null;
  /** The W3C traceparent the client sent, when it sent a valid one. */
  traceparent: string | null;
  application: string | null;
  /** Why the session ended, in words, once it has. */
  end_reason: string | null;
  /** When the session was found running after its parent session ended. */
  orphaned_at: string | null;
  /** The gateway carrying the session (see the gateways table). */
  gateway_id: string | null;
}

/** A running gateway on the store, and when it last said so. */
export interface GatewaysTable {
  id: string;
  host: string;
  pid: number;
  started_at: string;
  seen_at: string;
}

/** A person or service an admin disabled: every credential of theirs is refused. */
export interface DisabledSubjectsTable {
  subject: string;
  disabled_at: string;
  disabled_by: string;
  reason: string;
}

export interface AuditLogTable {
  seq: number;
  event_id: string;
  time: string;
  type: string;
  actor_json: string;
  target: string | null;
  outcome: string;
  payload_json: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: number;
  hash: string;
  time: string;
  key_id: string;
  signature: string;
}

export interface Database {
  connections: ConnectionsTable;
  api_keys: ApiKeysTable;
  tokens: TokensTable;
  sessions: SessionsTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointsTable;
  warden_meta: { key: string; value: string };
  policy_versions: PolicyVersionsTable;
  session_events: SessionEventsTable;
  reviews: ReviewsTable;
  preapprovals: PreapprovalsTable;
  access_grants: AccessGrantsTable;
  disabled_subjects: DisabledSubjectsTable;
  gateways: GatewaysTable;
  terminal_recordings: TerminalRecordingsTable;
}

/** A command held for approval, and what approvers did with it. */
export interface ReviewsTable {
  id: string;
  status: string;
  version: number;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  session_id: string;
  connection_name: string;
  command: string;
  rule: string;
  rules_json: string;
  message: string | null;
  requester_json: string;
  requester_root: string;
  approver_groups_json: string;
  approvals_required: number;
  approvals_json: string;
  decided_by: string | null;
  reason: string | null;
  fingerprint: string | null;
  /** 1 when the requester ran the command before any approval (break-glass). */
  break_glass: number;
  reuse_until: string | null;
  options_json: string;
  text_hash: string | null;
}

/** An approval given ahead of time for one statement shape on one connection. */
export interface PreapprovalsTable {
  id: string;
  connection_name: string;
  fingerprint: string;
  /** The review rule it stands in for: a stricter rule catching the same shape still asks. */
  rule: string;
  subject: string | null;
  group_name: string | null;
  review_id: string | null;
  created_by: string;
  created_at: string;
  expires_at: string;
  reason: string | null;
  revoked_at: string | null;
}

/** A request for just-in-time access to a connection, and the grant (or denial) it got. */
export interface AccessGrantsTable {
  id: string;
  connection_name: string;
  /** The root subject of the requester: the grant covers the person and agents acting for them. */
  subject: string;
  requested_by: string;
  requester_chain_json: string;
  reason: string;
  duration_ms: number;
  status: string;
  version: number;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  decision_reason: string | null;
  starts_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
}

/** One recorded statement of a session; every value in it was masked before it was queued. */
export interface SessionEventsTable {
  id: string;
  session_id: string;
  /** Order within the session, from 1. */
  seq: number;
  kind: string;
  time: string;
  duration_ms: number | null;
  text: string;
  params_json: string | null;
  decision: string;
  rules_json: string;
  rows: number | null;
  bytes: number;
  /** `SQLSTATE: message`, when the statement failed or was refused. */
  error: string | null;
  sample_json: string | null;
}

export interface PolicyVersionsTable {
  version: number;
  /** The whole API-managed rule set of this version, as canonical JSON. */
  rules_json: string;
  actor_json: string;
  comment: string;
  created_at: string;
}

/** One chunk of a terminal session's asciicast v2 text (seq 0: the header line). */
export interface TerminalRecordingsTable {
  session_id: string;
  seq: number;
  /** Seconds from the session's start to the chunk's first event. */
  time: number;
  data: string;
}
