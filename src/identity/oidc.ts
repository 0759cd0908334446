// Verification of OIDC tokens from configured issuers: keys from the issuer's JWKS (cached,
// refetched when an unknown kid shows up), exp/nbf/iss/aud checked with a small clock skew,
// and only the asymmetric algorithms the issuer's config allows.
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import type { Config, OidcIssuerConfig } from '../config/schema.js';
import { AuthError } from './errors.js';
import { type Identity, rolesFor, withoutReservedGroups } from './identity.js';

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

function normalizeIssuer(iss: string): string {
  return iss.replace(/\/+$/, '');
}

export class OidcVerifier {
  private readonly jwks = new Map<string, Promise<RemoteJwks>>();
  private readonly byIssuer = new Map<string, OidcIssuerConfig>();

  constructor(
    issuers: OidcIssuerConfig[],
    private readonly clockSkewMs: number,
    private readonly roles: Config['identity']['roles'],
  ) {
    for (const i of issuers) this.byIssuer.set(normalizeIssuer(i.issuer), i);
  }

  handles(iss: string): boolean {
    return this.byIssuer.has(normalizeIssuer(iss));
  }

  private keys(cfg: OidcIssuerConfig): Promise<RemoteJwks> {
    const issuer = normalizeIssuer(cfg.issuer);
    let entry = this.jwks.get(issuer);
    if (!entry) {
      entry = this.discover(cfg);
      this.jwks.set(issuer, entry);
      // A failed discovery is retried on the next token instead of being cached forever.
      entry.catch(() => this.jwks.delete(issuer));
    }
    return entry;
  }

  private async discover(cfg: OidcIssuerConfig): Promise<RemoteJwks> {
    let uri = cfg.jwks_uri;
    if (!uri) {
      const url = `${normalizeIssuer(cfg.issuer)}/.well-known/openid-configuration`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`discovery at ${url} answered ${res.status}`);
      const meta = (await res.json()) as { issuer?: string; jwks_uri?: string };
      if (!meta.jwks_uri) throw new Error(`discovery at ${url} has no jwks_uri`);
      if (meta.issuer && normalizeIssuer(meta.issuer) !== normalizeIssuer(cfg.issuer)) {
        throw new Error(`discovery at ${url} names issuer ${meta.issuer}`);
      }
      uri = meta.jwks_uri;
    }
    return createRemoteJWKSet(new URL(uri), {
      cooldownDuration: cfg.jwks_refresh_cooldown,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: 5_000,
    });
  }

  async verify(token: string, iss: string): Promise<Identity> {
    const cfg = this.byIssuer.get(normalizeIssuer(iss));
    if (!cfg) throw new AuthError('unknown_issuer', 'token issuer is not configured', iss);
    let jwks: RemoteJwks;
    try {
      jwks = await this.keys(cfg);
    } catch (err) {
      throw new AuthError(
        'issuer_unreachable',
        `cannot fetch signing keys of ${cfg.issuer}: ${(err as Error).message}`,
        iss,
      );
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        algorithms: cfg.algorithms,
        clockTolerance: Math.round(this.clockSkewMs / 1000),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw mapJoseError(err, cfg.issuer);
    }
    const subject = payload[cfg.subject_claim];
    if (typeof subject !== 'string' || subject === '') {
      throw new AuthError('invalid_claims', `token has no "${cfg.subject_claim}" claim`, cfg.issuer);
    }
    const rawGroups = payload[cfg.groups_claim];
    const claimed = Array.isArray(rawGroups)
      ? rawGroups.filter((g): g is string => typeof g === 'string')
      : typeof rawGroups === 'string'
        ? rawGroups.split(/[ ,]+/).filter(Boolean)
        : [];
    // A provider whose users can name their own groups must not be able to claim Warden's.
    const groups = withoutReservedGroups(claimed);
    // RFC 9068: a client-credentials token names the client as its own subject; that is a
    // machine. Anything else was issued to a person (unless the issuer's config says otherwise).
    const client = payload.client_id ?? payload.azp;
    const kind = cfg.kind ?? (typeof client === 'string' && client === payload.sub ? 'service' : 'human');
    return {
      subject,
      kind,
      groups,
      rootSubject: subject,
      chain: [],
      via: 'oidc',
      tokenId: typeof payload.jti === 'string' ? payload.jti : null,
      parentTokenId: null,
      parentSessionId: null,
      issuer: cfg.issuer,
      scope: ['*'],
      expiresAt: payload.exp ? new Date(payload.exp * 1000) : null,
      roles: rolesFor(groups, this.roles),
    };
  }
}

export function mapJoseError(err: unknown, issuer: string): AuthError {
  if (err instanceof errors.JWTExpired) return new AuthError('expired', 'token has expired', issuer);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud')
      return new AuthError('wrong_audience', 'token is not meant for Warden (audience)', issuer);
    if (err.claim === 'iss') return new AuthError('wrong_issuer', 'token issuer does not match', issuer);
    if (err.claim === 'nbf') return new AuthError('not_yet_valid', 'token is not valid yet', issuer);
    return new AuthError('invalid_claims', `token claim "${err.claim}" is invalid`, issuer);
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new AuthError('algorithm_not_allowed', 'token algorithm is not allowed', issuer);
  if (err instanceof errors.JWKSNoMatchingKey)
    return new AuthError('unknown_key_id', 'token is signed by an unknown key', issuer);
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return new AuthError('bad_signature', 'token signature is invalid', issuer);
  if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError)) {
    return new AuthError('issuer_unreachable', `cannot verify token: ${(err as Error).message}`, issuer);
  }
  return new AuthError('malformed', 'token is malformed', issuer);
}
