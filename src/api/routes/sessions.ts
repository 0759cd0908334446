// /api/sessions: recorded sessions. Auditors see everyone's; any other caller sees only
// sessions they ran or that ran under a delegation chain rooted at them.
import { z } from 'zod';
import { hasRole } from '../../identity/identity.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import { sessionView } from '../schemas.js';
import type { ZodApp } from '../server.js';

export function sessionRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/sessions',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: 'List sessions, newest first',
        querystring: z.strictObject({
          subject: z.string().optional(),
          connection: z.string().optional(),
          status: z.string().optional(),
          before: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ sessions: z.array(sessionView) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const sessions = await ctx.sessions.list({
        ...req.query,
        visibleTo: hasRole(who, 'auditor') ? undefined : who.subject,
      });
      return { sessions };
    },
  );

  app.get(
    '/api/sessions/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: 'One session',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: sessionView },
      },
    },
    async (req) => {
      const who = caller(req);
      const s = await ctx.sessions.get(req.params.id);
      // Someone else's session answers exactly like a missing one: its existence is not disclosed.
      if (!s || (!hasRole(who, 'auditor') && s.subject !== who.subject && s.root_subject !== who.subject)) {
        throw notFound(`session ${req.params.id} does not exist`);
      }
      return s;
    },
  );
}
