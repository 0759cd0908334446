// Who may see a recorded session: auditors see every one; anyone else only sessions they ran
// or that ran under a delegation chain rooted at them. Shared by the routes that read sessions.
import { hasRole, type Identity } from '../identity/identity.js';
import type { SessionView } from '../store/sessions.js';
import type { ApiContext } from './context.js';
import { notFound } from './errors.js';

/** The session when `who` may see it; someone else's answers exactly like a missing one. */
export async function visibleSession(
  ctx: Pick<ApiContext, 'sessions'>,
  who: Identity,
  id: string,
): Promise<SessionView> {
  const s = await ctx.sessions.get(id);
  if (!s || (!hasRole(who, 'auditor') && s.subject !== who.subject && s.root_subject !== who.subject)) {
    throw notFound(`session ${id} does not exist`);
  }
  return s;
}
