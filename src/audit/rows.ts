// Conversion between audit rows in the store and AuditRecord values.
import type { Selectable } from 'kysely';
import type { AuditLogTable } from '../store/tables.js';
import type { AuditOutcome, AuditRecord } from './record.js';

/** The stored JSON of records read from the store, so verifying them need not re-encode it. */
const stored = new WeakMap<AuditRecord, { actorJson: string; payloadJson: string }>();

/** The actor and payload JSON a record was read from, when it came from the store. */
export function storedJson(r: AuditRecord): { actorJson: string; payloadJson: string } | undefined {
  return stored.get(r);
}

export function recordFromRow(row: Selectable<AuditLogTable>): AuditRecord {
  const record: AuditRecord = {
    seq: Number(row.seq),
    id: row.event_id,
    time: row.time,
    type: row.type,
    actor: JSON.parse(row.actor_json),
    target: row.target,
    outcome: row.outcome as AuditOutcome,
    payload: JSON.parse(row.payload_json),
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
  stored.set(record, { actorJson: row.actor_json, payloadJson: row.payload_json });
  return record;
}
