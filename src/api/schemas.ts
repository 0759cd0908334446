// Response and query shapes of the API. The same zod schemas validate requests, serialize
// responses and generate the OpenAPI document, so the three cannot drift apart.
import { z } from 'zod';
import { KINDS, ROLES } from '../identity/identity.js';
import { REVIEW_STATUSES } from '../store/reviews.js';

export const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

export const identityView = z.object({
  subject: z.string(),
  kind: z.enum(KINDS),
  groups: z.array(z.string()),
  roles: z.array(z.enum(ROLES)),
  root_subject: z.string(),
  chain: z.array(z.string()),
  via: z.enum(['api_key', 'oidc', 'warden_token']),
  token_id: z.string().nullable(),
  issuer: z.string(),
  scope: z.array(z.string()),
  expires_at: z.string().nullable(),
});

export const apiKeyView = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(KINDS),
  groups: z.array(z.string()),
  created_at: z.string(),
  created_by: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
});

export const tokenView = z.object({
  jti: z.string(),
  parent_jti: z.string().nullable(),
  subject: z.string(),
  kind: z.string(),
  groups: z.array(z.string()),
  scope: z.array(z.string()),
  chain: z.array(z.string()),
  issued_at: z.string(),
  expires_at: z.string(),
  revoked_at: z.string().nullable(),
  issued_via: z.string(),
  root_subject: z.string(),
  parent_session_id: z.string().nullable(),
});

export const sessionView = z.object({
  id: z.string(),
  subject: z.string(),
  kind: z.string(),
  root_subject: z.string(),
  chain: z.array(z.string()),
  token_id: z.string().nullable(),
  parent_token_id: z.string().nullable(),
  parent_session_id: z.string().nullable(),
  connection: z.string(),
  protocol: z.string(),
  client_addr: z.string().nullable(),
  application: z.string().nullable(),
  traceparent: z.string().nullable(),
  status: z.string(),
  started_at: z.string(),
  ended_at: z.string().nullable(),
  end_reason: z.string().nullable(),
  /** Set when the session was found running after its parent session ended. */
  orphaned_at: z.string().nullable(),
});

export const reviewView = z.object({
  id: z.string(),
  status: z.enum(REVIEW_STATUSES),
  version: z.number(),
  created_at: z.string(),
  expires_at: z.string(),
  decided_at: z.string().nullable(),
  session_id: z.string(),
  connection: z.string(),
  command: z.string(),
  rule: z.string(),
  rules: z.array(z.string()),
  message: z.string().nullable(),
  requester: z.object({
    subject: z.string(),
    kind: z.string(),
    root: z.string(),
    chain: z.array(z.string()),
    token_id: z.string().nullable(),
  }),
  approver_groups: z.array(z.string()),
  approvals_required: z.number(),
  approvals: z.array(
    z.object({ subject: z.string(), root: z.string(), at: z.string(), reason: z.string().nullable() }),
  ),
  decided_by: z.string().nullable(),
  reason: z.string().nullable(),
  fingerprint: z.string().nullable(),
  break_glass: z.boolean(),
  reuse_until: z.string().nullable(),
  options: z.object({ held: z.boolean(), reuse_ms: z.number().nullable(), break_glass: z.boolean() }),
});

export const preapprovalView = z.object({
  id: z.string(),
  connection: z.string(),
  fingerprint: z.string(),
  subject: z.string().nullable(),
  group: z.string().nullable(),
  review_id: z.string().nullable(),
  created_by: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
  reason: z.string().nullable(),
  revoked_at: z.string().nullable(),
});

export const sessionEventView = z.object({
  id: z.string(),
  session_id: z.string(),
  seq: z.number(),
  kind: z.literal('statement'),
  time: z.string(),
  duration_ms: z.number().nullable(),
  text: z.string(),
  params: z.array(z.string().nullable()).nullable(),
  decision: z.enum(['allow', 'deny', 'review']),
  rules: z.array(z.string()),
  rows: z.number().nullable(),
  bytes: z.number(),
  error: z.string().nullable(),
  sample: z.array(z.array(z.string().nullable())).nullable(),
});

export const auditActor = z.object({
  subject: z.string(),
  kind: z.string(),
  chain: z.array(z.string()),
  root: z.string().optional(),
  token_id: z.string().nullable().optional(),
  parent_token_id: z.string().nullable().optional(),
  parent_session: z.string().nullable().optional(),
  address: z.string().nullable().optional(),
});

export const auditRecord = z.object({
  seq: z.number().int(),
  id: z.string(),
  time: z.string(),
  type: z.string(),
  actor: auditActor,
  target: z.string().nullable(),
  outcome: z.enum(['success', 'denied', 'failure', 'info']),
  payload: z.record(z.string(), z.unknown()),
  prev_hash: z.string(),
  hash: z.string(),
});

export const verifyReport = z.object({
  ok: z.boolean(),
  records: z.number().int(),
  checkpoints: z.number().int(),
  first_seq: z.number().int().nullable(),
  last_seq: z.number().int().nullable(),
  from_genesis: z.boolean(),
  last_checkpoint: z.object({ seq: z.number().int(), time: z.string() }).nullable(),
  /** The highest checkpoint from outside the store (the gateway's witness) the trail was checked against. */
  anchored_seq: z.number().int().nullable(),
  /** Records after the last signed checkpoint or anchor. */
  unsigned_tail: z.number().int(),
  problem: z.object({ seq: z.number().int(), kind: z.string(), message: z.string() }).nullable(),
});

/** A signed checkpoint: verifiable with the public key, and usable as a trusted anchor. */
export const auditCheckpoint = z.object({
  seq: z.number().int(),
  hash: z.string(),
  time: z.string(),
  key_id: z.string(),
  signature: z.string(),
});

/** A timestamp in a query string: ISO-8601, or a relative age like "15m" / "2h" / "7d". */
export const timeParam = z.string().min(1);
