import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { DIALECTS } from '../testing/dialects.js';
import { errorOf, type Gateway, startGateway } from '../testing/gateway.js';

const BODY_LIMIT = 1024;

const connection = {
  name: 'orders',
  protocol: 'postgres',
  target: { host: 'db.internal', port: 5432 },
};

for (const dialect of DIALECTS) {
  describe(`bad requests (${dialect})`, () => {
    let gw: Gateway;

    before(async () => {
      gw = await startGateway(dialect, {
        config: {
          api: { port: 0, body_limit: BODY_LIMIT },
          identity: { clock_skew: '0s', token_max_ttl: '1h' },
        },
      });
    });
    after(async () => gw?.close());

    it('answers malformed JSON with 400 malformed_json', async () => {
      const res = await gw.api('POST', '/api/connections', { rawBody: '{"name": "orders",' });
      assert.equal(res.status, 400, res.text);
      assert.equal(errorOf(res).code, 'malformed_json');
      assert.match(errorOf(res).message, /^request body is not valid JSON/);
      const empty = await gw.api('POST', '/api/connections', { rawBody: '' });
      assert.deepEqual([empty.status, errorOf(empty).code], [400, 'malformed_json']);
      const form = await gw.api('POST', '/api/connections', {
        rawBody: 'name=orders',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.deepEqual([form.status, errorOf(form).code], [415, 'unsupported_media_type']);
    });

    it('answers unknown fields with 400 validation_failed naming the field', async () => {
      const top = await gw.api('POST', '/api/connections', { body: { ...connection, owner: 'me' } });
      assert.equal(top.status, 400, top.text);
      assert.equal(errorOf(top).code, 'validation_failed');
      assert.match(errorOf(top).message, /^body: Unrecognized key: "owner"$/);

      const nested = await gw.api('POST', '/api/connections', {
        body: { ...connection, target: { ...connection.target, sslmode: 'off' } },
      });
      assert.equal(nested.status, 400, nested.text);
      assert.match(errorOf(nested).message, /^body\.target: Unrecognized key: "sslmode"$/);

      const key = await gw.api('POST', '/api/keys', { body: { name: 'bot', admin: true } });
      assert.equal(key.status, 400, key.text);
      assert.match(errorOf(key).message, /^body: Unrecognized key: "admin"$/);

      const query = await gw.api('GET', '/api/keys?include=secrets');
      assert.equal(query.status, 400, query.text);
      assert.match(errorOf(query).message, /^querystring: Unrecognized key: "include"$/);
    });

    it('names the path of a bad nested field', async () => {
      const res = await gw.api('POST', '/api/connections', {
        body: { ...connection, target: { host: 'db.internal', port: 'fivefourthreetwo' } },
      });
      assert.equal(res.status, 400, res.text);
      const error = errorOf(res);
      assert.equal(error.code, 'validation_failed');
      assert.match(error.message, /^body\.target\.port: .*expected number/);
      assert.deepEqual(error.details, [error.message]);

      const tags = await gw.api('POST', '/api/connections', {
        body: { ...connection, tags: ['ok', 'Not OK'] },
      });
      assert.equal(tags.status, 400, tags.text);
      assert.match(errorOf(tags).message, /^body\.tags\.1: expected a tag of lowercase letters/);
    });

    it('answers a body over api.body_limit with 413', async () => {
      const res = await gw.api('POST', '/api/connections', {
        body: { ...connection, description: 'x'.repeat(BODY_LIMIT) },
      });
      assert.equal(res.status, 413, res.text);
      assert.deepEqual(errorOf(res), { code: 'body_too_large', message: 'request body is too large' });
    });

    it('refuses a missing credential with 401', async () => {
      const res = await gw.api('GET', '/api/whoami', { token: null });
      assert.equal(res.status, 401);
      assert.deepEqual(errorOf(res), { code: 'unauthenticated', message: 'no credential presented' });
      assert.match(res.text, /^\{/);
      const garbage = await gw.api('GET', '/api/whoami', { token: 'not-a-credential' });
      assert.equal(garbage.status, 401);
      await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'missing');
      await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'malformed');
    });

    it('refuses a token signed by another Ed25519 key under the same kid and issuer with 401', async () => {
      const minted = await gw.api('POST', '/api/tokens', { body: { ttl: '10m' } });
      assert.equal(minted.status, 201, minted.text);
      const real = gw.credential((minted.body as { token: string }).token);
      const { kid } = (
        (await gw.api('GET', '/.well-known/jwks.json', { token: null })).body as {
          keys: Array<{ kid: string }>;
        }
      ).keys[0]!;
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      // Everything as the real token has it (jti included), except the key that signed it.
      const { iss, aud, sub, jti, iat, exp, ...claims } = decodeJwt(real);
      const forged = gw.credential(
        await new SignJWT(claims)
          .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
          .setIssuer(iss!)
          .setAudience(aud!)
          .setSubject(sub!)
          .setJti(jti!)
          .setIssuedAt(iat!)
          .setExpirationTime(exp!)
          .sign(privateKey),
      );
      assert.equal((await gw.api('GET', '/api/whoami', { token: real })).status, 200);
      const res = await gw.api('GET', '/api/whoami', { token: forged });
      assert.equal(res.status, 401, res.text);
      assert.deepEqual(errorOf(res), { code: 'unauthenticated', message: 'token signature is invalid' });
      await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'bad_signature');
    });

    it('refuses a correctly signed token without a subject, with a well-formed WWW-Authenticate', async () => {
      const key = createPrivateKey(readFileSync(join(gw.store.dataDir, 'signing.key')));
      const { kid } = (
        (await gw.api('GET', '/.well-known/jwks.json', { token: null })).body as {
          keys: Array<{ kid: string }>;
        }
      ).keys[0]!;
      const token = gw.credential(
        await new SignJWT({ kind: 'service', groups: [] })
          .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
          .setIssuer('warden')
          .setAudience('warden')
          .setJti('no-subject')
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(key),
      );
      const res = await fetch(`${gw.url}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401);
      assert.deepEqual(((await res.json()) as { error: unknown }).error, {
        code: 'unauthenticated',
        message: 'token claim "sub" is invalid',
      });
      assert.equal(
        res.headers.get('www-authenticate'),
        'Bearer error="invalid_token", error_description="token claim \\"sub\\" is invalid"',
      );
    });

    it('refuses an expired token with 401', async () => {
      const minted = await gw.api('POST', '/api/tokens', { body: { ttl: '1s' } });
      assert.equal(minted.status, 201, minted.text);
      const { token, expires_at } = minted.body as { token: string; expires_at: string };
      gw.credential(token);
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expires_at) - Date.now()) + 100));
      const res = await gw.api('GET', '/api/whoami', { token });
      assert.equal(res.status, 401, res.text);
      assert.deepEqual(errorOf(res), { code: 'unauthenticated', message: 'token has expired' });
      assert.match(res.text, /^\{"error"/);
      await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'expired');
    });

    it('answers an unknown route with a JSON 404', async () => {
      for (const [method, path] of [
        ['GET', '/api/nothing-here'],
        ['PUT', '/api/connections'],
        // GET of any other path is the web console's page (its client-side router says what is there).
        ['POST', '/admin'],
        ['GET', '/api'],
      ] as const) {
        const res = await gw.api(method, path, { token: null });
        assert.equal(res.status, 404, res.text);
        assert.deepEqual(errorOf(res), { code: 'not_found', message: `no route ${method} ${path}` });
      }
    });

    it('is still up and serving after all of it', async () => {
      assert.equal(gw.proc.child.exitCode, null);
      const health = await gw.api('GET', '/healthz', { token: null });
      assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
      const connections = await gw.api('GET', '/api/connections');
      assert.deepEqual(connections.body, { connections: [] });
    });

    it('lets no key or token reach the process log', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
