// One entry point for every credential a caller can present: a Warden API key, a Warden
// token, or an OIDC token from a configured issuer. Which verifier runs is decided by the
// credential's form and its (unverified) issuer; the verifier then checks everything.
import { decodeJwt } from 'jose';
import type { DisabledSubjects } from '../store/disabled-subjects.js';
import { type ApiKeys, looksLikeApiKey } from './api-keys.js';
import { AuthError } from './errors.js';
import type { CredentialKind, Identity } from './identity.js';
import type { OidcVerifier } from './oidc.js';
import { VerifiedCredentials } from './verified-credentials.js';
import type { WardenTokens } from './warden-tokens.js';

const MAX_CREDENTIAL_LENGTH = 16 * 1024;

export interface AuthenticatorOptions {
  /**
   * How long a verified credential is taken as verified without checking it again (0: always
   * checked); a revocation through this gateway ends that at once (`identity.login_cache`).
   */
  cacheTtlMs?: number;
}

export class Authenticator {
  private readonly verified: VerifiedCredentials;

  constructor(
    readonly apiKeys: ApiKeys,
    readonly tokens: WardenTokens,
    private readonly oidc: OidcVerifier,
    /** Without it nobody is ever refused as disabled (unit tests). */
    private readonly disabled?: DisabledSubjects,
    opts: AuthenticatorOptions = {},
  ) {
    this.verified = new VerifiedCredentials(opts.cacheTtlMs ?? 0);
    const forget = () => this.verified.forget();
    apiKeys.revocations.listen(forget);
    tokens.revocations.listen(forget);
  }

  /** What kind of credential this looks like (unverified), for audit records of refusals. */
  classify(credential: string): CredentialKind | 'unknown' {
    if (looksLikeApiKey(credential)) return 'api_key';
    try {
      return decodeJwt(credential).iss === this.tokens.issuer ? 'warden_token' : 'oidc';
    } catch {
      return 'unknown';
    }
  }

  async authenticate(credential: string | undefined): Promise<Identity> {
    const key = credential ? this.verified.key(credential) : null;
    const identity = (key !== null && this.verified.get(key)) || (await this.verifyAndKeep(credential, key));
    // A disabled person or service account is refused whoever presents its credential, and so is
    // every delegate acting for it or through it.
    const refusal = await this.disabled?.refusal([identity.subject, identity.rootSubject, ...identity.chain]);
    if (refusal) throw new AuthError('revoked', refusal, identity.issuer);
    return identity;
  }

  private async verifyAndKeep(credential: string | undefined, key: string | null): Promise<Identity> {
    const mark = this.verified.mark();
    const identity = await this.verify(credential);
    return key !== null ? this.verified.keep(key, identity, mark) : identity;
  }

  private async verify(credential: string | undefined): Promise<Identity> {
    if (!credential) throw new AuthError('missing', 'no credential presented');
    if (credential.length > MAX_CREDENTIAL_LENGTH) throw new AuthError('malformed', 'credential is too long');
    if (looksLikeApiKey(credential)) return this.apiKeys.authenticate(credential);
    let iss: string | undefined;
    try {
      iss = decodeJwt(credential).iss;
    } catch {
      throw new AuthError('malformed', 'credential is neither an API key nor a JWT');
    }
    if (!iss) throw new AuthError('invalid_claims', 'token has no issuer');
    if (iss === this.tokens.issuer) return this.tokens.verify(credential);
    if (this.oidc.handles(iss)) return this.oidc.verify(credential, iss);
    throw new AuthError('unknown_issuer', 'token issuer is not configured', iss);
  }
}

/** Reads `Authorization: Bearer <credential>` (case-insensitive scheme). */
export function bearerFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
