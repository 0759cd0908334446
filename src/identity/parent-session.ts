// The Warden session a token is minted in (`X-Warden-Session`, or the session a shell runs):
// recorded on the child token so its sessions hang under their parent's. Only a live session
// of the minting caller itself may be named, so no one can graft a token under someone else's.
import type { Sessions } from '../store/sessions.js';
import type { Identity } from './identity.js';

export const PARENT_SESSION_HEADER = 'x-warden-session';
const SESSION_ID = /^[0-9a-f-]{36}$/;

/**
 * The session `caller` names (the `X-Warden-Session` header's value) as the one it mints a token in:
 * null when it names none, or why it may not name that one.
 */
export async function namedParentSession(
  sessions: Sessions,
  caller: Identity,
  header: string | string[] | undefined,
): Promise<{ id: string | null } | { problem: string }> {
  if (header === undefined) return { id: null };
  if (Array.isArray(header)) return { problem: `repeated ${PARENT_SESSION_HEADER}` };
  const problem = await parentSessionProblem(sessions, caller, header);
  return problem ? { problem } : { id: header };
}

/** Why `caller` may not name session `id` as the one it mints in (undefined when it may). */
async function parentSessionProblem(
  sessions: Sessions,
  caller: Identity,
  id: string,
): Promise<string | undefined> {
  if (!SESSION_ID.test(id)) return `${PARENT_SESSION_HEADER} must be a Warden session id`;
  const s = await sessions.get(id);
  if (!s) return `session ${id} is not known to this Warden`;
  if (s.subject !== caller.subject || s.root_subject !== caller.rootSubject) {
    return `session ${id} is not a session of ${caller.subject}: only a caller's own session can parent its tokens`;
  }
  if (s.status !== 'active') return `session ${id} has ended (${s.status})`;
  return undefined;
}
