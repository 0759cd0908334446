// Recorded statements written straight through the store, for tests of what is read back (listing,
// search, the recorder), and the sessions they belong to: a test gives the fields it cares about, the
// rest are plain defaults.
import type { SessionEvent } from '../store/session-events.js';
import type { NewSession } from '../store/sessions.js';

/** A session row: alice, a person, on `orders` over PostgreSQL, active since now, unless given. */
export function sessionRow(s: Pick<NewSession, 'id'> & Partial<NewSession>): NewSession {
  return {
    subject: 'alice',
    kind: 'human',
    root_subject: 'alice',
    chain: [],
    token_id: null,
    parent_session_id: null,
    connection: 'orders',
    protocol: 'postgres',
    client_addr: null,
    status: 'active',
    started_at: new Date().toISOString(),
    ended_at: null,
    ...s,
  };
}

/** A statement event of `session_id`; its id is `<session_id>-<seq>` unless given. */
export function statementEvent(
  e: Pick<SessionEvent, 'session_id' | 'seq' | 'text'> & Partial<SessionEvent>,
): SessionEvent {
  return {
    id: `${e.session_id}-${e.seq}`,
    kind: 'statement',
    time: new Date().toISOString(),
    duration_ms: 1,
    params: null,
    decision: 'allow',
    rules: [],
    rows: null,
    bytes: 0,
    error: null,
    sample: null,
    ...e,
  };
}
