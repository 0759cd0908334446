// Recorded statements written straight through the store, for tests of what is read back (listing,
// search): only the fields those tests vary are given.
import type { SessionEvent } from '../store/session-events.js';

/** Statement event number `seq` (unique across the test) of `sessionId`. */
export function statementEvent(
  seq: number,
  sessionId: string,
  text: string,
  decision: SessionEvent['decision'],
  time = new Date().toISOString(),
): SessionEvent {
  return {
    id: `ev-${seq}`,
    session_id: sessionId,
    seq,
    kind: 'statement',
    time,
    duration_ms: 1,
    text,
    params: null,
    decision,
    rules: [],
    rows: null,
    bytes: 0,
    error: null,
    sample: null,
  };
}
