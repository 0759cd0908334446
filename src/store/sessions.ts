// The sessions repository: one row per connection a caller made through a gateway, with the
// identity and actor chain it ran under. Protocol engines write them; the API reads them.
import { CompiledQuery, type Selectable, sql } from 'kysely';
import type { RowWrite } from '../audit/log.js';
import { searchIndexOf } from './search-index.js';
import type { Store } from './store.js';
import type { SessionsTable } from './tables.js';

export interface SessionView {
  id: string;
  subject: string;
  kind: string;
  root_subject: string;
  chain: string[];
  token_id: string | null;
  parent_token_id: string | null;
  parent_session_id: string | null;
  connection: string;
  protocol: string;
  client_addr: string | null;
  status: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  /** When the session was found running after its parent session ended (it may run on: end_with_parent off). */
  orphaned_at: string | null;
  application: string | null;
  traceparent: string | null;
}

/** A new session row: lineage and trace fields may be left out (a direct caller, no trace). */
export type NewSession = Omit<
  SessionView,
  'parent_token_id' | 'end_reason' | 'orphaned_at' | 'application' | 'traceparent'
> &
  Partial<Pick<SessionView, 'parent_token_id' | 'end_reason' | 'application' | 'traceparent'>> & {
    /** The gateway that carries it. */
    gateway_id?: string | null;
  };

export interface SessionFilter {
  /** Only sessions this subject ran, or that ran under a chain rooted at it. */
  visibleTo?: string;
  subject?: string;
  /** The subject at the root of the session's delegation chain. */
  root?: string;
  /** A name in the session's actor chain, matched exactly. */
  agent?: string;
  connection?: string;
  protocol?: string;
  status?: string;
  /** Started at or after / at or before these ISO times. */
  since?: string;
  until?: string;
  /** Only sessions with at least one statement refused (`denied`) or sent for review (`held`). */
  flagged?: 'denied' | 'held';
  /** Words that must all occur (any case) in the session's recorded statements. */
  search?: string;
  /** Started strictly before this ISO time (older keyset pagination; `after` supersedes it). */
  before?: string;
  /** The last session of the previous page: this page continues strictly older than it. */
  after?: SessionKey;
  limit: number;
}

/** Where a session sits in the newest-first order the list pages through. */
export interface SessionKey {
  started_at: string;
  id: string;
}

const FLAGGED_DECISION = { denied: 'deny', held: 'review' } as const;

/**
 * The words of a search, as both full-text engines split text into them (letters and digits);
 * punctuation never reaches an engine's query syntax, so no input can make it fail.
 */
export function searchWords(search: string): string[] {
  return search.match(/[\p{L}\p{N}]+/gu) ?? [];
}

function view(row: Selectable<SessionsTable>): SessionView {
  return {
    id: row.id,
    subject: row.subject,
    kind: row.kind,
    root_subject: row.root_subject,
    chain: JSON.parse(row.chain_json),
    token_id: row.token_id,
    parent_token_id: row.parent_token_id,
    parent_session_id: row.parent_session_id,
    connection: row.connection_name,
    protocol: row.protocol,
    client_addr: row.client_addr,
    status: row.status,
    started_at: row.started_at,
    ended_at: row.ended_at,
    end_reason: row.end_reason,
    orphaned_at: row.orphaned_at,
    application: row.application,
    traceparent: row.traceparent,
  };
}

export class Sessions {
  constructor(private readonly store: Store) {}

  /** The SQL of insertWrite() and endWrite(), compiled once for the store's dialect. */
  private readonly compiled: { insert?: string; end?: string } = {};

  async insert(s: NewSession): Promise<void> {
    const w = this.insertWrite(s);
    await this.store.db.executeQuery(CompiledQuery.raw(w.sql, [...w.parameters]));
  }

  /**
   * The insert of a new session as a RowWrite, for the audit log to write with its
   * `session.opened` event in one transaction.
   */
  insertWrite(s: NewSession): RowWrite {
    // Every column, in this order, none undefined (Kysely leaves those out): the SQL compiled once
    // names them in the order the values are given.
    const row: SessionsTable = {
      id: s.id,
      subject: s.subject,
      kind: s.kind,
      root_subject: s.root_subject,
      chain_json: JSON.stringify(s.chain),
      token_id: s.token_id ?? null,
      parent_session_id: s.parent_session_id ?? null,
      connection_name: s.connection,
      protocol: s.protocol,
      client_addr: s.client_addr ?? null,
      status: s.status,
      started_at: s.started_at,
      ended_at: s.ended_at ?? null,
      kill_requested: null,
      parent_token_id: s.parent_token_id ?? null,
      traceparent: s.traceparent ?? null,
      application: s.application ?? null,
      end_reason: s.end_reason ?? null,
      orphaned_at: null,
      gateway_id: s.gateway_id ?? null,
    };
    this.compiled.insert ??= this.store.db.insertInto('sessions').values(row).compile().sql;
    return { sql: this.compiled.insert, parameters: Object.values(row) };
  }

  /**
   * Ends, as `lost`, the sessions still active on gateway `gatewayId` (which stopped answering):
   * nobody carries them any more. Returns them; a session ended meanwhile is left as it ended.
   */
  async endLost(
    gatewayId: string,
    endedAt: string,
    reason: string,
  ): Promise<Array<{ id: string; subject: string }>> {
    const rows = await this.store.db
      .selectFrom('sessions')
      .select(['id', 'subject'])
      .where('gateway_id', '=', gatewayId)
      .where('status', '=', 'active')
      .execute();
    if (rows.length === 0) return [];
    await this.store.db
      .updateTable('sessions')
      .set({ status: 'lost', ended_at: endedAt, end_reason: reason })
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .where('status', '=', 'active')
      .execute();
    return rows;
  }

  /** One page of sessions, newest first by (started_at, id). */
  async list(f: SessionFilter): Promise<SessionView[]> {
    const q = this.listing(f);
    if (!q) return [];
    // Statements written in the last moment may still wait for the search index: in it first. Should
    // that fail (the write lock held elsewhere, a full disk), the search runs on what is indexed.
    if (f.search !== undefined) {
      await searchIndexOf(this.store)
        .catchUp()
        .catch((err: Error) =>
          this.store.onBackgroundError(
            new Error(
              `search ran without the statements of the last second: indexing failed: ${err.message}`,
            ),
          ),
        );
    }
    return (await q.execute()).map(view);
  }

  /** The SQL `list` runs for this filter (none: it answers nothing), for checking its query plan. */
  listingSql(f: SessionFilter): CompiledQuery | undefined {
    return this.listing(f)?.compile();
  }

  private listing(f: SessionFilter) {
    const words = f.search === undefined ? [] : searchWords(f.search);
    // A search with no words in it matches nothing, in both dialects alike.
    if (f.search !== undefined && words.length === 0) return undefined;
    const postgres = this.store.dialect === 'postgres';
    let q = this.store.db.selectFrom('sessions').selectAll();
    if (f.visibleTo !== undefined) {
      const who = f.visibleTo;
      q = q.where((eb) => eb.or([eb('subject', '=', who), eb('root_subject', '=', who)]));
    }
    if (f.subject) q = q.where('subject', '=', f.subject);
    if (f.root) q = q.where('root_subject', '=', f.root);
    if (f.agent) {
      // chain_json is JSON.stringify(names): the quoted name occurs exactly when it is one of them
      // (`"a"` is not in `["ab"]`). A plain substring search, case-sensitive in both dialects.
      const quoted = JSON.stringify(f.agent);
      q = q.where(
        postgres
          ? sql<boolean>`strpos(chain_json, ${quoted}) > 0`
          : sql<boolean>`instr(chain_json, ${quoted}) > 0`,
      );
    }
    if (f.connection) q = q.where('connection_name', '=', f.connection);
    if (f.protocol) q = q.where('protocol', '=', f.protocol);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.since) q = q.where('started_at', '>=', f.since);
    if (f.until) q = q.where('started_at', '<=', f.until);
    if (f.flagged) {
      const decision = FLAGGED_DECISION[f.flagged];
      // `decision <> 'allow'` spelled out so SQLite may use the partial index session_events_flagged.
      q = q.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('session_events as e')
            .select(sql<number>`1`.as('one'))
            .whereRef('e.session_id', '=', 'sessions.id')
            .where('e.decision', '<>', 'allow')
            .where('e.decision', '=', decision),
        ),
      );
    }
    if (words.length > 0) {
      const matching = postgres
        ? // The expression of the index session_events_text (migration 0012), so that index answers.
          sql`select session_id from session_events where to_tsvector('simple', regexp_replace(text, '[[:punct:][:space:]]+', ' ', 'g')) @@ plainto_tsquery('simple', ${words.join(' ')})`
        : // Each word quoted as an FTS5 string (its own quotes doubled); words side by side are ANDed.
          sql`select session_id from session_events_fts where session_events_fts match ${words.map((w) => `"${w.replaceAll('"', '""')}"`).join(' ')}`;
      q = q.where(sql<boolean>`sessions.id in (${matching})`);
    }
    if (f.after) {
      const { started_at, id } = f.after;
      q = q.where((eb) => eb(eb.refTuple('started_at', 'id'), '<', eb.tuple(started_at, id)));
    } else if (f.before) {
      q = q.where('started_at', '<', f.before);
    }
    return q.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(f.limit);
  }

  /** Marks a session ended with its final status (`closed`, `killed`, `failed` …) and why, in words. */
  async end(id: string, status: string, endedAt: string, reason: string | null = null): Promise<void> {
    const w = this.endWrite(id, status, endedAt, reason);
    await this.store.db.executeQuery(CompiledQuery.raw(w.sql, [...w.parameters]));
  }

  /** The end of a session as a RowWrite, written with its `session.closed` event. */
  endWrite(id: string, status: string, endedAt: string, reason: string | null = null): RowWrite {
    this.compiled.end ??= this.store.db
      .updateTable('sessions')
      .set({ status, ended_at: endedAt, end_reason: reason })
      .where('id', '=', id)
      .compile().sql;
    return { sql: this.compiled.end, parameters: [status, endedAt, reason, id] };
  }

  /** Flags an active session to be ended by whichever gateway carries it; false when it is not active. */
  async requestKill(id: string, message: string): Promise<boolean> {
    const res = await this.store.db
      .updateTable('sessions')
      .set({ kill_requested: message })
      .where('id', '=', id)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Of these session ids, the ones flagged by requestKill, with their messages. */
  async killRequested(ids: string[]): Promise<Array<{ id: string; message: string }>> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('sessions')
      .select(['id', 'kill_requested'])
      .where('id', 'in', ids)
      .where('kill_requested', 'is not', null)
      .execute();
    return rows.map((r) => ({ id: r.id, message: r.kill_requested ?? '' }));
  }

  /** The status of each of these sessions that exists, by id: one query however many are asked. */
  async statuses(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.store.db
      .selectFrom('sessions')
      .select(['id', 'status'])
      .where('id', 'in', ids)
      .execute();
    return new Map(rows.map((r) => [r.id, r.status]));
  }

  /** Marks a session an orphan (once); false when it already was. */
  async flagOrphaned(id: string, at: string): Promise<boolean> {
    const res = await this.store.db
      .updateTable('sessions')
      .set({ orphaned_at: at })
      .where('id', '=', id)
      .where('orphaned_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async get(id: string): Promise<SessionView | undefined> {
    const row = await this.store.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? view(row) : undefined;
  }
}
