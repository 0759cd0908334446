// Authentication and role checks for API routes. Each route declares the role it needs in
// its config; refusals are answered with 401/403 and written to the audit trail.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerFrom } from '../identity/authenticate.js';
import { AuthError } from '../identity/errors.js';
import { actorOf, hasRole, type Identity, type Role } from '../identity/identity.js';
import { isUnavailable } from '../store/store.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';

export type RouteAuth = Role | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    identity: Identity | undefined;
  }
}

/** The caller's identity on a route that required authentication. */
export function caller(req: FastifyRequest): Identity {
  if (!req.identity) throw new ApiError(401, 'unauthenticated', 'authentication required');
  return req.identity;
}

export function installAuth(app: FastifyInstance, ctx: ApiContext): void {
  app.decorateRequest('identity', undefined);
  app.addHook('onRequest', async (req) => {
    const need = req.routeOptions.config?.auth ?? 'none';
    if (need === 'none') return;
    const credential = bearerFrom(req.headers.authorization);
    try {
      req.identity = await ctx.authenticator.authenticate(credential);
    } catch (err) {
      const refused = err instanceof AuthError;
      if (refused) ctx.metrics.authRefusals.inc({ reason: err.reason });
      // A credential that could not be checked (store down) is an attempt too: it is queued
      // like any audit event and written once the store is back.
      ctx.audit.record({
        type: refused ? 'auth.refused' : 'auth.failed',
        actor: { subject: 'anonymous', kind: 'unknown', chain: [], address: req.ip },
        target: `${req.method} ${req.routeOptions.url ?? req.url}`,
        outcome: refused ? 'denied' : 'failure',
        payload: {
          reason: refused ? err.reason : isUnavailable(err) ? 'store_unavailable' : 'internal_error',
          message: refused ? err.message : 'the credential could not be checked',
          credential_kind: credential ? ctx.authenticator.classify(credential) : 'none',
          ...(refused && err.issuer ? { issuer: err.issuer } : {}),
        },
      });
      throw err;
    }
    if (!hasRole(req.identity, need)) {
      ctx.audit.record({
        type: 'access.denied',
        actor: actorOf(req.identity, req.ip),
        target: `${req.method} ${req.routeOptions.url ?? req.url}`,
        outcome: 'denied',
        payload: { required_role: need, roles: req.identity.roles },
      });
      throw new ApiError(
        403,
        'forbidden',
        `this needs the ${need} role; you have ${req.identity.roles.join(', ')}`,
      );
    }
  });
}
