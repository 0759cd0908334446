// The OAuth pieces `warden login` shares between its flows: provider discovery, token-endpoint
// requests with OAuth's error shape, and PKCE. Public clients only: nothing here holds a secret.
import { createHash, randomBytes } from 'node:crypto';
import { CliError } from '../client.js';

/** What the CLI needs from `/.well-known/openid-configuration`. */
export interface ProviderMetadata {
  issuer: string;
  token_endpoint: string;
  authorization_endpoint?: string;
  device_authorization_endpoint?: string;
  code_challenge_methods_supported?: string[];
}

/** A login client as Warden publishes it (GET /api/login/config). */
export interface LoginClient {
  issuer: string;
  client_id: string;
  scopes: string;
  resource?: string;
}

export interface ProviderTokens {
  access_token: string;
  token_type: string;
  id_token?: string;
  expires_in?: number;
}

/** An OAuth error response (RFC 6749 §5.2, RFC 8628 §3.5), kept apart so the device flow can act on it. */
export class OAuthError extends CliError {
  constructor(
    readonly error: string,
    readonly description: string | undefined,
  ) {
    super(`the identity provider refused: ${error}${description ? `: ${description}` : ''}`);
  }
}

const trimSlash = (s: string) => s.replace(/\/+$/, '');

async function reach(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new CliError(
      `cannot reach the identity provider at ${url}: ${cause?.code ?? (err as Error).message}`,
    );
  }
}

export async function discover(issuer: string): Promise<ProviderMetadata> {
  const url = `${trimSlash(issuer)}/.well-known/openid-configuration`;
  const res = await reach(url);
  if (!res.ok) throw new CliError(`discovery at ${url} answered ${res.status} ${res.statusText}`);
  const meta = (await res.json().catch(() => ({}))) as Partial<ProviderMetadata>;
  // A document naming another issuer could send the person to someone else's login page.
  if (!meta.issuer || trimSlash(meta.issuer) !== trimSlash(issuer)) {
    throw new CliError(`discovery at ${url} names issuer ${meta.issuer ?? '(none)'}, not ${issuer}`);
  }
  if (!meta.token_endpoint) throw new CliError(`discovery at ${url} names no token_endpoint`);
  return meta as ProviderMetadata;
}

/** POSTs a form to an OAuth endpoint; OAuth errors become OAuthError, anything else a CliError. */
export async function postForm(url: string, form: Record<string, string | undefined>): Promise<unknown> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
  const res = await reach(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
  });
  const payload = (await res.json().catch(() => undefined)) as
    | { error?: string; error_description?: string }
    | undefined;
  if (payload?.error) throw new OAuthError(payload.error, payload.error_description);
  if (!res.ok || !payload) throw new CliError(`${url} answered ${res.status} ${res.statusText}`);
  return payload;
}

export async function tokenRequest(
  meta: ProviderMetadata,
  form: Record<string, string | undefined>,
): Promise<ProviderTokens> {
  const tokens = (await postForm(meta.token_endpoint, form)) as Partial<ProviderTokens>;
  if (typeof tokens.access_token !== 'string') {
    throw new CliError(`the token endpoint ${meta.token_endpoint} returned no access_token`);
  }
  return tokens as ProviderTokens;
}

/** A random value for state, nonce or a PKCE verifier: 256 bits, base64url. */
export const randomValue = () => randomBytes(32).toString('base64url');

/** RFC 7636 with S256: the verifier stays here, the challenge goes to the authorization request. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomValue();
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}
