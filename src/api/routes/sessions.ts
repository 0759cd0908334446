// /api/sessions: recorded sessions. Auditors see everyone's; any other caller sees only
// sessions they ran or that ran under a delegation chain rooted at them.
import { z } from 'zod';
import { actorOf, hasRole } from '../../identity/identity.js';
import { ConflictError } from '../../store/connections.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import { sessionEventView, sessionView } from '../schemas.js';
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
    async (req) => visibleSession(ctx, caller(req), req.params.id),
  );

  app.get(
    '/api/sessions/:id/events',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: "One session's recorded statements, in order (parameters and samples masked)",
        params: z.object({ id: z.string().min(1) }),
        querystring: z.strictObject({
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
        }),
        response: { 200: z.object({ events: z.array(sessionEventView) }) },
      },
    },
    async (req) => {
      const s = await visibleSession(ctx, caller(req), req.params.id);
      return { events: await ctx.sessionEvents.list(s.id, req.query.limit) };
    },
  );

  app.post(
    '/api/sessions/:id/kill',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['sessions'],
        summary:
          'End a live session: the client gets a protocol-native message, the target connection closes',
        params: z.object({ id: z.string().min(1) }),
        body: z.strictObject({ reason: z.string().max(500).optional() }).default({}),
        response: { 200: z.object({ id: z.string(), result: z.enum(['killed', 'requested']) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const s = await ctx.sessions.get(req.params.id);
      if (!s) throw notFound(`session ${req.params.id} does not exist`);
      if (s.status !== 'active') throw new ConflictError(`session ${s.id} is not live (status ${s.status})`);
      const reason = req.body.reason;
      const message = `session terminated by ${who.subject}${reason ? `: ${reason}` : ''}`;
      // Carried here: ended now. Elsewhere: flagged, and the gateway carrying it ends it on its next poll.
      const result: 'killed' | 'requested' | null = ctx.live.kill(s.id, message)
        ? 'killed'
        : (await ctx.sessions.requestKill(s.id, message))
          ? 'requested'
          : null;
      if (result === null) throw new ConflictError(`session ${s.id} is not live`);
      await ctx.audit.append({
        type: 'session.kill',
        actor: actorOf(who, req.ip),
        target: `session:${s.id}`,
        outcome: 'success',
        payload: {
          session: s.id,
          connection: s.connection,
          subject: s.subject,
          result,
          ...(reason ? { reason } : {}),
        },
      });
      return { id: s.id, result };
    },
  );
}

/** The session when the caller may see it; someone else's answers exactly like a missing one. */
async function visibleSession(ctx: ApiContext, who: ReturnType<typeof caller>, id: string) {
  const s = await ctx.sessions.get(id);
  if (!s || (!hasRole(who, 'auditor') && s.subject !== who.subject && s.root_subject !== who.subject)) {
    throw notFound(`session ${id} does not exist`);
  }
  return s;
}
