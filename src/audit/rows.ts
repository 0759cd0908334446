// Conversion between audit rows in the store and AuditRecord values.
import type { Selectable } from 'kysely';
import type { AuditLogTable } from '../store/tables.js';
import type { AuditOutcome, AuditRecord } from './record.js';

export function recordFromRow(row: Selectable<AuditLogTable>): AuditRecord {
  return {
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
}
