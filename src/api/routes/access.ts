// /api/access: just-in-time access to connections with `access: jit`. Anyone may ask for time on
// a connection; approvers (the approver role or an `access.approvers` group, never the requester
// or an agent acting for them) grant, deny and revoke. Approvers and auditors see every request;
// anyone else sees their own.
import { z } from 'zod';
import { durationAtLeast, formatDuration } from '../../config/duration.js';
import { hasRole, type Identity } from '../../identity/identity.js';
import { GRANT_STATUSES, type GrantView } from '../../store/grants.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { badRequest, notFound, refusedAsForbidden } from '../errors.js';
import type { ZodApp } from '../server.js';

const grantView = z.object({
  id: z.string(),
  connection: z.string(),
  subject: z.string(),
  requested_by: z.string(),
  requester_chain: z.array(z.string()),
  reason: z.string(),
  duration_ms: z.number(),
  status: z.enum(GRANT_STATUSES),
  version: z.number(),
  created_at: z.string(),
  decided_at: z.string().nullable(),
  decided_by: z.string().nullable(),
  decision_reason: z.string().nullable(),
  starts_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  revoked_by: z.string().nullable(),
});

const reasonBody = z.strictObject({ reason: z.string().max(1000).optional() }).default({});

export function accessRoutes(app: ZodApp, ctx: ApiContext): void {
  const seesAll = (who: Identity) => ctx.access.isApprover(who) || hasRole(who, 'auditor');
  const maxMs = ctx.config.access.max_duration;
  const withinMax = (ms: number | undefined) => {
    if (ms !== undefined && ms > maxMs) {
      throw badRequest(`body.for: access lasts at most ${formatDuration(maxMs)} (access.max_duration)`);
    }
  };

  /** The grant when the caller may see it; someone else's answers exactly like a missing one. */
  const visible = async (who: Identity, id: string): Promise<GrantView> => {
    const g = await ctx.grants.get(id);
    if (!g || !(seesAll(who) || g.subject === who.rootSubject)) {
      throw notFound(`access request ${id} does not exist`);
    }
    return g;
  };

  /** A refused access action, audited against its grant (or, for a request, its connection). */
  const accessRefusal = (
    action: string,
    on: { grant: string } | { connection: string },
    address: string,
  ) => ({
    type: `access.${action}`,
    target: 'grant' in on ? `access_grant:${on.grant}` : `connection:${on.connection}`,
    payload: { ...on },
    address,
  });

  app.post(
    '/api/access/requests',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['access'],
        summary: 'Ask for just-in-time access to a connection, for a while, with a reason',
        body: z.strictObject({
          connection: z.string().min(1).max(200),
          for: durationAtLeast(1000, '1s'),
          reason: z.string().min(1).max(1000),
        }),
        response: { 201: grantView },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      withinMax(req.body.for);
      const g = await refusedAsForbidden(
        ctx.audit,
        who,
        accessRefusal('request', { connection: req.body.connection }, req.ip),
        () =>
          ctx.access.request(
            who,
            { connection: req.body.connection, forMs: req.body.for, reason: req.body.reason },
            req.ip,
          ),
      );
      return reply.code(201).send(g);
    },
  );

  app.get(
    '/api/access',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['access'],
        summary: 'List access requests and grants, newest first',
        querystring: z.strictObject({
          /** One status or several, comma-separated. */
          status: z
            .string()
            .transform((v) => v.split(','))
            .pipe(z.array(z.enum(GRANT_STATUSES)))
            .optional(),
          connection: z.string().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ grants: z.array(grantView) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const grants = await ctx.grants.list({
        ...req.query,
        ...(seesAll(who) ? {} : { subject: who.rootSubject }),
      });
      return { grants };
    },
  );

  app.get(
    '/api/access/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['access'],
        summary: 'One access request or grant',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: grantView },
      },
    },
    async (req) => visible(caller(req), req.params.id),
  );

  app.post(
    '/api/access/:id/grant',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['access'],
        summary: 'Grant a pending request from now on, for the time asked or less (`for`)',
        params: z.object({ id: z.string().min(1) }),
        body: z
          .strictObject({
            reason: z.string().max(1000).optional(),
            for: durationAtLeast(1000, '1s').optional(),
          })
          .default({}),
        response: { 200: grantView },
      },
    },
    async (req) => {
      const who = caller(req);
      const g = await visible(who, req.params.id);
      withinMax(req.body.for);
      if (req.body.for !== undefined && req.body.for > g.duration_ms) {
        throw badRequest(
          `body.for: a grant may shorten the ${formatDuration(g.duration_ms)} asked for, not lengthen it`,
        );
      }
      return refusedAsForbidden(ctx.audit, who, accessRefusal('grant', { grant: g.id }, req.ip), () =>
        ctx.access.grant(
          g.id,
          who,
          {
            ...(req.body.reason ? { reason: req.body.reason } : {}),
            ...(req.body.for ? { forMs: req.body.for } : {}),
          },
          req.ip,
        ),
      );
    },
  );

  const verdicts = {
    deny: {
      summary: 'Deny a pending request',
      act: (id: string, who: Identity, reason: string | undefined, ip: string) =>
        ctx.access.deny(id, who, reason, ip),
    },
    revoke: {
      summary: 'Revoke a grant in force: new connections are refused, live ones end after the grace period',
      act: (id: string, who: Identity, reason: string | undefined, ip: string) =>
        ctx.access.revoke(id, who, reason, ip),
    },
    cancel: {
      summary: 'Withdraw your own pending request',
      act: (id: string, who: Identity, _reason: string | undefined, ip: string) =>
        ctx.access.cancel(id, who, ip),
    },
  } as const;
  for (const [verdict, v] of Object.entries(verdicts)) {
    app.post(
      `/api/access/:id/${verdict}`,
      {
        config: { auth: 'user' },
        schema: {
          tags: ['access'],
          summary: v.summary,
          params: z.object({ id: z.string().min(1) }),
          body: reasonBody,
          response: { 200: grantView },
        },
      },
      async (req) => {
        const who = caller(req);
        const g = await visible(who, req.params.id);
        return refusedAsForbidden(ctx.audit, who, accessRefusal(verdict, { grant: g.id }, req.ip), () =>
          v.act(g.id, who, req.body.reason, req.ip),
        );
      },
    );
  }
}
