// The control-plane HTTP server (fastify): health and metrics, the OpenAPI document, and the
// /api routes. Request and response schemas are zod, shared with the OpenAPI generator.
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { VERSION } from '../version.js';
import { installAuth } from './auth.js';
import type { ApiContext } from './context.js';
import { installErrorHandler } from './errors.js';
import { accessRoutes } from './routes/access.js';
import { auditRoutes } from './routes/audit.js';
import { connectionRoutes } from './routes/connections.js';
import { identityRoutes } from './routes/identity.js';
import { loginRoutes } from './routes/login.js';
import { oauthRoutes } from './routes/oauth.js';
import { policyRoutes } from './routes/policy.js';
import { preapprovalRoutes } from './routes/preapprovals.js';
import { recordingRoutes } from './routes/recordings.js';
import { reviewRoutes } from './routes/reviews.js';
import { sessionStreamRoute } from './routes/session-stream.js';
import { sessionRoutes } from './routes/sessions.js';
import { subjectRoutes } from './routes/subjects.js';
import { installStreamSeats } from './stream-guard.js';
import { installWebConsole, loginOrigins } from './web-console.js';

export type ZodApp = ReturnType<typeof typed>;

function typed(app: FastifyInstance) {
  return app.withTypeProvider<ZodTypeProvider>();
}

export async function buildApi(ctx: ApiContext): Promise<FastifyInstance> {
  const tls = ctx.config.api.tls;
  const app = Fastify({
    loggerInstance: ctx.log.child({ component: 'api' }),
    bodyLimit: ctx.config.api.body_limit,
    // Long enough for a whole token pasted where its id is expected (it is reduced to the id).
    routerOptions: { maxParamLength: 8192 },
    trustProxy: false,
    ...(tls ? { https: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } } : {}),
    // HTTP and HTTPS instances differ only in their server type, which no route touches.
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  installAuth(app, ctx);
  installStreamSeats(app);

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    ctx.metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Warden API',
        version: VERSION,
        description: 'Control plane of the Warden access gateway.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const zapp = typed(app);
  zapp.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'The process is up',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );
  zapp.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'The store is reachable and accepting audit events, and the session recorder keeps up',
        response: {
          200: z.object({
            status: z.literal('ready'),
            store: z.string(),
            audit_queue: z.number(),
            recorder_queue: z.number(),
          }),
          503: z.object({
            status: z.literal('unavailable'),
            reason: z.string(),
            audit_queue: z.number(),
            recorder_queue: z.number(),
          }),
        },
      },
    },
    async (_req, reply) => {
      const queues = { audit_queue: ctx.audit.queued, recorder_queue: ctx.recorder.queued };
      const unavailable = (reason: string) =>
        reply.code(503).send({ status: 'unavailable' as const, reason, ...queues });
      try {
        await ctx.store.ping();
      } catch (err) {
        return unavailable(`store: ${(err as Error).message}`);
      }
      if (ctx.audit.lastError) {
        return unavailable(`audit writes failing: ${ctx.audit.lastError.message}`);
      }
      // Over its bound the recorder drops statement events and new sessions are refused.
      if (!ctx.recorder.healthy) {
        return unavailable(
          `session recorder queue full: ${ctx.recorder.queued} statement events unwritten, ` +
            `${ctx.recorder.dropped} dropped; new sessions are refused until the store accepts them`,
        );
      }
      return { status: 'ready' as const, store: ctx.store.dialect, ...queues };
    },
  );
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    ctx.metrics.auditQueue.set(ctx.audit.queued);
    ctx.metrics.recorderQueue.set(ctx.recorder.queued);
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/.well-known/jwks.json', { schema: { hide: true } }, async () => ({
    keys: [ctx.signingKey.publicJwk],
  }));

  identityRoutes(zapp, ctx);
  subjectRoutes(zapp, ctx);
  loginRoutes(zapp, ctx);
  oauthRoutes(zapp, ctx);
  connectionRoutes(zapp, ctx);
  sessionRoutes(zapp, ctx);
  sessionStreamRoute(zapp, ctx);
  recordingRoutes(zapp, ctx);
  reviewRoutes(zapp, ctx);
  preapprovalRoutes(zapp, ctx);
  accessRoutes(zapp, ctx);
  auditRoutes(zapp, ctx);
  policyRoutes(zapp, ctx);
  await installWebConsole(app, {
    connectOrigins: loginOrigins(
      ctx.config.identity.oidc.flatMap((i) => (i.login ? [i.issuer] : [])),
      (issuer, err) =>
        ctx.log.warn(
          { issuer, err: err.message },
          'web console: the issuer’s discovery document could not be read',
        ),
    ),
  });
  return app;
}
