// Versioned schema migrations, run on start by Kysely's Migrator. Append new ones; never edit
// one that has shipped. Written once for both dialects (types chosen per dialect where they differ).
import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';
import type { Dialect } from './store.js';

type AnyDb = Kysely<unknown>;

function migrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    '0001_foundation': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('connections')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('protocol', 'text', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('port', 'integer', (c) => c.notNull())
          .addColumn('database', 'text')
          .addColumn('tls_json', 'text', (c) => c.notNull())
          .addColumn('username', 'text')
          .addColumn('secret_sealed', 'text')
          .addColumn('access', 'text', (c) => c.notNull())
          .addColumn('tags_json', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('groups_json', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text')
          .addColumn('revoked_at', 'text')
          .addColumn('last_used_at', 'text')
          .execute();
        // One live key per name; a revoked name can be reused.
        await sql`create unique index api_keys_live_name on api_keys (name) where revoked_at is null`.execute(
          db,
        );

        await db.schema
          .createTable('tokens')
          .addColumn('jti', 'text', (c) => c.primaryKey())
          .addColumn('parent_jti', 'text')
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('groups_json', 'text', (c) => c.notNull())
          .addColumn('scope_json', 'text', (c) => c.notNull())
          .addColumn('chain_json', 'text', (c) => c.notNull())
          .addColumn('issued_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .addColumn('issued_via', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('tokens_parent').on('tokens').column('parent_jti').execute();
        await db.schema.createIndex('tokens_subject').on('tokens').column('subject').execute();

        await db.schema
          .createTable('sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('root_subject', 'text', (c) => c.notNull())
          .addColumn('chain_json', 'text', (c) => c.notNull())
          .addColumn('token_id', 'text')
          .addColumn('parent_session_id', 'text')
          .addColumn('connection_name', 'text', (c) => c.notNull())
          .addColumn('protocol', 'text', (c) => c.notNull())
          .addColumn('client_addr', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('started_at', 'text', (c) => c.notNull())
          .addColumn('ended_at', 'text')
          .execute();
        await db.schema
          .createIndex('sessions_subject')
          .on('sessions')
          .columns(['subject', 'started_at'])
          .execute();
        await db.schema
          .createIndex('sessions_root')
          .on('sessions')
          .columns(['root_subject', 'started_at'])
          .execute();
        await db.schema.createIndex('sessions_started').on('sessions').column('started_at').execute();

        await db.schema
          .createTable('audit_log')
          .addColumn('seq', sql.raw(bigint), (c) => c.primaryKey())
          // Unique per event: a batch retried after a lost COMMIT acknowledgement is not written twice.
          .addColumn('event_id', 'text', (c) => c.notNull().unique())
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('actor_json', 'text', (c) => c.notNull())
          .addColumn('target', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('payload_json', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_log_time').on('audit_log').column('time').execute();

        await db.schema
          .createTable('audit_checkpoints')
          .addColumn('seq', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('warden_meta')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_policy': {
      async up(db: AnyDb) {
        // Rules applied through the API, one row per version; the newest row is in force.
        await db.schema
          .createTable('policy_versions')
          .addColumn('version', 'integer', (c) => c.primaryKey())
          .addColumn('rules_json', 'text', (c) => c.notNull())
          .addColumn('actor_json', 'text', (c) => c.notNull())
          .addColumn('comment', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        // A connection's own default for commands no rule decides; null: the global policy.default.
        await db.schema.alterTable('connections').addColumn('policy_default', 'text').execute();
      },
    },
    '0003_session_kill': {
      async up(db: AnyDb) {
        // Set by `warden sessions kill` on any gateway; the gateway carrying the session ends it.
        await db.schema.alterTable('sessions').addColumn('kill_requested', 'text').execute();
      },
    },
    '0005_connection_pool': {
      async up(db: AnyDb) {
        // `session`: the PostgreSQL listener reuses server connections across sessions.
        await db.schema
          .alterTable('connections')
          .addColumn('pool', 'text', (c) => c.notNull().defaultTo('none'))
          .execute();
      },
    },
    '0004_session_events': {
      async up(db: AnyDb) {
        // What each statement of a session did, written by the recorder in batches; values masked.
        await db.schema
          .createTable('session_events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('session_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('duration_ms', 'double precision')
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('params_json', 'text')
          .addColumn('decision', 'text', (c) => c.notNull())
          .addColumn('rules_json', 'text', (c) => c.notNull())
          .addColumn('rows', sql.raw(bigint))
          .addColumn('bytes', sql.raw(bigint), (c) => c.notNull())
          .addColumn('error', 'text')
          .addColumn('sample_json', 'text')
          .execute();
        await db.schema
          .createIndex('session_events_session')
          .on('session_events')
          .columns(['session_id', 'seq'])
          .execute();
      },
    },
    '0006_reviews': {
      async up(db: AnyDb) {
        // Commands held for human approval. `version` grows with every change, so two gateways
        // (or two approvers) recording a decision at once cannot overwrite each other's.
        await db.schema
          .createTable('reviews')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('decided_at', 'text')
          .addColumn('session_id', 'text', (c) => c.notNull())
          .addColumn('connection_name', 'text', (c) => c.notNull())
          .addColumn('command', 'text', (c) => c.notNull())
          .addColumn('rule', 'text', (c) => c.notNull())
          .addColumn('rules_json', 'text', (c) => c.notNull())
          .addColumn('message', 'text')
          .addColumn('requester_json', 'text', (c) => c.notNull())
          .addColumn('requester_root', 'text', (c) => c.notNull())
          .addColumn('approver_groups_json', 'text', (c) => c.notNull())
          .addColumn('approvals_required', 'integer', (c) => c.notNull())
          .addColumn('approvals_json', 'text', (c) => c.notNull())
          .addColumn('decided_by', 'text')
          .addColumn('reason', 'text')
          .execute();
        await db.schema
          .createIndex('reviews_status')
          .on('reviews')
          .columns(['status', 'created_at'])
          .execute();
        await db.schema.createIndex('reviews_session').on('reviews').column('session_id').execute();
      },
    },
    '0007_review_reuse': {
      async up(db: AnyDb) {
        // The statement's shape (constants replaced), for pre-approvals; and whether the requester
        // broke the glass (ran it before anyone approved, to be reviewed after the fact).
        await db.schema.alterTable('reviews').addColumn('fingerprint', 'text').execute();
        await db.schema
          .alterTable('reviews')
          .addColumn('break_glass', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        // A review of a statement that was not held (`hold: false`): once approved, the requester
        // may run the same statement again until then.
        await db.schema.alterTable('reviews').addColumn('reuse_until', 'text').execute();
        // SHA-256 of the statement's whole raw text: what an approval of a statement not held
        // lets run again (the stored text is masked, so it cannot tell two values apart).
        await db.schema.alterTable('reviews').addColumn('text_hash', 'text').execute();
        // What the rule said when the review was opened: held or not, the reuse window, break-glass.
        await db.schema
          .alterTable('reviews')
          .addColumn('options_json', 'text', (c) => c.notNull().defaultTo('{}'))
          .execute();
        // Approvals given ahead of time: a statement shape on a connection, for a subject or a group.
        await db.schema
          .createTable('preapprovals')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_name', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('rule', 'text', (c) => c.notNull())
          .addColumn('subject', 'text')
          .addColumn('group_name', 'text')
          .addColumn('review_id', 'text')
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema
          .createIndex('preapprovals_lookup')
          .on('preapprovals')
          .columns(['connection_name', 'fingerprint'])
          .execute();
      },
    },
    '0008_access_grants': {
      async up(db: AnyDb) {
        // Just-in-time access to a connection: a request, then a grant with an expiry (or a
        // denial). `version` grows with every change, like reviews, so concurrent deciders and
        // gateways expiring it cannot overwrite each other.
        await db.schema
          .createTable('access_grants')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connection_name', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('requested_by', 'text', (c) => c.notNull())
          .addColumn('requester_chain_json', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('decided_at', 'text')
          .addColumn('decided_by', 'text')
          .addColumn('decision_reason', 'text')
          .addColumn('starts_at', 'text')
          .addColumn('expires_at', 'text')
          .addColumn('revoked_at', 'text')
          .addColumn('revoked_by', 'text')
          .execute();
        await db.schema
          .createIndex('access_grants_lookup')
          .on('access_grants')
          .columns(['connection_name', 'subject', 'status'])
          .execute();
        await db.schema
          .createIndex('access_grants_status')
          .on('access_grants')
          .columns(['status', 'expires_at'])
          .execute();
      },
    },
    '0009_lineage': {
      async up(db: AnyDb) {
        // Who a delegation chain starts with, and the session a token was minted in: what
        // `audit trace` walks and what disabling a person revokes.
        await db.schema.alterTable('tokens').addColumn('root_subject', 'text').execute();
        await db.schema.alterTable('tokens').addColumn('parent_session_id', 'text').execute();
        await db.schema.createIndex('tokens_root').on('tokens').column('root_subject').execute();
        await db.schema.alterTable('sessions').addColumn('parent_token_id', 'text').execute();
        // W3C trace context the client sent (validated), and the application it named.
        await db.schema.alterTable('sessions').addColumn('traceparent', 'text').execute();
        await db.schema.alterTable('sessions').addColumn('application', 'text').execute();
        // Why a session ended, in words (idle, max duration, parent ended, credential revoked …).
        await db.schema.alterTable('sessions').addColumn('end_reason', 'text').execute();
        await db.schema.createIndex('sessions_token').on('sessions').column('token_id').execute();
        await db.schema.createIndex('sessions_parent').on('sessions').column('parent_session_id').execute();
        // People and services an admin disabled: their credentials stop working everywhere.
        await db.schema
          .createTable('disabled_subjects')
          .addColumn('subject', 'text', (c) => c.primaryKey())
          .addColumn('disabled_at', 'text', (c) => c.notNull())
          .addColumn('disabled_by', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0010_session_limits': {
      async up(db: AnyDb) {
        // A connection's own idle timeout, maximum duration and end_with_parent (JSON, ms), or null.
        await db.schema.alterTable('connections').addColumn('sessions_json', 'text').execute();
        // Set once a session is seen running after its parent session ended, whether or not it is ended for it.
        await db.schema.alterTable('sessions').addColumn('orphaned_at', 'text').execute();
      },
    },
    '0011_gateway_liveness': {
      async up(db: AnyDb) {
        // Every running gateway and when it was last heard from: the sessions of one that stopped
        // answering (a crash, a lost host) are ended for it by the others.
        await db.schema
          .createTable('gateways')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('pid', 'integer', (c) => c.notNull())
          .addColumn('started_at', 'text', (c) => c.notNull())
          .addColumn('seen_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.alterTable('sessions').addColumn('gateway_id', 'text').execute();
        await db.schema
          .createIndex('sessions_gateway')
          .on('sessions')
          .columns(['gateway_id', 'status'])
          .execute();
      },
    },
    '0012_session_search': {
      async up(db: AnyDb) {
        // Sessions are listed newest first by (started_at, id), the keyset the API pages on; the
        // filters an auditor uses most narrow through these without sorting the whole table.
        await db.schema
          .createIndex('sessions_started_id')
          .on('sessions')
          .columns(['started_at', 'id'])
          .execute();
        // Superseded by sessions_started_id; two candidates for the same order only split the planner.
        await db.schema.dropIndex('sessions_started').execute();
        await db.schema
          .createIndex('sessions_connection')
          .on('sessions')
          .columns(['connection_name', 'started_at', 'id'])
          .execute();
        await db.schema
          .createIndex('sessions_status')
          .on('sessions')
          .columns(['status', 'started_at', 'id'])
          .execute();
        // "Has denied/held commands": few statements are refused, so a small partial index answers it.
        await sql`create index session_events_flagged on session_events (session_id, decision) where decision <> 'allow'`.execute(
          db,
        );
        // Full-text search over recorded statements, one API for both dialects.
        if (dialect === 'postgres') {
          // Punctuation becomes spaces first, so words split as in SQLite (the parser would otherwise
          // keep `/a?b=c` or `x.y@z` whole as paths and e-mails). The same expression as Sessions.list.
          await sql`create index session_events_text on session_events using gin (to_tsvector('simple', regexp_replace(text, '[[:punct:][:space:]]+', ' ', 'g')))`.execute(
            db,
          );
          return;
        }
        // SQLite: an FTS5 index keyed by session_events' rowid, kept in step by triggers so every
        // insert path (the recorder's prepared batch included) fills it in its own transaction.
        // Accents stay significant, as in PostgreSQL's `simple` configuration.
        await sql`create virtual table session_events_fts using fts5(text, session_id unindexed, tokenize = 'unicode61 remove_diacritics 0')`.execute(
          db,
        );
        await sql`insert into session_events_fts (rowid, text, session_id) select rowid, text, session_id from session_events`.execute(
          db,
        );
        await sql`create trigger session_events_fts_insert after insert on session_events begin
          insert into session_events_fts (rowid, text, session_id) values (new.rowid, new.text, new.session_id);
        end`.execute(db);
        await sql`create trigger session_events_fts_delete after delete on session_events begin
          delete from session_events_fts where rowid = old.rowid;
        end`.execute(db);
      },
    },
    '0013_terminal_recordings': {
      async up(db: AnyDb) {
        // Terminal sessions as asciicast v2 text in bounded chunks: seq 0 holds the header line,
        // later ones whole event lines, `time` the first event's seconds (where a replay can seek).
        await db.schema
          .createTable('terminal_recordings')
          .addColumn('session_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('time', 'double precision', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('terminal_recordings_pk', ['session_id', 'seq'])
          .execute();
      },
    },
    '0014_search_index_queue': {
      async up(db: AnyDb) {
        if (dialect === 'postgres') return; // its GIN index (0012) is kept by the database
        // Statements are indexed for search a moment after they are written (search-index.ts): a
        // written row only queues its rowid, in the recorder's transaction. Rows written before
        // this migration are already in the index. The delete trigger drops a row from both, so a
        // rowid SQLite hands out again later is queued afresh, never indexed with another's text.
        // Each step can run again: a migration interrupted halfway is completed by the next start.
        await sql`create table if not exists session_events_fts_pending (event_rowid integer primary key)`.execute(
          db,
        );
        await sql`drop trigger if exists session_events_fts_insert`.execute(db);
        await sql`create trigger if not exists session_events_fts_queue after insert on session_events begin
          insert or ignore into session_events_fts_pending (event_rowid) values (new.rowid);
        end`.execute(db);
        await sql`drop trigger if exists session_events_fts_delete`.execute(db);
        await sql`create trigger session_events_fts_delete after delete on session_events begin
          delete from session_events_fts where rowid = old.rowid;
          delete from session_events_fts_pending where event_rowid = old.rowid;
        end`.execute(db);
      },
    },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
