// Who may decide on a desk's requests (reviews, access grants), and the refusal when they may
// not: the API answers it 403 and audits the attempt (api/errors.ts refusedAsForbidden).
import type { Identity } from '../identity/identity.js';

export class DecisionForbiddenError extends Error {
  override name = 'DecisionForbiddenError';
}

/**
 * Whether `who` is one of the people a request belongs to (its requester, root subject and every
 * actor of its chain), directly or through an agent acting for them.
 */
export function isRequester(people: readonly string[], who: Identity): boolean {
  return people.includes(who.subject) || people.includes(who.rootSubject);
}

/** A delegated token keeps its parent's groups but only the user role: agents never decide. */
export function refuseAgents(who: Identity, what: string): void {
  if (who.chain.length > 0) {
    throw new DecisionForbiddenError(
      `${what}: decisions need your own credential, not a token delegated to an agent`,
    );
  }
}
