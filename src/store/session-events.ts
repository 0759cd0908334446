// The session_events repository: what each statement of a session did (text, masked parameters,
// decision, timing, rows, bytes, error, a masked sample of its result). The recorder writes it.
import type { Selectable } from 'kysely';
import { searchIndexOf } from './search-index.js';
import type { Store } from './store.js';
import type { SessionEventsTable } from './tables.js';

/**
 * One recorded statement. Parameters and sample values are already masked when built. A new field
 * must also be copied in `Session.record`, which spells the event out (no spread).
 */
export interface SessionEvent {
  id: string;
  session_id: string;
  seq: number;
  kind: 'statement';
  time: string;
  duration_ms: number | null;
  text: string;
  params: Array<string | null> | null;
  decision: 'allow' | 'deny' | 'review';
  rules: string[];
  rows: number | null;
  bytes: number;
  error: string | null;
  sample: Array<Array<string | null>> | null;
}

/** Rows per INSERT: well under SQLite's 32766 bound parameters at 14 columns a row. */
const ROWS_PER_INSERT = 500;

// PostgreSQL returns bigint columns as strings; both dialects read back as numbers.
const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function view(row: Selectable<SessionEventsTable>): SessionEvent {
  return {
    id: row.id,
    session_id: row.session_id,
    seq: Number(row.seq),
    kind: 'statement',
    time: row.time,
    duration_ms: num(row.duration_ms),
    text: row.text,
    params: row.params_json === null ? null : JSON.parse(row.params_json),
    decision: row.decision as SessionEvent['decision'],
    rules: JSON.parse(row.rules_json),
    rows: num(row.rows),
    bytes: Number(row.bytes),
    error: row.error,
    sample: row.sample_json === null ? null : JSON.parse(row.sample_json),
  };
}

export class SessionEvents {
  constructor(private readonly store: Store) {}

  /** Writes events in multi-row inserts, all or none (a retried batch must not half-exist). */
  async insert(events: readonly SessionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const rows = events.map((e) => ({
      id: e.id,
      session_id: e.session_id,
      seq: e.seq,
      kind: e.kind,
      time: e.time,
      duration_ms: e.duration_ms,
      text: e.text,
      params_json: e.params === null ? null : JSON.stringify(e.params),
      decision: e.decision,
      rules_json: JSON.stringify(e.rules),
      rows: e.rows,
      bytes: e.bytes,
      error: e.error,
      sample_json: e.sample === null ? null : JSON.stringify(e.sample),
    }));
    if (this.store.embedded) {
      const columns = Object.keys(rows[0]!);
      const text = `insert into session_events (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')}) on conflict (id) do nothing`;
      await this.store.writeSync((sql) => {
        const insert = sql(text);
        for (const row of rows) insert.run(...Object.values(row));
      });
      searchIndexOf(this.store).later();
      return;
    }
    await this.store.db.transaction().execute(async (tx) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
        // A batch retried after a lost COMMIT acknowledgement is not written twice.
        await tx
          .insertInto('session_events')
          .values(rows.slice(i, i + ROWS_PER_INSERT))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }
    });
  }

  /** A session's events in order, the first `limit` of them, or of those after seq `afterSeq`. */
  async list(sessionId: string, limit = 10_000, afterSeq?: number): Promise<SessionEvent[]> {
    let q = this.store.db.selectFrom('session_events').selectAll().where('session_id', '=', sessionId);
    if (afterSeq !== undefined) q = q.where('seq', '>', afterSeq);
    const rows = await q.orderBy('seq', 'asc').limit(limit).execute();
    return rows.map(view);
  }
}
