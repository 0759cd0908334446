// Serves the web console (src/web/, built by Vite into dist/web) at `/`: hashed assets cached for
// good, every other console path answered with index.html so a copied address opens its page.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where `npm run build` puts the console, beside the compiled server (dist/web). */
const WEB_CONSOLE_DIR = fileURLToPath(new URL('../web', import.meta.url));

/** Paths that belong to the API or the server, never to the console's client-side routes. */
const SERVER_PATHS = /^\/(api|\.well-known|oauth|healthz|readyz|metrics)(\/|$)/;

export interface WebConsoleOptions {
  dir?: string;
  /** Origins the page may call besides its own: the OIDC issuers people sign in with, and their token endpoints. */
  connectOrigins?: () => Iterable<string>;
}

export async function installWebConsole(app: FastifyInstance, opts: WebConsoleOptions = {}): Promise<void> {
  const dir = opts.dir ?? WEB_CONSOLE_DIR;
  const indexPath = join(dir, 'index.html');
  const built = existsSync(indexPath);
  const index = built ? readFileSync(indexPath) : null;
  const origins = opts.connectOrigins ?? (() => []);

  /** Set on every answer of the console, its files included (an HTML file is a page too). */
  const protect = (set: (name: string, value: string) => void) => {
    set('content-security-policy', contentSecurityPolicy(origins()));
    set('x-content-type-options', 'nosniff');
    set('referrer-policy', 'no-referrer');
    set('x-frame-options', 'DENY');
  };

  const page = (reply: FastifyReply) => {
    protect((name, value) => reply.header(name, value));
    if (!index) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(
          'The web console is not built. Run `npm run build` (it builds dist/web), then restart Warden.\n',
        );
    }
    return reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(index);
  };

  if (built) {
    await app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      index: false,
      wildcard: false,
      // Its own max-age=0 would overwrite the one set below.
      cacheControl: false,
      // Vite names every asset by its content hash: a changed file is a new name.
      setHeaders: (res, path) => {
        protect((name, value) => res.setHeader(name, value));
        res.setHeader(
          'cache-control',
          path.startsWith(join(dir, 'assets')) ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    });
  }

  app.get('/*', { schema: { hide: true } }, async (req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    if (SERVER_PATHS.test(path) || /\.[a-z0-9]+$/i.test(path)) return reply.callNotFound();
    return page(reply);
  });
}

function contentSecurityPolicy(connectOrigins: Iterable<string>): string {
  const connect = ["'self'", ...new Set(connectOrigins)].join(' ');
  return [
    "default-src 'self'",
    // asciinema-player's terminal emulator is WebAssembly.
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src ${connect}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

/**
 * The origins a browser signing in with these issuers must reach: each issuer's, and its token
 * endpoint's once its discovery document has been read (Google's, for one, is on another host).
 * Discovery is tried once in the background; until it answers, the issuer's origin alone is allowed.
 */
export function loginOrigins(
  issuers: string[],
  onError: (issuer: string, err: Error) => void,
): () => ReadonlySet<string> {
  const found = new Set(issuers.map((i) => new URL(i).origin));
  for (const issuer of issuers) {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    fetch(url, { signal: AbortSignal.timeout(10_000) })
      .then(async (res) => {
        if (!res.ok) throw new Error(`${url} answered ${res.status}`);
        const meta = (await res.json()) as { token_endpoint?: unknown };
        if (typeof meta.token_endpoint === 'string') found.add(new URL(meta.token_endpoint).origin);
      })
      .catch((err: Error) => onError(issuer, err));
  }
  return () => found;
}
