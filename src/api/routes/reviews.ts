// /api/reviews: commands held for approval. Approvers, auditors and admins see every review;
// anyone else sees the reviews their groups may decide on and those of commands they (or agents
// acting for them) ran. Deciding is checked by the approvals desk: an approver group of the rule,
// never the requester's own chain.
// /api/reviews/stream is the same view live, as server-sent events.
import { z } from 'zod';
import { durationAtLeast } from '../../config/duration.js';
import { hasRole, type Identity } from '../../identity/identity.js';
import { analyzeCommand } from '../../policy/analyze.js';
import { mayDecide } from '../../reviews/approvals.js';
import { ReviewFeed } from '../../reviews/feed.js';
import { REVIEW_STATUSES, type ReviewStatus, type ReviewView } from '../../store/reviews.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { notFound, refusedAsForbidden } from '../errors.js';
import { EVENT_STREAM_RESPONSE, type EventStream } from '../event-stream.js';
import { preapprovalView, reviewView } from '../schemas.js';
import type { ZodApp } from '../server.js';
import { LiveStreams } from '../stream-guard.js';

/** Reviews waiting for approvers: pending, and broken glass to review after the fact. */
const AWAITING: ReviewStatus[] = ['pending', 'break-glass'];

const seesAll = (who: Identity): boolean => hasRole(who, 'approver') || hasRole(who, 'auditor');

/** Whether `who` may see `r`: everything for approvers and auditors, else their groups' and their own. */
function mayView(who: Identity, r: ReviewView): boolean {
  return (
    seesAll(who) ||
    r.approver_groups.some((g) => who.groups.includes(g)) ||
    r.requester.root === who.rootSubject
  );
}

/** How many reviews a stream's snapshot holds (the newest). */
const SNAPSHOT_LIMIT = 200;

/** A review as one caller sees it: with whether that caller may approve or deny it now. */
const callerReview = reviewView.extend({
  may_decide: z
    .boolean()
    .describe(
      'You may approve or deny it now: it awaits approvers (pending, or break-glass to ratify), you are one of them, and not its requester or in its chain',
    ),
});

function forCaller(r: ReviewView, who: Identity): z.infer<typeof callerReview> {
  // Break-glass runs await approvers too: they ratify or flag them after the fact.
  let may = AWAITING.includes(r.status);
  try {
    if (may) mayDecide(r, who);
  } catch {
    may = false;
  }
  return { ...r, may_decide: may };
}

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
        response: { 200: z.object({ reviews: z.array(callerReview) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const reviews = await ctx.reviews.list({
        ...req.query,
        ...(seesAll(who) ? {} : { visibleTo: { root: who.rootSubject, groups: who.groups } }),
      });
      // The store's group match is a coarse text match (case-blind on SQLite): decided exactly here.
      return { reviews: reviews.filter((r) => mayView(who, r)).map((r) => forCaller(r, who)) };
    },
  );

  streamRoute(app, ctx);

  app.get(
    '/api/reviews/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary: 'One review, with the facts its command was judged on',
        description:
          '`facts` is what the analyzer reads from the held command (statement kinds, tables, ' +
          'whether a WHERE clause is present, …), read again from the held command as stored: the ' +
          'same analysis the rules were matched with.',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: callerReview.extend({ facts: z.record(z.string(), z.unknown()).nullable() }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const r = await visibleReview(ctx, who, req.params.id);
      const conn = await ctx.connections.get(r.connection);
      // A connection removed since the hold leaves no protocol to read the command with.
      return { ...forCaller(r, who), facts: conn ? { ...analyzeCommand(conn.protocol, r.command) } : null };
    },
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
        const refusal = reviewRefusal(`review.${verdict}`, req.params.id, req.ip);
        return refusedAsForbidden(ctx.audit, who, refusal, () =>
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
      const refusal = reviewRefusal('review.preapprove', req.params.id, req.ip);
      const p = await refusedAsForbidden(ctx.audit, who, refusal, () =>
        ctx.preapprovalDesk.create(req.params.id, who, {
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

const reviewRefusal = (type: string, review: string, address: string) => ({
  type,
  target: `review:${review}`,
  payload: { review },
  address,
});

/** The review when the caller may see it; someone else's answers exactly like a missing one. */
async function visibleReview(ctx: ApiContext, who: Identity, id: string): Promise<ReviewView> {
  const r = await ctx.reviews.get(id);
  if (!r || !mayView(who, r)) {
    throw notFound(`review ${id} does not exist`);
  }
  return r;
}

/**
 * GET /api/reviews/stream: an `event: snapshot` with the caller's reviews (pending ones unless
 * `status=all`), then an `event: review` (id `<review>:<version>`) for every later change to a
 * review the caller may see, made through this gateway or any other on the store (polled each
 * second). Events are not numbered across reviews, so Last-Event-ID is ignored: a reconnecting
 * client gets a fresh snapshot.
 */
function streamRoute(app: ZodApp, ctx: ApiContext): void {
  const feed = new ReviewFeed(ctx.reviews, ctx.approvals, {
    onError: (err) => ctx.log.warn({ err }, 'review stream: reading the store failed; retrying'),
  });
  const live = new LiveStreams(app, ctx);
  app.addHook('preClose', async () => feed.close());

  app.get(
    '/api/reviews/stream',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary: 'Reviews live (server-sent events): a snapshot, then every change you may see',
        description:
          '`event: snapshot` with `{"reviews": [...]}` (each with `may_decide` for you; newest first, at most 200; pending ones unless ' +
          '`status=all`), then `event: review` with a review each time one you may see is created, ' +
          'approved, denied, expires or is cancelled, on any gateway sharing the store. It closes when ' +
          'your credential expires or is revoked; at most 20 open streams per caller (429). A `: ping` ' +
          'comment every 15 s. A reconnecting client gets a fresh snapshot (Last-Event-ID is ignored).',
        querystring: z.strictObject({ status: z.enum(['pending', 'all']).default('pending') }),
        response: EVENT_STREAM_RESPONSE,
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const sent = new Map<string, number>();
      let stream: EventStream | undefined;
      // Changes that come while the snapshot is read wait for it; those it already holds are dropped.
      const early: ReviewView[] = [];
      const pass = (r: ReviewView) => {
        if (!mayView(who, r)) return;
        if (!stream) return void early.push(r);
        if ((sent.get(r.id) ?? 0) >= r.version) return;
        sent.set(r.id, r.version);
        stream.send('review', forCaller(r, who), `${r.id}:${r.version}`);
      };
      const unsubscribe = feed.subscribe(pass);
      let snapshot: ReviewView[];
      try {
        snapshot = await ctx.reviews
          .list({
            // Default: what awaits approvers (pending, and break-glass ones to review after the fact).
            ...(req.query.status === 'all' ? {} : { status: AWAITING }),
            ...(seesAll(who) ? {} : { visibleTo: { root: who.rootSubject, groups: who.groups } }),
            limit: SNAPSHOT_LIMIT,
          })
          .then((rows) => rows.filter((r) => mayView(who, r)));
      } catch (err) {
        unsubscribe();
        throw err;
      }
      let s: EventStream;
      try {
        s = live.start(req, reply, who);
      } catch (err) {
        unsubscribe();
        throw err;
      }
      s.whenClosed(unsubscribe);
      for (const r of snapshot) sent.set(r.id, r.version);
      s.send('snapshot', { reviews: snapshot.map((r) => forCaller(r, who)) });
      stream = s;
      for (const r of early.splice(0)) pass(r);
      return reply;
    },
  );
}
