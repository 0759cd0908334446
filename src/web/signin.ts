// Signing in: an API key or a provider's token is traded at POST /api/tokens for a short-lived
// Warden token, which is all the browser keeps. OIDC uses authorization code + PKCE in the page.
import { api, type Credential, storeCredential } from './api.js';

const FLOW_KEY = 'warden.console.oidc';
const CONSOLE_TTL = '8h';

export interface LoginIssuer {
  issuer: string;
  client_id: string;
  scopes: string;
  resource?: string;
}

interface PendingFlow {
  issuer: LoginIssuer;
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
}

const CALLBACK_PATH = '/signin/callback';

export async function signInWithKey(apiKey: string): Promise<void> {
  const c = await api<Credential>('/api/tokens', {
    method: 'POST',
    bearer: apiKey,
    body: { ttl: CONSOLE_TTL },
  });
  storeCredential(c);
}

export async function signOut(c: Credential | null): Promise<void> {
  // Revoked on the server, not just forgotten here: a copied token stops working too.
  if (c) await api(`/api/tokens/${encodeURIComponent(c.jti)}`, { method: 'DELETE' }).catch(() => {});
  storeCredential(null);
}

function random(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(data: Uint8Array): string {
  let s = '';
  for (const b of data) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

interface ProviderMetadata {
  authorization_endpoint: string;
  token_endpoint: string;
}

async function discover(issuer: string): Promise<ProviderMetadata> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url).catch((err: Error) => {
    throw new Error(`the identity provider ${issuer} could not be reached: ${err.message}`);
  });
  if (!res.ok)
    throw new Error(`the identity provider ${issuer} answered ${res.status} for its configuration`);
  return (await res.json()) as ProviderMetadata;
}

/** Leaves for the provider's sign-in page; it comes back to CALLBACK_PATH. */
/**
 * A path of this console to come back to, or the start page: never `//host/…` or `/\host`, which
 * a browser would read as another origin.
 */
export function safeReturnPath(path: string | null | undefined): string {
  return path && /^\/(?![/\\])/.test(path) ? path : '/sessions';
}

export async function startOidc(issuer: LoginIssuer, returnTo: string): Promise<void> {
  const meta = await discover(issuer.issuer);
  const verifier = random(32);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const flow: PendingFlow = {
    issuer,
    state: random(16),
    nonce: random(16),
    verifier,
    returnTo: safeReturnPath(returnTo),
  };
  sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  const url = new URL(meta.authorization_endpoint);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: issuer.client_id,
    redirect_uri: `${location.origin}${CALLBACK_PATH}`,
    scope: issuer.scopes,
    state: flow.state,
    nonce: flow.nonce,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
    ...(issuer.resource ? { resource: issuer.resource } : {}),
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.href);
}

/** How a sign-in came back: where the person was going, and why it failed if it did. */
export interface SignInOutcome {
  returnTo: string;
  error?: unknown;
}

/**
 * Finishes a login on CALLBACK_PATH. A failure keeps `returnTo` too: signing in again from the
 * failure page should still lead where the person was going, not to the start page.
 */
export async function finishOidc(params: URLSearchParams): Promise<SignInOutcome> {
  const raw = sessionStorage.getItem(FLOW_KEY);
  // One answer per sign-in, good or bad: a second or forged one finds nothing to finish.
  sessionStorage.removeItem(FLOW_KEY);
  if (!raw)
    return { returnTo: '/sessions', error: new Error('no sign-in was started in this tab; start again') };
  const flow = JSON.parse(raw) as PendingFlow;
  const returnTo = safeReturnPath(flow.returnTo);
  try {
    await redeem(flow, params);
    return { returnTo };
  } catch (error) {
    return { returnTo, error };
  }
}

async function redeem(flow: PendingFlow, params: URLSearchParams): Promise<void> {
  const error = params.get('error');
  if (error) throw new Error(`the identity provider refused: ${params.get('error_description') ?? error}`);
  if (params.get('state') !== flow.state)
    throw new Error('the sign-in answer does not match this tab (state)');
  const code = params.get('code');
  if (!code) throw new Error('the identity provider returned no authorization code');
  const meta = await discover(flow.issuer.issuer);
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: `${location.origin}${CALLBACK_PATH}`,
    client_id: flow.issuer.client_id,
    code_verifier: flow.verifier,
    ...(flow.issuer.resource ? { resource: flow.issuer.resource } : {}),
  });
  const res = await fetch(meta.token_endpoint, { method: 'POST', body: form }).catch((err: Error) => {
    // The browser hides why (network, CORS or this page's CSP), so name what must allow the call.
    throw new Error(
      `the identity provider's token endpoint ${meta.token_endpoint} could not be reached from this page ` +
        `(${err.message}): the provider must allow ${location.origin} (CORS) for client ${flow.issuer.client_id}`,
    );
  });
  const tokens = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    id_token?: string;
    error?: string;
    error_description?: string;
  };
  if (!res.ok)
    throw new Error(`the token endpoint refused: ${tokens.error_description ?? tokens.error ?? res.status}`);
  if (tokens.id_token && jwtClaims(tokens.id_token).nonce !== flow.nonce)
    throw new Error('the ID token does not carry this sign-in’s nonce: refused');
  // As `warden login`: an access token for Warden's resource when one is configured, else the ID token.
  const presented = flow.issuer.resource ? tokens.access_token : tokens.id_token;
  if (!presented) throw new Error('the identity provider returned no token Warden can check');
  const c = await api<Credential>('/api/tokens', {
    method: 'POST',
    bearer: presented,
    body: { ttl: CONSOLE_TTL },
  });
  storeCredential(c);
}

function jwtClaims(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
  return JSON.parse(json) as Record<string, unknown>;
}
