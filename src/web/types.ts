// The API's shapes, taken from the server's own zod schemas (types only: nothing of the server
// is bundled), so the console cannot drift from what the API answers.
import type { z } from 'zod';
import type {
  auditRecord,
  identityView,
  reviewView,
  sessionEventView,
  sessionView,
  verifyReport,
} from '../api/schemas.js';
import type { Trace, TraceNode, TraceSession } from '../audit/trace.js';
import type { ConnectionView } from '../config/connection.js';

export type Identity = z.infer<typeof identityView>;
export type Session = z.infer<typeof sessionView>;
export type SessionEvent = z.infer<typeof sessionEventView>;
/** As the reviews list, stream and detail answer: with `may_decide` for the caller. */
export type Review = z.infer<typeof reviewView> & { may_decide: boolean };
export type AuditRecord = z.infer<typeof auditRecord>;
export type VerifyReport = z.infer<typeof verifyReport>;
export type Connection = ConnectionView;
export type { Trace, TraceNode, TraceSession };

export type Role = Identity['roles'][number];

// The server's own rule (admins can do what auditors and approvers can), not a copy of it.
export { hasRole } from '../identity/identity.js';
