// /api/reviews: commands held for approval. Approvers, auditors and admins see every review;
// anyone else sees the reviews their groups may decide on and those of commands they (or agents
// acting for them) ran. Deciding is
// checked by the approvals desk: an approver group of the rule, never the requester's own chain.
import { z } from 'zod';
import { hasRole, type Identity } from '../../identity/identity.js';
import { ReviewForbiddenError } from '../../reviews/approvals.js';
import { REVIEW_STATUSES, type ReviewView } from '../../store/reviews.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { forbidden, notFound } from '../errors.js';
import { reviewView } from '../schemas.js';
import type { ZodApp } from '../server.js';

const seesAll = (who: Identity): boolean => hasRole(who, 'approver') || hasRole(who, 'auditor');

export function reviewRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/reviews',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary: 'List reviews, newest first',
        querystring: z.strictObject({
          status: z.enum(REVIEW_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ reviews: z.array(reviewView) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const reviews = await ctx.reviews.list({
        ...req.query,
        ...(seesAll(who) ? {} : { visibleTo: { root: who.rootSubject, groups: who.groups } }),
      });
      return { reviews };
    },
  );

  app.get(
    '/api/reviews/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary: 'One review',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: reviewView },
      },
    },
    async (req) => visibleReview(ctx, caller(req), req.params.id),
  );

  for (const verdict of ['approve', 'deny'] as const) {
    app.post(
      `/api/reviews/:id/${verdict}`,
      {
        config: { auth: 'user' },
        schema: {
          tags: ['reviews'],
          summary:
            verdict === 'approve'
              ? 'Approve a held command (it runs once the rule’s number of approvals is reached)'
              : 'Deny a held command (its client gets an error naming you and your reason)',
          params: z.object({ id: z.string().min(1) }),
          body: z.strictObject({ reason: z.string().max(1000).optional() }).default({}),
          response: { 200: reviewView },
        },
      },
      async (req) => {
        const who = caller(req);
        await visibleReview(ctx, who, req.params.id);
        try {
          return verdict === 'approve'
            ? await ctx.approvals.approve(req.params.id, who, req.body.reason, req.ip)
            : await ctx.approvals.deny(req.params.id, who, req.body.reason, req.ip);
        } catch (err) {
          if (err instanceof ReviewForbiddenError) {
            ctx.audit.record({
              type: `review.${verdict}.refused`,
              actor: { subject: who.subject, kind: who.kind, chain: who.chain, root: who.rootSubject },
              target: `review:${req.params.id}`,
              outcome: 'denied',
              payload: { review: req.params.id, message: err.message },
            });
            throw forbidden(err.message);
          }
          throw err;
        }
      },
    );
  }
}

/** The review when the caller may see it; someone else's answers exactly like a missing one. */
async function visibleReview(ctx: ApiContext, who: Identity, id: string): Promise<ReviewView> {
  const r = await ctx.reviews.get(id);
  const mayDecide = r?.approver_groups.some((g) => who.groups.includes(g));
  if (!r || !(seesAll(who) || mayDecide || r.requester.root === who.rootSubject)) {
    throw notFound(`review ${id} does not exist`);
  }
  return r;
}
