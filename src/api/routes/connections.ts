// /api/connections: targets Warden can reach. Everyone signed in may list them (without
// secrets); only admins change them, and every change is audited with what changed.
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  type ConnectionView,
  connectionInput,
  connectionName,
  connectionPatch,
  connectionView,
} from '../../config/connection.js';
import { actorOf } from '../../identity/identity.js';
import { ConflictError } from '../../store/connections.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import type { ZodApp } from '../server.js';

const nameParams = z.object({ name: connectionName });

/** POST /api/connections/:name/test answers this whether or not the target let Warden in. */
const connectionTestView = z.discriminatedUnion('ok', [
  z.object({ name: z.string(), ok: z.literal(true), latency_ms: z.number(), server_version: z.string() }),
  z.object({ name: z.string(), ok: z.literal(false), latency_ms: z.number(), error: z.string() }),
]);

/** Field names (never values) that differ between two views, for the audit payload. */
function changedFields(before: object, after: object): string[] {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  return Object.keys(a).filter((k) => k !== 'updated_at' && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

export function connectionRoutes(app: ZodApp, ctx: ApiContext): void {
  const existing = async (name: string): Promise<ConnectionView> => {
    const c = await ctx.connections.get(name);
    if (!c) throw notFound(`connection "${name}" does not exist`);
    return c;
  };
  /** A connection the API may change: the config file owns the ones it defines. */
  const apiOwned = async (name: string, verb: string): Promise<ConnectionView> => {
    const c = await existing(name);
    if (c.source === 'config') {
      throw new ConflictError(`connection "${c.name}" is defined in the config file; ${verb} it there`);
    }
    return c;
  };
  const audited = (req: FastifyRequest, type: string, name: string, payload: Record<string, unknown>) =>
    ctx.audit.append({
      type,
      actor: actorOf(caller(req), req.ip),
      target: `connection:${name}`,
      outcome: 'success',
      payload,
    });

  app.get(
    '/api/connections',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['connections'],
        summary: 'List connections (never their secrets)',
        response: { 200: z.object({ connections: z.array(connectionView) }) },
      },
    },
    async () => ({ connections: await ctx.connections.list() }),
  );

  app.get(
    '/api/connections/:name',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['connections'],
        summary: 'Show one connection',
        params: nameParams,
        response: { 200: connectionView },
      },
    },
    async (req) => existing(req.params.name),
  );

  app.post(
    '/api/connections',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['connections'],
        summary: 'Create a connection; its password is sealed on arrival',
        body: connectionInput,
        response: { 201: connectionView },
      },
    },
    async (req, reply) => {
      const created = await ctx.connections.create(req.body, 'api');
      await audited(req, 'connection.created', created.name, {
        protocol: created.protocol,
        host: created.target.host,
        port: created.target.port,
        tags: created.tags,
      });
      return reply.code(201).send(created);
    },
  );

  app.patch(
    '/api/connections/:name',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['connections'],
        summary: 'Change a connection; `credentials.password: null` removes the secret',
        params: nameParams,
        body: connectionPatch,
        response: { 200: connectionView },
      },
    },
    async (req) => {
      await apiOwned(req.params.name, 'change');
      const { before, after } = await ctx.connections.update(req.params.name, req.body);
      const fields = changedFields(before, after);
      if (req.body.credentials?.password !== undefined && !fields.includes('credentials'))
        fields.push('credentials');
      await audited(req, 'connection.updated', after.name, {
        changed: fields,
        password_changed: req.body.credentials?.password !== undefined,
      });
      return after;
    },
  );

  app.post(
    '/api/connections/:name/test',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['connections'],
        summary: "Log in to a connection's target as a session would, and say whether it worked",
        description:
          'Connects with the stored credentials and the connection’s TLS settings, logs in, reads the ' +
          'server version and leaves (10 s at most). A target that cannot be reached or refuses the ' +
          'login is not an HTTP error: the answer is `ok: false` with the reason in `error`. Audited ' +
          'as `connection.test`.',
        params: nameParams,
        response: { 200: connectionTestView },
      },
    },
    async (req) => {
      const c = await existing(req.params.name);
      const result = await ctx.probeConnection(c);
      await ctx.audit.append({
        type: 'connection.test',
        actor: actorOf(caller(req), req.ip),
        target: `connection:${c.name}`,
        outcome: result.ok ? 'success' : 'failure',
        payload: { protocol: c.protocol, host: c.target.host, port: c.target.port, ...result },
      });
      return { name: c.name, ...result };
    },
  );

  app.delete(
    '/api/connections/:name',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['connections'],
        summary: 'Remove a connection',
        params: nameParams,
        response: { 200: connectionView },
      },
    },
    async (req) => {
      await apiOwned(req.params.name, 'remove');
      const removed = await ctx.connections.remove(req.params.name);
      await audited(req, 'connection.deleted', removed.name, {});
      return removed;
    },
  );
}
