// A decision a desk refuses to this caller (not an approver, their own request, an agent): the
// API answers it 403 and audits the attempt (api/errors.ts refusedAsForbidden).
export class DecisionForbiddenError extends Error {
  override name = 'DecisionForbiddenError';
}
