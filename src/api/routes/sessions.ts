// /api/sessions: recorded sessions. Auditors see everyone's; any other caller sees only
// sessions they ran or that ran under a delegation chain rooted at them.
import { z } from 'zod';
import { actorOf, hasRole } from '../../identity/identity.js';
import { ConflictError } from '../../store/connections.js';
import type { SessionKey } from '../../store/sessions.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { badRequest, notFound } from '../errors.js';
import { sessionEventView, sessionView } from '../schemas.js';
import type { ZodApp } from '../server.js';
import { visibleSession } from '../session-visibility.js';
import { parseTime } from './audit.js';

export function sessionRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/sessions',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: 'List sessions, newest first, filtered and searched; paged by the cursor `next`',
        querystring: z.strictObject({
          subject: z.string().optional(),
          root: z.string().optional(),
          agent: z.string().optional(),
          connection: z.string().optional(),
          protocol: z.string().optional(),
          status: z.string().optional(),
          since: z.string().optional(),
          until: z.string().optional(),
          flagged: z.enum(['denied', 'held']).optional(),
          q: z.string().max(1000).optional(),
          cursor: z.string().optional(),
          before: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ sessions: z.array(sessionView), next: z.string().nullable() }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const { q, cursor, since, until, limit, ...rest } = req.query;
      // One more than asked tells whether another page follows without a count over the table.
      const rows = await ctx.sessions.list({
        ...rest,
        since: parseTime(since, 'since'),
        until: parseTime(until, 'until'),
        search: q,
        after: cursor === undefined ? undefined : decodeCursor(cursor),
        limit: limit + 1,
        visibleTo: hasRole(who, 'auditor') ? undefined : who.subject,
      });
      const sessions = rows.slice(0, limit);
      const last = sessions.at(-1);
      return { sessions, next: rows.length > limit && last ? encodeCursor(last) : null };
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

/** The cursor after a page: opaque to clients, the (started_at, id) of its last session. */
function encodeCursor(s: SessionKey): string {
  return Buffer.from(JSON.stringify([s.started_at, s.id])).toString('base64url');
}

function decodeCursor(cursor: string): SessionKey {
  try {
    const [started_at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (typeof started_at === 'string' && typeof id === 'string') return { started_at, id };
  } catch {
    // answered below
  }
  throw badRequest('cursor: not a cursor this API returned (pass `next` from the previous page)');
}
