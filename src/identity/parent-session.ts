// The Warden session a token is minted in (`X-Warden-Session`, or the session a shell runs):
// recorded on the child token so its sessions hang under their parent's. Only a live session
// of the minting caller itself may be named, so no one can graft a token under someone else's.
import type { Sessions } from '../store/sessions.js';
import type { Identity } from './identity.js';

export const PARENT_SESSION_HEADER = 'x-warden-session';
const SESSION_ID = /^[0-9a-f-]{36}$/;

/** Why `caller` may not name session `id` as the one it mints in (undefined when it may). */
export async function parentSessionProblem(
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
