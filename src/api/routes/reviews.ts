// /api/reviews: commands held for approval. Approvers, auditors and admins see every review;
// anyone else sees the reviews their groups may decide on and those of commands they (or agents
// acting for them) ran. Deciding is
// checked by the approvals desk: an approver group of the rule, never the requester's own chain.
import { z } from 'zod';
import { durationAtLeast } from '../../config/duration.js';
import { hasRole, type Identity } from '../../identity/identity.js';
import { ReviewForbiddenError } from '../../reviews/approvals.js';
import { REVIEW_STATUSES, type ReviewView } from '../../store/reviews.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { forbidden, notFound } from '../errors.js';
import { preapprovalView, reviewView } from '../schemas.js';
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
          /** One status or several, comma-separated (`pending,break-glass`: what awaits approvers). */
          status: z
            .string()
            .transform((v) => v.split(','))
            .pipe(z.array(z.enum(REVIEW_STATUSES)))
            .optional(),
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

  const verdicts = {
    approve: {
      summary: 'Approve a held command (it runs once the rule’s number of approvals is reached)',
      body: z.strictObject({ reason: z.string().max(1000).optional() }).default({}),
      act: (id: string, who: Identity, b: { reason?: string }, ip: string) =>
        ctx.approvals.approve(id, who, b.reason, ip),
    },
    deny: {
      summary: 'Deny a held command (its client gets an error naming you and your reason)',
      body: z.strictObject({ reason: z.string().max(1000).optional() }).default({}),
      act: (id: string, who: Identity, b: { reason?: string }, ip: string) =>
        ctx.approvals.deny(id, who, b.reason, ip),
    },
    'break-glass': {
      summary:
        'Run your own held command now, with a reason: audited as an alert, reviewed by approvers after the fact',
      body: z.strictObject({ reason: z.string().min(1).max(1000) }),
      act: (id: string, who: Identity, b: { reason?: string }, ip: string) =>
        ctx.approvals.breakGlass(id, who, b.reason ?? '', ip),
    },
  } as const;
  for (const [verdict, v] of Object.entries(verdicts)) {
    app.post(
      `/api/reviews/:id/${verdict}`,
      {
        config: { auth: 'user' },
        schema: {
          tags: ['reviews'],
          summary: v.summary,
          params: z.object({ id: z.string().min(1) }),
          body: v.body,
          response: { 200: reviewView },
        },
      },
      async (req) => {
        const who = caller(req);
        await visibleReview(ctx, who, req.params.id);
        return refusedAsForbidden(ctx, who, `review.${verdict}`, req.params.id, () =>
          v.act(req.params.id, who, req.body as { reason?: string }, req.ip),
        );
      },
    );
  }

  app.post(
    '/api/reviews/:id/preapprove',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary:
          'Pre-approve the statement shape of a review on its connection, for its requester or a group, for a period',
        params: z.object({ id: z.string().min(1) }),
        body: z.strictObject({
          for: durationAtLeast(60_000, '1m').prefault('8h'),
          group: z.string().min(1).max(200).optional(),
          reason: z.string().max(1000).optional(),
        }),
        response: { 201: preapprovalView },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      await visibleReview(ctx, who, req.params.id);
      const p = await refusedAsForbidden(ctx, who, 'review.preapprove', req.params.id, () =>
        ctx.approvals.preapprove(req.params.id, who, {
          forMs: req.body.for,
          ...(req.body.group ? { group: req.body.group } : {}),
          ...(req.body.reason ? { reason: req.body.reason } : {}),
          address: req.ip,
        }),
      );
      return reply.code(201).send(p);
    },
  );
}

/** Runs an approvals-desk action; a refusal (not an approver, not the requester) is audited and a 403. */
async function refusedAsForbidden<T>(
  ctx: ApiContext,
  who: Identity,
  action: string,
  reviewId: string,
  f: () => Promise<T>,
): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (!(err instanceof ReviewForbiddenError)) throw err;
    ctx.audit.record({
      type: `${action}.refused`,
      actor: { subject: who.subject, kind: who.kind, chain: who.chain, root: who.rootSubject },
      target: `review:${reviewId}`,
      outcome: 'denied',
      payload: { review: reviewId, message: err.message },
    });
    throw forbidden(err.message);
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
