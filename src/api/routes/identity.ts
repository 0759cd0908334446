// /api/whoami, /api/keys and /api/tokens: who the caller is, API keys for services and agents
// (admins only), and Warden's own short-lived tokens (any authenticated caller, never wider
// or longer-lived than the credential presented).

import { z } from 'zod';
import { durationAtLeast } from '../../config/duration.js';
import { apiKeyIdOf } from '../../identity/api-keys.js';
import { actorOf, hasRole, type Identity, scopeCovers } from '../../identity/identity.js';
import { namedParentSession, PARENT_SESSION_HEADER } from '../../identity/parent-session.js';
import { jtiOfToken, type TokenView } from '../../identity/warden-tokens.js';
import { redactCredentials } from '../../logging.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ApiError, badRequest, forbidden, notFound } from '../errors.js';
import { apiKeyView, identityView, tokenView } from '../schemas.js';
import type { ZodApp } from '../server.js';

const keyName = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/,
    'expected lowercase letters, digits, . _ - (at most 64)',
  );
const group = z.string().min(1).max(128).regex(/^\S+$/, 'groups cannot contain spaces');

export function whoami(identity: Identity): z.infer<typeof identityView> {
  return {
    subject: identity.subject,
    kind: identity.kind,
    groups: identity.groups,
    roles: identity.roles,
    root_subject: identity.rootSubject,
    chain: identity.chain,
    via: identity.via,
    token_id: identity.tokenId,
    issuer: identity.issuer,
    scope: identity.scope,
    expires_at: identity.expiresAt?.toISOString() ?? null,
  };
}

/** Whether `token` descends from a token `who` holds, or was delegated straight from `who`'s API key. */
async function delegatedBy(ctx: ApiContext, who: Identity, token: TokenView): Promise<boolean> {
  const lineage = [token, ...(await ctx.tokens.ancestors(token.jti))];
  if (lineage.slice(1).some((t) => t.subject === who.subject)) return true;
  const root = lineage[lineage.length - 1];
  return who.via === 'api_key' && root?.issued_via === `api_key:${who.tokenId}`;
}

export function identityRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/whoami',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['identity'],
        summary: 'The identity behind the presented credential',
        response: { 200: identityView },
      },
    },
    async (req) => whoami(caller(req)),
  );

  app.get(
    '/api/keys',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'List API keys (never the keys themselves)',
        querystring: z.strictObject({ all: z.enum(['true', 'false']).optional() }),
        response: { 200: z.object({ keys: z.array(apiKeyView) }) },
      },
    },
    async (req) => ({ keys: await ctx.apiKeys.list({ includeRevoked: req.query.all === 'true' }) }),
  );

  app.post(
    '/api/keys',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'Create an API key; the response is the only time the key is shown',
        body: z.strictObject({
          name: keyName,
          kind: z.enum(['service', 'agent']).default('service'),
          groups: z.array(group).max(64).default([]),
          expires_in: durationAtLeast(1000, '1s').optional(),
        }),
        response: { 201: z.object({ key: z.string(), api_key: apiKeyView }) },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      if (await ctx.apiKeys.get(req.body.name)) {
        throw new ApiError(
          409,
          'conflict',
          `a live API key named "${req.body.name}" exists; revoke it first`,
        );
      }
      const { key, view } = await ctx.apiKeys.create({
        name: req.body.name,
        kind: req.body.kind,
        groups: req.body.groups,
        createdBy: who.subject,
        expiresAt: req.body.expires_in === undefined ? null : new Date(Date.now() + req.body.expires_in),
      });
      await ctx.audit.append({
        type: 'key.created',
        actor: actorOf(who, req.ip),
        target: `api_key:${view.id}`,
        outcome: 'success',
        payload: { name: view.name, kind: view.kind, groups: view.groups, expires_at: view.expires_at },
      });
      return reply.code(201).send({ key, api_key: view });
    },
  );

  app.delete(
    '/api/keys/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'Revoke an API key (by id or live name)',
        params: z.object({ id: z.string().min(1) }),
        response: { 200: apiKeyView },
      },
    },
    async (req) => {
      const who = caller(req);
      const ref = apiKeyIdOf(req.params.id) ?? req.params.id;
      const key = await ctx.apiKeys.get(ref);
      if (!key) throw notFound(`API key "${redactCredentials(ref)}" does not exist`);
      const revoked = await ctx.apiKeys.revoke(key.id);
      const tokens = await ctx.tokens.revokeMintedFrom(`api_key:${key.id}`);
      await ctx.audit.append({
        type: 'key.revoked',
        actor: actorOf(who, req.ip),
        target: `api_key:${key.id}`,
        outcome: 'success',
        payload: { name: key.name, already_revoked: key.revoked_at !== null, tokens_revoked: tokens },
      });
      return revoked!;
    },
  );

  app.post(
    '/api/tokens',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['tokens'],
        summary: 'Mint a short-lived Warden token for the caller',
        body: z
          .strictObject({
            ttl: durationAtLeast(1000, '1s').optional(),
            scope: z.array(z.string().min(1).max(200)).max(64).optional(),
          })
          .default({}),
        response: {
          201: z.object({
            token: z.string(),
            token_type: z.literal('Bearer'),
            jti: z.string(),
            expires_at: z.string(),
          }),
        },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const scope = req.body.scope;
      if (scope) {
        const wider = scope.filter((s) => !scopeCovers(who.scope, s));
        if (wider.length > 0)
          throw badRequest(`scope ${wider.join(', ')} is wider than the presented credential's`);
      }
      const named = await namedParentSession(ctx.sessions, who, req.headers[PARENT_SESSION_HEADER]);
      if ('problem' in named) {
        // Naming a session that is not the caller's own is an attempt to graft a token under it.
        await ctx.audit.append({
          type: 'token.refused',
          actor: actorOf(who, req.ip),
          target: 'POST /api/tokens',
          outcome: 'denied',
          payload: { reason: named.problem },
        });
        throw badRequest(named.problem);
      }
      const parentSessionId = named.id;
      const minted = await ctx.tokens.mint(who, { ttlMs: req.body.ttl, scope, parentSessionId });
      await ctx.audit.append({
        type: 'token.issued',
        actor: actorOf(who, req.ip),
        target: `token:${minted.jti}`,
        outcome: 'success',
        payload: {
          expires_at: minted.expiresAt.toISOString(),
          scope: scope ?? who.scope,
          via: who.via,
          ...(parentSessionId ? { parent_session: parentSessionId } : {}),
        },
      });
      return reply.code(201).send({
        token: minted.token,
        token_type: 'Bearer' as const,
        jti: minted.jti,
        expires_at: minted.expiresAt.toISOString(),
      });
    },
  );

  app.get(
    '/api/tokens',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['tokens'],
        summary: "List live tokens: the caller's own, or anyone's for admins",
        querystring: z.strictObject({
          subject: z.string().optional(),
          all: z.enum(['true', 'false']).optional(),
        }),
        response: { 200: z.object({ tokens: z.array(tokenView) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const subject = hasRole(who, 'admin') ? req.query.subject : who.subject;
      return { tokens: await ctx.tokens.list({ subject, includeInactive: req.query.all === 'true' }) };
    },
  );

  app.delete(
    '/api/tokens/:jti',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a token and every token minted from it',
        params: z.object({ jti: z.string().min(1) }),
        response: { 200: z.object({ revoked: z.array(z.string()) }) },
      },
    },
    async (req) => {
      const who = caller(req);
      const jti = jtiOfToken(req.params.jti) ?? req.params.jti;
      const token = await ctx.tokens.get(jti);
      if (!token) throw notFound(`token ${redactCredentials(jti)} does not exist`);
      if (token.subject !== who.subject && !hasRole(who, 'admin') && !(await delegatedBy(ctx, who, token)))
        throw forbidden('you can only revoke your own tokens and those delegated from them');
      const revoked = await ctx.tokens.revoke(token.jti);
      await ctx.audit.append({
        type: 'token.revoked',
        actor: actorOf(who, req.ip),
        target: `token:${token.jti}`,
        outcome: 'success',
        payload: { subject: token.subject, revoked },
      });
      return { revoked };
    },
  );
}
