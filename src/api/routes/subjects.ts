// /api/subjects: disabling a person or service account (admins). Every credential naming it stops
// working on every gateway, its tokens and their descendants are revoked, and its live sessions end.
import { z } from 'zod';
import { actorOf } from '../../identity/identity.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { badRequest, notFound } from '../errors.js';
import type { ZodApp } from '../server.js';

const subjectParam = z.object({ subject: z.string().min(1).max(256) });
const disabledView = z.object({
  subject: z.string(),
  disabled_at: z.string(),
  disabled_by: z.string(),
  reason: z.string(),
});

export function subjectRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/subjects/disabled',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['identity'],
        summary: 'List the people and service accounts that are disabled',
        response: { 200: z.object({ disabled: z.array(disabledView) }) },
      },
    },
    async () => ({ disabled: await ctx.disabledSubjects.list() }),
  );

  app.post(
    '/api/subjects/:subject/disable',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['identity'],
        summary:
          'Disable a person or service account: its credentials are refused, its tokens (and their descendants) revoked, its live sessions ended',
        params: subjectParam,
        body: z.strictObject({ reason: z.string().trim().min(1).max(500) }),
        response: {
          200: z.object({
            subject: z.string(),
            already_disabled: z.boolean(),
            tokens_revoked: z.array(z.string()),
          }),
        },
      },
    },
    async (req) => {
      const who = caller(req);
      const { subject } = req.params;
      if (subject === who.subject || subject === who.rootSubject) {
        throw badRequest('you cannot disable yourself; ask another admin');
      }
      const fresh = await ctx.disabledSubjects.disable(subject, who.subject, req.body.reason);
      // Revoked even when it already was disabled: tokens minted in between by a lagging gateway go too.
      // The disable is in force from here on, so it is audited even if revoking fails.
      let tokens: string[] = [];
      let failure: string | undefined;
      try {
        tokens = await ctx.tokens.revokeSubject(subject);
      } catch (err) {
        failure = (err as Error).message;
        throw err;
      } finally {
        await ctx.audit.append({
          type: 'subject.disabled',
          actor: actorOf(who, req.ip),
          target: `subject:${subject}`,
          outcome: failure ? 'failure' : 'success',
          payload: {
            reason: req.body.reason,
            already_disabled: !fresh,
            tokens_revoked: tokens,
            ...(failure ? { revoke_error: failure } : {}),
          },
        });
      }
      return { subject, already_disabled: !fresh, tokens_revoked: tokens };
    },
  );

  app.post(
    '/api/subjects/:subject/enable',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['identity'],
        summary: 'Enable a disabled person or service account again (revoked tokens stay revoked)',
        params: subjectParam,
        response: { 200: z.object({ subject: z.string(), enabled: z.literal(true) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const { subject } = req.params;
      if (!(await ctx.disabledSubjects.enable(subject))) throw notFound(`${subject} is not disabled`);
      await ctx.audit.append({
        type: 'subject.enabled',
        actor: actorOf(who, req.ip),
        target: `subject:${subject}`,
        outcome: 'success',
      });
      return { subject, enabled: true as const };
    },
  );
}
