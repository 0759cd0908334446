// A real OpenID provider for tests (oidc-provider on 127.0.0.1): discovery, a JWKS built from
// the keys the test passes in, client_credentials clients, and people signing in to a public
// login client (authorization code + PKCE, device flow) through a minimal login/consent page.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import Provider, { type JWK as ProviderJwk } from 'oidc-provider';
import { type BrowserResult, browse } from './oidc-browser.js';

/** The resource indicator every client asks for; its audience is what the token's `aud` says. */
export const RESOURCE = 'https://warden.test/api';
const SCOPE = 'warden:api';

export interface OidcClient {
  id: string;
  secret: string;
  /** Goes into the access token's `groups` claim. */
  groups: string[];
  /** This client's tokens name this audience instead of the provider's. */
  audience?: string;
}

/** A person who can sign in; `groups` goes into their ID and access tokens. */
export interface OidcUser {
  subject: string;
  groups: string[];
  email?: string;
}

export interface OidcProviderOptions {
  /** Private signing JWKs, each with a kid; the first one usable with RS256 signs access tokens. */
  keys: JWK[];
  clients: OidcClient[];
  /** The `aud` of access tokens (default `warden`). */
  audience?: string;
  /** Lifetime of access tokens in seconds (default 300). */
  accessTokenTTL?: number;
  /** Listen on this port, to restart a stopped provider under the same issuer; absent picks a free one. */
  port?: number;
  /**
   * A public, native login client (no secret, loopback redirects on any port, PKCE) and the
   * people who may sign in with it. `redirectUris` registers more callbacks for the same client,
   * such as the web console's `<warden url>/signin/callback`; their origins may also call the
   * token endpoint from a browser (CORS), which a single-page app needs to redeem its code.
   */
  login?: { clientId: string; users: OidcUser[]; redirectUris?: string[] };
  /**
   * Device flow: the polling `interval` announced in seconds (oidc-provider announces none, so
   * clients wait 5 s) and the lifetime of a code in seconds (default 600).
   */
  device?: { interval?: number; ttl?: number };
}

export interface OidcProvider {
  issuer: string;
  port: number;
  /** A fresh access token for the client, from a real `POST /token` with client_secret_basic. */
  token(clientId: string): Promise<string>;
  /**
   * Plays a browser that opens `authorizeUrl` and signs in as `subject` (login, then consent);
   * returns the URL the provider finally redirects to (the client's callback), not yet opened.
   */
  signIn(authorizeUrl: string, subject: string): Promise<string>;
  /** Plays a person entering `userCode` at the device page and signing in as `subject` (or refusing). */
  approveDevice(userCode: string, subject: string, opts?: { abort?: boolean }): Promise<BrowserResult>;
  /** Answers the next `n` device-flow polls still pending with `slow_down` (RFC 8628 §3.5). */
  slowDown(n: number): void;
  /** Paths of every request the provider answered, in order (discovery, JWKS, token). */
  requests(): string[];
  stop(): Promise<void>;
}

export async function startOidcProvider(opts: OidcProviderOptions): Promise<OidcProvider> {
  for (const k of opts.keys) if (!k.kid) throw new Error('every signing key needs a kid');
  const seen: string[] = [];
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let interact: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    // No keep-alive: a socket pooled by a client must not outlive a stop() and fail its next request.
    res.setHeader('connection', 'close');
    if (interact && req.url?.startsWith('/interaction/')) {
      interact(req, res).catch((err: Error) => res.writeHead(500).end(err.message));
    } else if (handle) handle(req, res);
    else res.writeHead(503).end();
  });
  // The issuer names the port, so the server listens before the provider exists.
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const clients = new Map(opts.clients.map((c) => [c.id, c]));
  const users = new Map((opts.login?.users ?? []).map((u) => [u.subject, u]));
  const ttl = opts.accessTokenTTL ?? 300;
  const provider = new Provider(issuer, {
    clients: [
      ...opts.clients.map((c) => ({
        client_id: c.id,
        client_secret: c.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic' as const,
      })),
      ...(opts.login
        ? [
            {
              client_id: opts.login.clientId,
              // Native: a loopback redirect matches on any port (RFC 8252 §7.3).
              application_type: 'native' as const,
              grant_types: ['authorization_code', DEVICE_GRANT],
              response_types: ['code' as const],
              redirect_uris: ['http://127.0.0.1/callback', ...(opts.login.redirectUris ?? [])],
              token_endpoint_auth_method: 'none' as const,
            },
          ]
        : []),
    ],
    jwks: { keys: opts.keys as ProviderJwk[] },
    cookies: { keys: ['warden-test-cookie-key'] },
    findAccount: (_ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: () => ({ sub, groups: user.groups, ...(user.email ? { email: user.email } : {}) }),
      };
    },
    // Groups ride with `openid`, so every ID token names them (Warden reads them from it).
    claims: { openid: ['sub', 'groups'], email: ['email'], profile: ['name'] },
    // Otherwise a code-flow ID token carries only `sub` and the rest waits at userinfo.
    conformIdTokenClaims: false,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // As a deployment configures it: a browser may call the token endpoint for a client only from
    // the origin of one of that client's redirect URIs (the console that asked for the code).
    clientBasedCORS: (_ctx, origin, client) =>
      client.redirectUris?.some((uri) => new URL(uri).origin === origin) ?? false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      deviceFlow: {
        enabled: true,
        // Pages a person reads; an error page offers no form, so a browser stops on it.
        userCodeInputSource: (ctx, form, _out, err) => {
          ctx.body = err ? `<p>device sign-in failed: ${err.message}</p>` : form;
        },
        userCodeConfirmSource: (ctx, form) => {
          ctx.body = form;
        },
        successSource: (ctx) => {
          ctx.body = '<p>signed in; return to your device</p>';
        },
      },
      // A person's login that names a resource (RFC 8707) gets a JWT access token whose `aud` is
      // Warden's, like a service's: the token meant for an API. A login without one leaves Warden
      // the ID token (aud = the login client), the way kubectl's OIDC plugins work; both are tested.
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (_ctx, _resource, client) => ({
          audience: clients.get(client.clientId)?.audience ?? opts.audience ?? 'warden',
          accessTokenFormat: 'jwt',
          scope: SCOPE,
          accessTokenTTL: ttl,
        }),
      },
    },
    ttl: { ClientCredentials: ttl, DeviceCode: opts.device?.ttl ?? 600 },
    extraTokenClaims: (_ctx, token) => ({
      groups:
        'accountId' in token
          ? (users.get(token.accountId)?.groups ?? [])
          : (clients.get(token.clientId ?? '')?.groups ?? []),
    }),
  });
  let slowDowns = 0;
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if (ctx.path === '/device/auth' && ctx.status === 200 && opts.device?.interval && body) {
      body.interval = opts.device.interval;
    }
    // oidc-provider never asks a client to slow down; a test that wants to see it happen says so.
    if (ctx.path === '/token' && body?.error === 'authorization_pending' && slowDowns > 0) {
      slowDowns--;
      ctx.body = { error: 'slow_down', error_description: 'polled too often' };
    }
  });
  handle = provider.callback();
  interact = (req, res) => interaction(provider, users, req, res);

  return {
    issuer,
    port,
    async token(clientId) {
      const client = clients.get(clientId);
      if (!client) throw new Error(`no client ${clientId} on ${issuer}`);
      const basic = `${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`;
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(basic).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: SCOPE }),
      });
      const body = (await res.json()) as {
        access_token?: string;
        error?: string;
        error_description?: string;
      };
      if (!res.ok || !body.access_token) {
        throw new Error(`token for ${clientId}: ${res.status} ${body.error}: ${body.error_description}`);
      }
      return body.access_token;
    },
    async signIn(authorizeUrl, subject) {
      const end = await browse(issuer, authorizeUrl, { login: subject });
      if (!end.redirect) throw new Error(`sign-in did not return to the client: ${end.status} ${end.body}`);
      return end.redirect;
    },
    approveDevice: (userCode, subject, o = {}) =>
      browse(issuer, `${issuer}/device?user_code=${encodeURIComponent(userCode)}`, {
        login: subject,
        ...(o.abort ? { abort: 'yes' } : {}),
      }),
    slowDown(n) {
      slowDowns = n;
    },
    requests: () => [...seen],
    async stop() {
      if (!server.listening) return;
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

/**
 * The provider's login and consent page, as small as oidc-provider allows: GET shows a form
 * asking for the user name; POST signs the named user in or, at the consent prompt, grants
 * everything the client asked for.
 */
async function interaction(
  provider: Provider,
  users: Map<string, OidcUser>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const action = `/interaction/${details.uid}`;
  if (req.method === 'GET') {
    // Buttons for a real browser; the HTTP-played one submits the form without them.
    const [field, submit] =
      details.prompt.name === 'login'
        ? ['<label>User name <input name="login" autofocus/></label>', 'Sign in']
        : ['<p>Allow this application to access your account?</p>', 'Allow'];
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(
      `<form method="post" action="${action}">${field}<button type="submit">${submit}</button>` +
        '<button type="submit" name="cancel" value="yes">Cancel</button></form>',
    );
    return;
  }
  const form = await readForm(req);
  if (form.get('cancel') === 'yes') {
    // The person declined: the client gets error=access_denied at its redirect URI.
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'the person declined to sign in' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  if (details.prompt.name === 'login') {
    const subject = form.get('login') ?? '';
    if (!users.has(subject)) {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<p>unknown user ${subject}</p>`);
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: subject } },
      {
        mergeWithLastSubmission: false,
      },
    );
    return;
  }
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({
        accountId: details.session?.accountId,
        clientId: details.params.client_id as string,
      });
  if (!grant) throw new Error(`grant ${details.grantId} vanished`);
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
