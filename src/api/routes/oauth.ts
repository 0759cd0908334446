// POST /oauth/token: RFC 8693 token exchange, form-encoded (as OAuth clients send it) or JSON,
// answered in OAuth's own shapes (RFC 6749 §5.1/§5.2), never cached, every outcome audited.
import type { FastifyReply } from 'fastify';
import { parseTraceparent } from '../../gateway/trace-context.js';
import { actorOf } from '../../identity/identity.js';
import { PARENT_SESSION_HEADER } from '../../identity/parent-session.js';
import { JWT_TOKEN_TYPE, OAuthError, TokenExchange } from '../../identity/token-exchange.js';
import type { ApiContext } from '../context.js';
import type { ZodApp } from '../server.js';

/** Form fields as an object; a repeated field becomes an array, which the exchange refuses. */
function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    const seen = out[k];
    out[k] = seen === undefined ? v : Array.isArray(seen) ? [...seen, v] : [seen, v];
  }
  return out;
}

/** A valid W3C `traceparent` header, as an audit payload field (nothing for none or a malformed one). */
function traceOf(header: string | string[] | undefined): { traceparent?: string } {
  const trace = typeof header === 'string' ? parseTraceparent(header) : undefined;
  return trace ? { traceparent: trace.received } : {};
}

const noStore = (reply: FastifyReply) =>
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

export function oauthRoutes(app: ZodApp, ctx: ApiContext): void {
  const exchange = new TokenExchange(ctx.authenticator, ctx.tokens, ctx.config.identity, ctx.sessions);
  app.register(async (scope) => {
    // Only this route reads form bodies; the rest of the API stays JSON.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_req, body, done) => done(null, parseForm(body as string)),
    );
    scope.post(
      '/oauth/token',
      {
        config: { auth: 'none' },
        schema: {
          tags: ['tokens'],
          summary:
            'RFC 8693 token exchange: a narrower, shorter-lived Warden token for a delegate, with a nested act claim',
        },
      },
      async (req, reply) => {
        noStore(reply);
        try {
          const done = await exchange.exchange(req.body, req.headers[PARENT_SESSION_HEADER]);
          const { minted, parent, holder } = done;
          const expiresAt = minted.expiresAt.toISOString();
          await ctx.audit.append({
            type: 'token.exchanged',
            actor: actorOf(parent, req.ip),
            target: `token:${minted.jti}`,
            outcome: 'success',
            payload: {
              jti: minted.jti,
              parent_jti: parent.via === 'warden_token' ? parent.tokenId : null,
              subject_via: parent.via,
              holder: holder.subject,
              holder_kind: holder.kind,
              actor_verified: done.actorVerified,
              root: holder.rootSubject,
              chain: holder.chain,
              scope: done.scope,
              expires_at: expiresAt,
              ...(done.parentSessionId ? { parent_session: done.parentSessionId } : {}),
              ...traceOf(req.headers.traceparent),
            },
          });
          return reply.code(200).send({
            access_token: minted.token,
            issued_token_type: JWT_TOKEN_TYPE,
            token_type: 'Bearer',
            expires_in: Math.max(0, Math.floor((minted.expiresAt.getTime() - Date.now()) / 1000)),
            scope: done.scope.join(' '),
          });
        } catch (err) {
          if (!(err instanceof OAuthError)) throw err;
          ctx.audit.record({
            type: 'token.exchange_refused',
            actor: err.subject
              ? actorOf(err.subject, req.ip)
              : { subject: 'anonymous', kind: 'unknown', chain: [], address: req.ip },
            target: 'POST /oauth/token',
            outcome: 'denied',
            payload: { error: err.code, error_description: err.message },
          });
          return reply.code(400).send({ error: err.code, error_description: err.message });
        }
      },
    );
  });
}
