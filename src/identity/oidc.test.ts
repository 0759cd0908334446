import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { type OidcClient, type OidcProvider, startOidcProvider } from '../testing/oidc-provider.js';
import { api, startWarden, type WardenProcess } from '../testing/warden-process.js';
import type { AuthFailure } from './errors.js';

interface WhoAmI {
  subject: string;
  kind: string;
  groups: string[];
  roles: string[];
  via: string;
  issuer: string;
  token_id: string | null;
}

interface AuditRecord {
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}

interface ProviderKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The private JWK the provider loads. */
  jwk: JWK;
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<ProviderKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, publicKey, jwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' } };
}

const CLIENTS: OidcClient[] = [
  { id: 'ci-platform', secret: 'platform-secret', groups: ['platform'] },
  { id: 'sec-reviewer', secret: 'security-secret', groups: ['security'] },
  { id: 'intern', secret: 'intern-secret', groups: ['interns'] },
  // A real token from the same issuer, but minted for another API.
  { id: 'billing-app', secret: 'billing-secret', groups: ['platform'], audience: 'billing' },
];

describe('OIDC authentication against a real provider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-oidc-'));
  const dataDir = join(dir, 'data');
  let rsa: ProviderKey;
  let ec: ProviderKey;
  let provider: OidcProvider;
  let warden: WardenProcess;
  let adminKey: string;

  before(async () => {
    rsa = await signingKey('RS256', 'rsa-1');
    // Published by the provider, so a token it signs fails only on the algorithm allow-list.
    ec = await signingKey('ES256', 'ec-1');
    provider = await startOidcProvider({ keys: [rsa.jwk, ec.jwk], clients: CLIENTS });
    warden = await startWarden({
      dir,
      config: {
        data_dir: dataDir,
        identity: {
          // Spelled out: longer than the provider's 300 s tokens, so minting must clamp to their exp.
          token_ttl: '15m',
          token_max_ttl: '12h',
          clock_skew: '30s',
          oidc: [
            {
              issuer: provider.issuer,
              audience: 'warden',
              groups_claim: 'groups',
              algorithms: ['RS256'],
              jwks_refresh_cooldown: '1s',
            },
          ],
          roles: { admin: ['platform'], auditor: ['security'] },
        },
      },
    });
    adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  });

  after(async () => {
    await warden?.stop();
    await provider?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const whoami = (token: string) => api(warden.url, 'GET', '/api/whoami', { token });

  /** A token with valid claims for the configured issuer, signed as the test says. */
  function craft(
    claims: JWTPayload,
    sign: { key?: CryptoKey | Uint8Array; alg?: string; kid?: string } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = {
      iss: provider.issuer,
      aud: 'warden',
      sub: 'crafted-client',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
      groups: ['platform'],
      ...claims,
    };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: sign.alg ?? 'RS256', kid: sign.kid ?? rsa.kid, typ: 'at+jwt' })
      .sign(sign.key ?? rsa.privateKey);
  }

  const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = () => Math.floor(Date.now() / 1000);

  /** Every way a token must be refused, with the reason the audit trail must give. */
  const REFUSALS: { name: string; reason: AuthFailure; token: () => Promise<string> }[] = [
    {
      name: 'an expired token (exp beyond the clock skew)',
      reason: 'expired',
      token: () => craft({ iat: now() - 600, exp: now() - 120 }),
    },
    {
      name: 'a token whose nbf is in the future',
      reason: 'not_yet_valid',
      token: () => craft({ nbf: now() + 600 }),
    },
    {
      name: 'a real provider token minted for another audience',
      reason: 'wrong_audience',
      token: () => provider.token('billing-app'),
    },
    {
      name: 'a token whose iss only differs from the configured issuer by a trailing slash',
      reason: 'wrong_issuer',
      token: () => craft({ iss: `${provider.issuer}/` }),
    },
    {
      name: 'a token from an issuer that is not configured',
      reason: 'unknown_issuer',
      token: () => craft({ iss: 'http://127.0.0.1:9/unconfigured' }),
    },
    {
      name: "a forged signature under the provider's kid",
      reason: 'bad_signature',
      token: async () => craft({}, { key: (await signingKey('RS256', rsa.kid)).privateKey }),
    },
    {
      name: 'a token signed by a key the provider never published',
      reason: 'unknown_key_id',
      token: async () => {
        const unpublished = await signingKey('RS256', 'rsa-unpublished');
        return craft({}, { key: unpublished.privateKey, kid: unpublished.kid });
      },
    },
    {
      name: 'an unsigned token (alg none)',
      reason: 'algorithm_not_allowed',
      token: async () => {
        const payload = decodeJwt(await craft({}));
        return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
      },
    },
    {
      name: "an HS256 token keyed with the provider's public key (algorithm confusion)",
      reason: 'algorithm_not_allowed',
      token: async () =>
        craft({}, { alg: 'HS256', key: new TextEncoder().encode(await exportSPKI(rsa.publicKey)) }),
    },
    {
      name: 'an ES256 token from a published key when only RS256 is allowed',
      reason: 'algorithm_not_allowed',
      token: () => craft({}, { alg: 'ES256', kid: ec.kid, key: ec.privateKey }),
    },
  ];

  async function lastSeq(): Promise<number> {
    const res = await api(warden.url, 'GET', '/api/audit?tail=true&limit=1', { token: adminKey });
    assert.equal(res.status, 200, res.text);
    return (res.body as { last_seq: number }).last_seq;
  }

  /** Audit records of a type after a seq; refusals are written off the request path, so wait for `count`. */
  async function auditAfter(seq: number, type: string, count: number): Promise<AuditRecord[]> {
    for (let attempt = 0; ; attempt++) {
      const res = await api(warden.url, 'GET', `/api/audit?type=${type}&after_seq=${seq}&limit=1000`, {
        token: adminKey,
      });
      assert.equal(res.status, 200, res.text);
      const { records } = res.body as { records: AuditRecord[] };
      if (records.length >= count || attempt === 100) return records;
      await sleep(50);
    }
  }

  it('accepts a real provider token and maps its groups to roles', async () => {
    const token = await provider.token('ci-platform');
    const res = await whoami(token);
    assert.equal(res.status, 200, res.text);
    const me = res.body as WhoAmI;
    assert.equal(me.subject, 'ci-platform');
    assert.equal(
      me.kind,
      'service',
      'a client-credentials token (sub = client_id) is a machine, not a person',
    );
    assert.deepEqual(me.groups, ['platform']);
    assert.deepEqual(me.roles, ['admin', 'user']);
    assert.equal(me.via, 'oidc');
    assert.equal(me.issuer, provider.issuer);
    assert.equal(me.token_id, decodeJwt(token).jti);
    assert.equal((await api(warden.url, 'GET', '/api/keys', { token })).status, 200);

    const auditor = await provider.token('sec-reviewer');
    const reviewer = (await whoami(auditor)).body as WhoAmI;
    assert.deepEqual([reviewer.subject, reviewer.roles], ['sec-reviewer', ['auditor', 'user']]);
    assert.equal((await api(warden.url, 'GET', '/api/audit?limit=1', { token: auditor })).status, 200);
    assert.equal((await api(warden.url, 'GET', '/api/keys', { token: auditor })).status, 403);
  });

  it('gives a caller in no mapped group only the user role and 403 on admin routes', async () => {
    const token = await provider.token('intern');
    const res = await whoami(token);
    assert.equal(res.status, 200, res.text);
    const me = res.body as WhoAmI;
    assert.deepEqual([me.subject, me.groups, me.roles], ['intern', ['interns'], ['user']]);
    const keys = await api(warden.url, 'GET', '/api/keys', { token });
    assert.equal(keys.status, 403, keys.text);
    assert.match(keys.text, /needs the admin role; you have user/);
  });

  // Controls for the refusals below: a token crafted this way is refused for the one flaw it has.
  it('accepts a token signed with the provider key and valid claims', async () => {
    const res = await whoami(await craft({}));
    assert.equal(res.status, 200, res.text);
    assert.equal((res.body as WhoAmI).subject, 'crafted-client');
  });

  it("cannot claim Warden's reserved groups: warden:admin from a provider grants nothing", async () => {
    const token = await craft({ sub: 'mallory', groups: ['warden:admin', 'warden:auditor', 'dev'] });
    const res = await whoami(token);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([(res.body as WhoAmI).groups, (res.body as WhoAmI).roles], [['dev'], ['user']]);
    assert.equal((await api(warden.url, 'GET', '/api/keys', { token })).status, 403);
    // Nor through a Warden token minted from it.
    const minted = await api(warden.url, 'POST', '/api/tokens', { token, body: { ttl: '1m' } });
    assert.equal(minted.status, 201, minted.text);
    const derived = (await whoami((minted.body as { token: string }).token)).body as WhoAmI;
    assert.deepEqual([derived.groups, derived.roles], [['dev'], ['user']]);
  });

  it('takes a token issued to a person through an app as a human', async () => {
    const res = await whoami(await craft({ sub: 'alice', client_id: 'warden-cli', azp: 'warden-cli' }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([(res.body as WhoAmI).subject, (res.body as WhoAmI).kind], ['alice', 'human']);
  });

  it('tolerates an exp that passed within the 30 s clock skew', async () => {
    const res = await whoami(await craft({ iat: now() - 300, exp: now() - 10 }));
    assert.equal(res.status, 200, res.text);
  });

  describe('refuses with 401 and the reason in the audit trail', () => {
    for (const c of REFUSALS) {
      it(`${c.name}: ${c.reason}`, async () => {
        const since = await lastSeq();
        const res = await fetch(`${warden.url}/api/whoami`, {
          headers: { authorization: `Bearer ${await c.token()}` },
        });
        const text = await res.text();
        assert.equal(res.status, 401, text);
        assert.match(text, /"code":"unauthenticated"/);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
        const [record] = await auditAfter(since, 'auth.refused', 1);
        assert.equal(record?.payload.reason, c.reason);
      });
    }
  });

  it('writes every refusal to the audit trail with its reason, and the token nowhere', async () => {
    const since = await lastSeq();
    const sent: string[] = [];
    for (const c of REFUSALS) {
      const token = await c.token();
      sent.push(token);
      assert.equal((await whoami(token)).status, 401);
    }
    const refused = await auditAfter(since, 'auth.refused', REFUSALS.length);
    assert.deepEqual(
      refused.map((r) => r.payload.reason),
      REFUSALS.map((c) => c.reason),
    );
    for (const r of refused) assert.equal(r.payload.credential_kind, 'oidc');

    const trail = JSON.stringify(await auditAfter(0, '*', 0));
    const logs = warden.logs();
    for (const token of sent) {
      // The whole token, and its payload and signature on their own (a header is shared by many).
      const [, payload, signature] = token.split('.');
      for (const part of [token, payload, signature]) {
        if (!part) continue;
        assert.ok(!trail.includes(part), `the audit trail holds a refused token: ${part.slice(0, 24)}…`);
        assert.ok(!logs.includes(part), `the process log holds a refused token: ${part.slice(0, 24)}…`);
      }
    }
  });

  it('mints a Warden token from an OIDC identity that ends no later than it and dies when revoked', async () => {
    const oidc = await provider.token('ci-platform');
    const oidcExp = decodeJwt(oidc).exp!;
    const minted = await api(warden.url, 'POST', '/api/tokens', { token: oidc, body: {} });
    assert.equal(minted.status, 201, minted.text);
    const { token, jti, expires_at } = minted.body as { token: string; jti: string; expires_at: string };
    assert.ok(Date.parse(expires_at) <= oidcExp * 1000, `${expires_at} is after the OIDC token's exp`);
    assert.ok(decodeJwt(token).exp! <= oidcExp);

    const me = await whoami(token);
    assert.equal(me.status, 200, me.text);
    const view = me.body as WhoAmI;
    assert.deepEqual(
      [view.subject, view.via, view.token_id, view.roles],
      ['ci-platform', 'warden_token', jti, ['admin', 'user']],
    );

    const revoked = await api(warden.url, 'DELETE', `/api/tokens/${jti}`, { token: oidc });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual((revoked.body as { revoked: string[] }).revoked, [jti]);
    const refused = await whoami(token);
    assert.equal(refused.status, 401, refused.text);
    assert.match(refused.text, /revoked/);
  });

  // Last: it replaces the provider's key set.
  it('fetches the JWKS through discovery and refetches it when an unknown kid appears', async () => {
    const old = await provider.token('ci-platform');
    assert.equal((await whoami(old)).status, 200);
    const served = provider.requests();
    const discovery = served.indexOf('/.well-known/openid-configuration');
    assert.ok(discovery >= 0, `no discovery request in ${served.join(', ')}`);
    assert.ok(served.indexOf('/jwks') > discovery, `no JWKS fetch after discovery in ${served.join(', ')}`);

    // Rotate: same issuer and port, a new key first (so it signs), the old one still published.
    await provider.stop();
    const rotated = await signingKey('RS256', 'rsa-2');
    provider = await startOidcProvider({
      port: provider.port,
      keys: [rotated.jwk, rsa.jwk, ec.jwk],
      clients: CLIENTS,
    });
    await sleep(1_200); // past jwks_refresh_cooldown, which counts from the last fetch

    const fresh = await provider.token('ci-platform');
    assert.equal(decodeProtectedHeader(fresh).kid, 'rsa-2');
    const res = await whoami(fresh);
    assert.equal(res.status, 200, res.text);
    assert.equal((res.body as WhoAmI).subject, 'ci-platform');
    assert.ok(provider.requests().includes('/jwks'), 'the gateway did not refetch the JWKS');
    assert.equal((await whoami(old)).status, 200, 'a token from the old, still published key');
  });
});
