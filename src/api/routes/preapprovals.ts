// /api/preapprovals: statement shapes approvers allowed ahead of time (made from a review with
// POST /api/reviews/:id/preapprove). Approvers and auditors see them all; anyone else those that
// cover them or that they made. Approvers, or whoever made one, revoke them.
import { z } from 'zod';
import { hasRole } from '../../identity/identity.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { forbidden } from '../errors.js';
import { preapprovalView } from '../schemas.js';
import type { ZodApp } from '../server.js';

export function preapprovalRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/preapprovals',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary: 'List pre-approvals in force (all=true: also expired and revoked ones) you may see',
        querystring: z.strictObject({ all: z.enum(['true', 'false']).optional() }),
        response: { 200: z.object({ preapprovals: z.array(preapprovalView) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const all = await ctx.preapprovals.list({ all: req.query.all === 'true' });
      const seesAll = hasRole(who, 'approver') || hasRole(who, 'auditor');
      const mine = (p: (typeof all)[number]) =>
        p.created_by === who.subject ||
        p.subject === who.rootSubject ||
        (p.group !== null && who.groups.includes(p.group));
      return { preapprovals: seesAll ? all : all.filter(mine) };
    },
  );

  app.post(
    '/api/preapprovals/:id/revoke',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['reviews'],
        summary: 'Revoke a pre-approval: the statements it covered ask again',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: preapprovalView },
      },
    },
    async (req) => {
      const who = caller(req);
      const p = await ctx.preapprovals.get(req.params.id);
      // Its creator, or anyone with the approver role.
      if (p && p.created_by !== who.subject && !hasRole(who, 'approver')) {
        throw forbidden('revoking a pre-approval needs the approver role, or to have made it');
      }
      return ctx.preapprovalDesk.revoke(req.params.id, who, req.ip);
    },
  );
}
