// RFC 8693 token exchange: a caller trades its credential (the subject token) for a narrower,
// shorter-lived Warden token held by a delegate, whose chain and `act` claim name every hop.
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Sessions } from '../store/sessions.js';
import { looksLikeApiKey } from './api-keys.js';
import type { Authenticator } from './authenticate.js';
import { AuthError } from './errors.js';
import { type Identity, scopeCovers, withoutReservedGroups } from './identity.js';
import { namedParentSession } from './parent-session.js';
import type { DelegatedHolder, MintedToken, WardenTokens } from './warden-tokens.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** Accepted for Warden and OIDC JWTs alike, and the only type an API key (`wdn_…`) is accepted as. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unsupported_grant_type';

/** A refusal in the shape RFC 6749 §5.2 gives it; `subject` is who asked, once known (for audit). */
export class OAuthError extends Error {
  override name = 'OAuthError';
  subject?: Identity;
  constructor(
    readonly code: OAuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const DELEGATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/;
const MAX_SCOPE_ENTRIES = 64;

// Unknown parameters are ignored (RFC 6749 §3.2); a repeated one arrives as an array and is refused.
const param = z
  .string()
  .max(16 * 1024)
  .optional();
const exchangeRequest = z.object({
  grant_type: param,
  subject_token: param,
  subject_token_type: param,
  actor_token: param,
  actor_token_type: param,
  /** Warden-specific: the delegate's name when it has no credential of its own to present. */
  actor: param,
  scope: param,
  requested_token_type: param,
  audience: param,
  resource: param,
  /** Warden-specific lifetime: seconds, or a duration such as "10m" in `ttl`. */
  expires_in: z.union([z.string(), z.number()]).optional(),
  ttl: param,
});

export interface Exchanged {
  minted: MintedToken;
  parent: Identity;
  holder: DelegatedHolder & { rootSubject: string };
  scope: string[];
  /** Whether the delegate proved who it is with an actor token (else the parent named it). */
  actorVerified: boolean;
  parentSessionId: string | null;
}

export class TokenExchange {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly tokens: WardenTokens,
    private readonly cfg: Config['identity'],
    private readonly sessions: Sessions,
  ) {}

  /** `parentSession`: the `X-Warden-Session` header, naming the session the subject token's holder mints in. */
  async exchange(body: unknown, parentSession?: string | string[]): Promise<Exchanged> {
    const parsed = exchangeRequest.safeParse(body ?? {});
    if (!parsed.success) {
      const names = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? 'body')))];
      throw new OAuthError('invalid_request', `malformed or repeated parameter: ${names.join(', ')}`);
    }
    const req = parsed.data;
    if (!req.grant_type) throw new OAuthError('invalid_request', 'grant_type is required');
    if (req.grant_type !== TOKEN_EXCHANGE_GRANT) {
      throw new OAuthError('unsupported_grant_type', `only ${TOKEN_EXCHANGE_GRANT} is supported`);
    }
    if (req.requested_token_type !== undefined && req.requested_token_type !== JWT_TOKEN_TYPE) {
      throw new OAuthError('invalid_request', `requested_token_type must be ${JWT_TOKEN_TYPE}`);
    }
    if (req.audience !== undefined && req.audience !== 'warden') {
      throw new OAuthError('invalid_target', 'Warden tokens are only for Warden (audience "warden")');
    }
    if (req.resource !== undefined) {
      throw new OAuthError('invalid_target', 'resource is not supported: name connections in scope');
    }
    if (!req.subject_token || !req.subject_token_type) {
      throw new OAuthError('invalid_request', 'subject_token and subject_token_type are required');
    }
    const parent = await this.present('subject_token', req.subject_token, req.subject_token_type);
    try {
      const named = await namedParentSession(this.sessions, parent, parentSession);
      if ('problem' in named) throw new OAuthError('invalid_request', named.problem);
      return await this.delegate(parent, req, named.id);
    } catch (err) {
      if (err instanceof OAuthError) err.subject = parent;
      throw err;
    }
  }

  private async delegate(
    parent: Identity,
    req: z.infer<typeof exchangeRequest>,
    parentSessionId: string | null,
  ): Promise<Exchanged> {
    const now = Date.now();
    // Who the delegate is: proven by its own credential, or named by the parent.
    let actor: Identity | undefined;
    if (req.actor_token !== undefined) {
      if (!req.actor_token_type)
        throw new OAuthError('invalid_request', 'actor_token needs actor_token_type');
      actor = await this.present('actor_token', req.actor_token, req.actor_token_type);
      if (req.actor !== undefined && req.actor !== actor.subject) {
        throw new OAuthError('invalid_request', `actor "${req.actor}" is not who the actor_token belongs to`);
      }
    } else if (req.actor_token_type !== undefined) {
      throw new OAuthError('invalid_request', 'actor_token_type without actor_token');
    }
    const name = actor?.subject ?? req.actor;
    if (name === undefined) {
      throw new OAuthError(
        'invalid_request',
        'name the delegate: actor_token (its own credential) or actor (its name)',
      );
    }
    if (!DELEGATE_NAME.test(name)) {
      throw new OAuthError('invalid_request', 'actor must be 1-128 letters, digits or . _ @ : -');
    }
    // A named delegate is only the parent's word: it may not pass for an identity that can prove
    // itself (policy rules match subjects), so an API key's name needs that key as actor_token.
    if (!actor && (await this.authenticator.apiKeys.get(name))) {
      throw new OAuthError(
        'invalid_request',
        `"${name}" is the name of an API key: prove it with that key as actor_token instead of naming it`,
      );
    }
    if (name === parent.subject) {
      throw new OAuthError('invalid_request', `the delegate must not be ${parent.subject} itself`);
    }
    const chain = [...parent.chain, name];
    if (chain.length > this.cfg.max_delegation_depth) {
      throw new OAuthError(
        'invalid_request',
        `delegating to ${name} would make a chain of ${chain.length} delegates ` +
          `(${parent.rootSubject} → ${chain.join(' → ')}); identity.max_delegation_depth is ${this.cfg.max_delegation_depth}`,
      );
    }

    const scope = await this.scopeFor(parent, req.scope);
    const expiresAt = this.expiryFor(now, parent, actor, req);
    const holder = {
      subject: name,
      kind: actor?.kind ?? 'agent',
      // What the delegate may do comes from the parent, never from its own credential; Warden's
      // reserved groups (built-in roles) are not handed down.
      groups: withoutReservedGroups(parent.groups),
      chain,
    } satisfies DelegatedHolder;
    const minted = await this.tokens.mintDelegated(parent, holder, { scope, expiresAt, parentSessionId });
    return {
      minted,
      parent,
      holder: { ...holder, rootSubject: parent.rootSubject },
      scope,
      actorVerified: actor !== undefined,
      parentSessionId,
    };
  }

  /** The identity behind a presented token; any refusal is `invalid_grant` (RFC 8693 §2.2.2). */
  private async present(field: string, token: string, type: string): Promise<Identity> {
    const apiKey = looksLikeApiKey(token);
    if (type !== ACCESS_TOKEN_TYPE && (apiKey || type !== JWT_TOKEN_TYPE)) {
      throw new OAuthError(
        'invalid_request',
        `${field}_type must be ${apiKey ? ACCESS_TOKEN_TYPE : `${JWT_TOKEN_TYPE} or ${ACCESS_TOKEN_TYPE}`}`,
      );
    }
    try {
      return await this.authenticator.authenticate(token);
    } catch (err) {
      if (err instanceof AuthError) throw new OAuthError('invalid_grant', `${field}: ${err.message}`);
      throw err;
    }
  }

  /** The requested scope, each entry within the parent's and every ancestor token's scope. */
  private async scopeFor(parent: Identity, requested: string | undefined): Promise<string[]> {
    const entries = requested === undefined ? [] : requested.split(' ').filter(Boolean);
    if (entries.length === 0) return parent.scope;
    if (entries.length > MAX_SCOPE_ENTRIES || entries.some((e) => e.length > 200)) {
      throw new OAuthError('invalid_scope', `at most ${MAX_SCOPE_ENTRIES} scope entries of 200 characters`);
    }
    const held = [parent.scope];
    if (parent.via === 'warden_token' && parent.tokenId) {
      for (const a of await this.tokens.ancestors(parent.tokenId)) held.push(a.scope);
    }
    const wider = entries.filter((e) => !held.every((h) => scopeCovers(h, e)));
    if (wider.length > 0) {
      throw new OAuthError(
        'invalid_scope',
        `scope ${wider.join(' ')} is wider than the subject token's (${parent.scope.join(' ') || 'nothing'})`,
      );
    }
    return [...new Set(entries)];
  }

  /**
   * When the token ends: as asked, or by default identity.token_ttl cut to the parent's and the
   * actor credential's expiry. Asking past either, or past token_max_ttl, is refused.
   */
  private expiryFor(
    now: number,
    parent: Identity,
    actor: Identity | undefined,
    req: z.infer<typeof exchangeRequest>,
  ): Date {
    const limits = [
      { what: 'the subject token', at: parent.expiresAt },
      { what: 'the actor token', at: actor?.expiresAt ?? null },
    ].filter((l): l is { what: string; at: Date } => l.at !== null);
    const ttl = this.requestedTtl(req);
    if (ttl === undefined) {
      const end = Math.min(now + this.cfg.token_ttl, ...limits.map((l) => l.at.getTime()));
      if (end <= now) throw new OAuthError('invalid_grant', 'the subject token has expired');
      return new Date(end);
    }
    if (ttl > this.cfg.token_max_ttl) {
      throw new OAuthError(
        'invalid_request',
        `a lifetime of ${Math.round(ttl / 1000)}s is longer than identity.token_max_ttl (${Math.round(this.cfg.token_max_ttl / 1000)}s)`,
      );
    }
    // Compared at the JWT's one-second precision, the precision `exp` will have.
    const end = Math.floor((now + ttl) / 1000) * 1000;
    for (const l of limits) {
      if (end > l.at.getTime()) {
        const left = Math.max(0, Math.floor((l.at.getTime() - now) / 1000));
        throw new OAuthError(
          'invalid_request',
          `the requested lifetime ends after ${l.what} expires (${l.at.toISOString()}); ask for at most ${left}s`,
        );
      }
    }
    return new Date(end);
  }

  private requestedTtl(req: z.infer<typeof exchangeRequest>): number | undefined {
    if (req.expires_in !== undefined && req.ttl !== undefined) {
      throw new OAuthError('invalid_request', 'give expires_in or ttl, not both');
    }
    if (req.expires_in !== undefined) {
      const s = typeof req.expires_in === 'number' ? req.expires_in : Number(req.expires_in);
      if (
        !Number.isInteger(s) ||
        s < 1 ||
        (typeof req.expires_in === 'string' && !/^\d+$/.test(req.expires_in))
      ) {
        throw new OAuthError('invalid_request', 'expires_in must be a whole number of seconds, at least 1');
      }
      return s * 1000;
    }
    if (req.ttl !== undefined) {
      const ms = parseDuration(req.ttl);
      if (ms === undefined || ms < 1000) {
        throw new OAuthError('invalid_request', 'ttl must be a duration of at least 1s, like "90s" or "10m"');
      }
      return ms;
    }
    return undefined;
  }
}
