// Recorded statements written straight through the store, for tests of what is read back (listing,
// search, the recorder): a test gives the fields it cares about, the rest are plain defaults.
import type { SessionEvent } from '../store/session-events.js';

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
