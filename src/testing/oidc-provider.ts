// A real OpenID provider for tests (oidc-provider on 127.0.0.1): discovery, a JWKS built from
// the keys the test passes in, and client_credentials clients whose access tokens are JWTs.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import Provider, { type JWK as ProviderJwk } from 'oidc-provider';

/** The resource indicator every client asks for; its audience is what the token's `aud` says. */
const RESOURCE = 'https://warden.test/api';
const SCOPE = 'warden:api';

export interface OidcClient {
  id: string;
  secret: string;
  /** Goes into the access token's `groups` claim. */
  groups: string[];
  /** This client's tokens name this audience instead of the provider's. */
  audience?: string;
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
}

export interface OidcProvider {
  issuer: string;
  port: number;
  /** A fresh access token for the client, from a real `POST /token` with client_secret_basic. */
  token(clientId: string): Promise<string>;
  /** Paths of every request the provider answered, in order (discovery, JWKS, token). */
  requests(): string[];
  stop(): Promise<void>;
}

export async function startOidcProvider(opts: OidcProviderOptions): Promise<OidcProvider> {
  for (const k of opts.keys) if (!k.kid) throw new Error('every signing key needs a kid');
  const seen: string[] = [];
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    // No keep-alive: a socket pooled by a client must not outlive a stop() and fail its next request.
    res.setHeader('connection', 'close');
    if (handle) handle(req, res);
    else res.writeHead(503).end();
  });
  // The issuer names the port, so the server listens before the provider exists.
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const clients = new Map(opts.clients.map((c) => [c.id, c]));
  const ttl = opts.accessTokenTTL ?? 300;
  const provider = new Provider(issuer, {
    clients: opts.clients.map((c) => ({
      client_id: c.id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: opts.keys as ProviderJwk[] },
    cookies: { keys: ['warden-test-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
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
    ttl: { ClientCredentials: ttl },
    extraTokenClaims: (_ctx, token) => ({ groups: clients.get(token.clientId ?? '')?.groups ?? [] }),
  });
  handle = provider.callback();

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
