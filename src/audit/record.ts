// What an audit record is and how it is hashed: SHA-256 over the canonical JSON of every
// field plus the previous record's hash, so any edit, removal or reordering breaks the chain.
import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../crypto/canonical.js';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditOutcome = 'success' | 'denied' | 'failure' | 'info';

/** Who did it: the caller and, for delegated tokens, the chain of actors down to them. */
export interface AuditActor {
  subject: string;
  kind: string;
  /** Actors from the root identity down to the immediate caller (empty for a direct caller). */
  chain: string[];
  /** The identity at the root of the chain. */
  root?: string;
  token_id?: string | null;
  /** The token the caller's token was minted from (delegated tokens). */
  parent_token_id?: string | null;
  /** The session the caller's token was minted in, when known. */
  parent_session?: string | null;
  /** Client address when the event came over the network. */
  address?: string | null;
}

export interface AuditEvent {
  type: string;
  actor: AuditActor;
  target?: string | null;
  outcome: AuditOutcome;
  payload?: Record<string, unknown>;
}

export interface AuditRecord {
  seq: number;
  /** Unique per event, assigned when it is queued. */
  id: string;
  time: string;
  type: string;
  actor: AuditActor;
  target: string | null;
  outcome: AuditOutcome;
  payload: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpoint {
  seq: number;
  hash: string;
  time: string;
  key_id: string;
  signature: string;
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 hex digest');

/** A signed checkpoint read from somewhere untrusted: an export line, an anchor or witness file. */
export const auditCheckpointSchema = z.object({
  seq: z.number().int().min(1),
  hash: sha256,
  time: z.string(),
  key_id: z.string().min(1),
  signature: z.string().min(1),
});

/**
 * A record read from somewhere untrusted (an export line). The actor keeps unknown fields: the
 * hash covers whatever the gateway wrote, so dropping one would fail a genuine record.
 */
export const auditRecordSchema = z.object({
  seq: z.number().int().min(1),
  id: z.string(),
  time: z.string(),
  type: z.string(),
  actor: z.looseObject({
    subject: z.string(),
    kind: z.string(),
    chain: z.array(z.string()),
    root: z.string().optional(),
    token_id: z.string().nullable().optional(),
    parent_token_id: z.string().nullable().optional(),
    parent_session: z.string().nullable().optional(),
    address: z.string().nullable().optional(),
  }),
  target: z.string().nullable(),
  outcome: z.enum(['success', 'denied', 'failure', 'info']),
  payload: z.record(z.string(), z.unknown()),
  prev_hash: sha256,
  hash: sha256,
});

/** The first thing wrong with a value a schema refused, as "path: message". */
export function schemaProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

export const SYSTEM_ACTOR: AuditActor = { subject: 'warden', kind: 'system', chain: [] };

export function hashRecord(r: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(
    canonicalJson({
      seq: r.seq,
      id: r.id,
      time: r.time,
      type: r.type,
      actor: r.actor,
      target: r.target,
      outcome: r.outcome,
      payload: r.payload,
      prev_hash: r.prev_hash,
    }),
  );
}

/**
 * hashRecord for a record whose actor and payload are already canonical JSON (the appender
 * encodes them once when the event is queued): the same bytes, spliced instead of re-encoded.
 */
export function hashEncodedRecord(
  r: Omit<AuditRecord, 'hash' | 'actor' | 'payload'>,
  actorJson: string,
  payloadJson: string,
): string {
  const s = JSON.stringify;
  return sha256Hex(
    `{"actor":${actorJson},"id":${s(r.id)},"outcome":${s(r.outcome)},"payload":${payloadJson},` +
      `"prev_hash":${s(r.prev_hash)},"seq":${canonicalJson(r.seq)},"target":${r.target === null ? 'null' : s(r.target)},` +
      `"time":${s(r.time)},"type":${s(r.type)}}`,
  );
}

/** The exact bytes a checkpoint signature covers (domain-separated from every other signature). */
export function checkpointMessage(c: Omit<AuditCheckpoint, 'signature'>): string {
  return `warden-audit-checkpoint/1\n${canonicalJson({ seq: c.seq, hash: c.hash, time: c.time, key_id: c.key_id })}`;
}
