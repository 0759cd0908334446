import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandler } from './errors.js';
import { installWebConsole, loginOrigins } from './web-console.js';

async function serve(dir: string, origins: string[] = []): Promise<FastifyInstance> {
  const app = Fastify();
  installErrorHandler(app);
  app.get('/api/ping', async () => ({ pong: true }));
  await installWebConsole(app, { dir, connectOrigins: () => origins });
  await app.ready();
  return app;
}

describe('web console files: index.html for console paths, hashed assets, API paths left alone', () => {
  let dir: string;
  let app: FastifyInstance;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-web-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    app = await serve(dir, ['https://login.example.com']);
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers / and any console path with index.html, uncached, under a strict CSP', async () => {
    for (const url of ['/', '/sessions', '/sessions/01a2?q=x', '/chains/abc', '/signin/callback?code=1']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.headers['content-type'] as string, /^text\/html/);
      assert.match(res.body, /id="root"/);
      assert.equal(res.headers['cache-control'], 'no-cache');
      const csp = res.headers['content-security-policy'] as string;
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
      assert.match(csp, /connect-src 'self' https:\/\/login\.example\.com(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    }
  });

  it('serves hashed assets for good, and a missing file is a 404, not the page', async () => {
    const asset = await app.inject({ url: '/assets/index-abc123.js' });
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.body, 'console.log(1)');
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    // The page by its file name is the page: the same headers as any console path.
    const file = await app.inject({ url: '/index.html' });
    assert.equal(file.statusCode, 200);
    assert.match(file.headers['content-security-policy'] as string, /frame-ancestors 'none'/);
    assert.equal(file.headers['x-frame-options'], 'DENY');
    assert.equal(file.headers['cache-control'], 'no-cache');
    const missing = await app.inject({ url: '/assets/gone-999.js' });
    assert.equal(missing.statusCode, 404);
    assert.doesNotMatch(missing.body, /id="root"/);
  });

  it('leaves API and server paths to their routes: an unknown one is the API’s JSON 404', async () => {
    assert.deepEqual((await app.inject({ url: '/api/ping' })).json(), { pong: true });
    for (const url of ['/api/nope', '/api', '/.well-known/nope', '/oauth/nope', '/metrics/x']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'not_found', url);
    }
  });

  it('says how to build the console when dist/web is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'warden-web-empty-'));
    const bare = await serve(empty);
    try {
      const res = await bare.inject({ url: '/sessions' });
      assert.equal(res.statusCode, 503);
      assert.match(res.body, /npm run build/);
      assert.equal((await bare.inject({ url: '/api/ping' })).statusCode, 200);
    } finally {
      await bare.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('login origins in the console’s CSP', () => {
  it('adds an issuer’s token endpoint origin once its discovery document is read', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token_endpoint: 'https://tokens.example.net/oauth2/token' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realm`;
    const errors: string[] = [];
    try {
      const origins = loginOrigins([issuer, 'http://127.0.0.1:1/down'], (i) => errors.push(i));
      assert.ok(origins().has(new URL(issuer).origin), 'the issuer’s origin is allowed at once');
      for (let i = 0; i < 100 && (!origins().has('https://tokens.example.net') || errors.length === 0); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(
        [...origins()].sort(),
        ['http://127.0.0.1:1', new URL(issuer).origin, 'https://tokens.example.net'].sort(),
      );
      // An issuer that cannot be reached is reported, and keeps only its own origin.
      assert.deepEqual(errors, ['http://127.0.0.1:1/down']);
    } finally {
      server.close();
    }
  });
});
