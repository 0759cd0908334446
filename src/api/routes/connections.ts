// /api/connections: targets Warden can reach. Everyone signed in may list them (without
// secrets); only admins change them, and every change is audited with what changed.
import { z } from 'zod';
import { connectionInput, connectionName, connectionPatch, connectionView } from '../../config/connection.js';
import { actorOf } from '../../identity/identity.js';
import { ConflictError } from '../../store/connections.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import type { ZodApp } from '../server.js';

const nameParams = z.object({ name: connectionName });

/** Field names (never values) that differ between two views, for the audit payload. */
function changedFields(before: object, after: object): string[] {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  return Object.keys(a).filter((k) => k !== 'updated_at' && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

export function connectionRoutes(app: ZodApp, ctx: ApiContext): void {
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
    async (req) => {
      const c = await ctx.connections.get(req.params.name);
      if (!c) throw notFound(`connection "${req.params.name}" does not exist`);
      return c;
    },
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
      const who = caller(req);
      const created = await ctx.connections.create(req.body, 'api');
      await ctx.audit.append({
        type: 'connection.created',
        actor: actorOf(who, req.ip),
        target: `connection:${created.name}`,
        outcome: 'success',
        payload: {
          protocol: created.protocol,
          host: created.target.host,
          port: created.target.port,
          tags: created.tags,
        },
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
      const who = caller(req);
      const existing = await ctx.connections.get(req.params.name);
      if (!existing) throw notFound(`connection "${req.params.name}" does not exist`);
      if (existing.source === 'config') {
        throw new ConflictError(
          `connection "${existing.name}" is defined in the config file; change it there`,
        );
      }
      const { before, after } = await ctx.connections.update(req.params.name, req.body);
      const fields = changedFields(before, after);
      if (req.body.credentials?.password !== undefined && !fields.includes('credentials'))
        fields.push('credentials');
      await ctx.audit.append({
        type: 'connection.updated',
        actor: actorOf(who, req.ip),
        target: `connection:${after.name}`,
        outcome: 'success',
        payload: { changed: fields, password_changed: req.body.credentials?.password !== undefined },
      });
      return after;
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
      const who = caller(req);
      const existing = await ctx.connections.get(req.params.name);
      if (!existing) throw notFound(`connection "${req.params.name}" does not exist`);
      if (existing.source === 'config') {
        throw new ConflictError(
          `connection "${existing.name}" is defined in the config file; remove it there`,
        );
      }
      const removed = await ctx.connections.remove(req.params.name);
      await ctx.audit.append({
        type: 'connection.deleted',
        actor: actorOf(who, req.ip),
        target: `connection:${removed.name}`,
        outcome: 'success',
        payload: {},
      });
      return removed;
    },
  );
}
