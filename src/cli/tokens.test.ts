import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { TokenView } from '../identity/warden-tokens.js';
import { DIALECTS } from '../testing/dialects.js';
import { errorOf, type Gateway, startGateway } from '../testing/gateway.js';

for (const dialect of DIALECTS) {
  describe(`warden token (${dialect})`, () => {
    let gw: Gateway;
    let parent: string;
    let parentJti: string;
    let child: string;
    let childJti: string;

    before(async () => {
      gw = await startGateway(dialect, { config: { identity: { token_max_ttl: '1h' } } });
    });
    after(async () => gw?.close());

    /**
     * `GET /api/whoami` with `token` until it is refused. A revocation written behind this
     * gateway's back (as another gateway sharing the store writes one) is seen once the token's
     * last verification is older than `identity.login_cache` (1s by default); this fails if
     * it is not within 5 s.
     */
    const refusedWithinCache = async (token: string) => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const res = await gw.api('GET', '/api/whoami', { token });
        if (res.status !== 200 || Date.now() > deadline) {
          assert.equal(res.status, 401, res.text);
          return res;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    it('mints a token that works as WARDEN_TOKEN', async () => {
      const res = await gw.cli(['token', 'create', '--ttl', '5m']);
      assert.equal(res.code, 0, res.stderr);
      parent = gw.credential(res.stdout.trim());
      assert.equal(res.stdout, `${parent}\n`);
      parentJti = decodeJwt(parent).jti!;
      assert.match(res.stderr, new RegExp(`^token ${parentJti}, expires \\S+:\\n$`));

      const me = await gw.cli(['whoami', '--json'], { token: parent });
      assert.equal(me.code, 0, me.stderr);
      const who = JSON.parse(me.stdout) as {
        subject: string;
        via: string;
        token_id: string;
        roles: string[];
      };
      assert.deepEqual(
        [who.subject, who.via, who.token_id, who.roles],
        ['bootstrap-admin', 'warden_token', parentJti, ['admin', 'user']],
      );
    });

    it('is an EdDSA JWT carrying sub, groups, kind, jti, exp and scope', async () => {
      const header = decodeProtectedHeader(parent);
      assert.equal(header.alg, 'EdDSA');
      const jwks = (await gw.api('GET', '/.well-known/jwks.json', { token: null })).body as {
        keys: Array<{ kid: string }>;
      };
      assert.equal(header.kid, jwks.keys[0]!.kid);
      const claims = decodeJwt(parent);
      assert.equal(claims.sub, 'bootstrap-admin');
      assert.deepEqual(claims.groups, ['warden:admin']);
      assert.equal(claims.kind, 'service');
      assert.equal(claims.scope, '*');
      assert.equal(claims.iss, 'warden');
      assert.equal(typeof claims.exp, 'number');
      assert.ok(claims.exp! - claims.iat! <= 300, 'the token outlives its --ttl');
    });

    it('records the jti in the tokens table', async () => {
      const store = gw.openStore();
      try {
        const row = await store.db
          .selectFrom('tokens')
          .selectAll()
          .where('jti', '=', parentJti)
          .executeTakeFirst();
        assert.ok(row, 'no tokens row for the jti');
        assert.deepEqual([row.subject, row.parent_jti, row.revoked_at], ['bootstrap-admin', null, null]);
        assert.match(row.issued_via, /^api_key:[0-9a-f]{16}$/);
        assert.ok(!JSON.stringify(row).includes(parent.split('.')[2]!), 'the token itself is stored');
      } finally {
        await store.close();
      }
    });

    it('refuses a ttl above identity.token_max_ttl with 400', async () => {
      const res = await gw.api('POST', '/api/tokens', { body: { ttl: '2h' } });
      assert.equal(res.status, 400);
      assert.deepEqual(errorOf(res), { code: 'bad_request', message: 'ttl must be between 1s and 3600s' });
      const cli = await gw.cli(['token', 'create', '--ttl', '2h']);
      assert.notEqual(cli.code, 0);
      assert.equal(cli.stdout, '');
      assert.equal(cli.stderr, 'warden: 400 bad_request: ttl must be between 1s and 3600s\n');
    });

    it('records the parent jti of a token minted from a token', async () => {
      const res = await gw.cli(['token', 'create', '--ttl', '1m', '--json'], { token: parent });
      assert.equal(res.code, 0, res.stderr);
      const minted = JSON.parse(res.stdout) as { token: string; jti: string };
      child = gw.credential(minted.token);
      childJti = minted.jti;

      const ls = await gw.cli(['token', 'ls', '--json'], { token: child });
      assert.equal(ls.code, 0, ls.stderr);
      const tokens = JSON.parse(ls.stdout) as TokenView[];
      const view = tokens.find((t) => t.jti === childJti);
      assert.deepEqual([view?.parent_jti, view?.issued_via], [parentJti, `warden_token:${parentJti}`]);

      const table = await gw.cli(['token', 'ls'], { token: child });
      assert.match(
        table.stdout,
        /^JTI\s+SUBJECT\s+KIND\s+ROOT\s+PARENT\s+PARENT SESSION\s+ISSUED\s+EXPIRES\s+REVOKED$/m,
      );
      assert.match(
        table.stdout,
        new RegExp(
          `^${childJti}\\s+bootstrap-admin\\s+service\\s+bootstrap-admin\\s+${parentJti}\\s+-\\s`,
          'm',
        ),
      );
    });

    it('revokes the child with its parent, and refuses both afterwards', async () => {
      assert.equal((await gw.api('GET', '/api/whoami', { token: child })).status, 200);
      const res = await gw.cli(['token', 'revoke', parentJti]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^revoked 2 token\(s\): /);
      assert.ok(res.stdout.includes(parentJti) && res.stdout.includes(childJti), res.stdout);

      for (const token of [parent, child]) {
        const refused = await gw.api('GET', '/api/whoami', { token });
        assert.equal(refused.status, 401);
        assert.deepEqual(errorOf(refused), { code: 'unauthenticated', message: 'token was revoked' });
      }
      const whoami = await gw.cli(['whoami'], { token: child });
      assert.notEqual(whoami.code, 0);
      assert.equal(whoami.stderr, 'warden: 401 unauthenticated: token was revoked\n');

      const store = gw.openStore();
      try {
        const rows = await store.db
          .selectFrom('tokens')
          .select(['jti', 'revoked_at'])
          .where('jti', 'in', [parentJti, childJti])
          .execute();
        assert.equal(rows.filter((r) => r.revoked_at !== null).length, 2);
      } finally {
        await store.close();
      }
      await gw.waitForAudit('token.revoked', (r) => r.target === `token:${parentJti}`);
      await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'revoked');
    });

    it('refuses a token whose parent was revoked even if the cascade missed it', async () => {
      // A child minted while its parent was being revoked is not in the cascade's list:
      // simulate exactly that by revoking the parent row alone, behind the API's back.
      const p = JSON.parse((await gw.cli(['token', 'create', '--ttl', '5m', '--json'])).stdout) as {
        token: string;
        jti: string;
      };
      gw.credential(p.token);
      const c = JSON.parse(
        (await gw.cli(['token', 'create', '--ttl', '1m', '--json'], { token: p.token })).stdout,
      ) as {
        token: string;
      };
      gw.credential(c.token);
      assert.equal((await gw.api('GET', '/api/whoami', { token: c.token })).status, 200);
      const store = gw.openStore();
      try {
        await store.db
          .updateTable('tokens')
          .set({ revoked_at: new Date().toISOString() })
          .where('jti', '=', p.jti)
          .execute();
      } finally {
        await store.close();
      }
      const refused = await refusedWithinCache(c.token);
      assert.equal(errorOf(refused).message, 'a token this one was minted from was revoked');
    });

    it('refuses a token whose API key was revoked even if no token was revoked with it', async () => {
      const created = JSON.parse(
        (await gw.cli(['keys', 'create', '--name', 'quiet-bot', '--json'])).stdout,
      ) as { key: string; api_key: { id: string } };
      const key = gw.credential(created.key);
      const t = JSON.parse(
        (await gw.cli(['token', 'create', '--ttl', '5m', '--json'], { token: key })).stdout,
      ) as {
        token: string;
      };
      gw.credential(t.token);
      assert.equal((await gw.api('GET', '/api/whoami', { token: t.token })).status, 200);
      // Revoke the key row alone (as a second gateway mid-revocation would leave it): no cascade ran.
      const store = gw.openStore();
      try {
        await store.db
          .updateTable('api_keys')
          .set({ revoked_at: new Date().toISOString() })
          .where('id', '=', created.api_key.id)
          .execute();
      } finally {
        await store.close();
      }
      const refused = await refusedWithinCache(t.token);
      assert.equal(errorOf(refused).message, 'the API key this token was minted from was revoked');
    });

    it('ends every token minted from an API key when the key is revoked', async () => {
      const created = JSON.parse(
        (await gw.cli(['keys', 'create', '--name', 'minting-bot', '--groups', 'warden:admin', '--json']))
          .stdout,
      ) as { key: string };
      const key = gw.credential(created.key);
      const t = JSON.parse(
        (await gw.cli(['token', 'create', '--ttl', '30m', '--json'], { token: key })).stdout,
      ) as {
        token: string;
        jti: string;
      };
      const token = gw.credential(t.token);
      const grandchild = JSON.parse(
        (await gw.cli(['token', 'create', '--ttl', '5m', '--json'], { token })).stdout,
      ) as { token: string };
      gw.credential(grandchild.token);
      assert.equal((await gw.api('GET', '/api/whoami', { token })).status, 200);

      const revoked = await gw.cli(['keys', 'revoke', 'minting-bot']);
      assert.equal(revoked.code, 0, revoked.stderr);
      for (const t2 of [key, token, grandchild.token]) {
        const res = await gw.api('POST', '/api/keys', { token: t2, body: { name: 'backdoor' } });
        assert.equal(res.status, 401, `a credential descended from the revoked key still works: ${res.text}`);
      }
      const event = await gw.waitForAudit('key.revoked', (r) => r.payload.name === 'minting-bot');
      assert.equal((event.payload.tokens_revoked as string[]).length, 2);
      const ls = JSON.parse((await gw.cli(['token', 'ls', '--all', '--json'])).stdout) as TokenView[];
      assert.notEqual(ls.find((x) => x.jti === t.jti)?.revoked_at ?? null, null);
    });

    it('revokes a token pasted whole into the path, and logs only a mask of it', async () => {
      const t = JSON.parse((await gw.cli(['token', 'create', '--ttl', '2m', '--json'])).stdout) as {
        token: string;
        jti: string;
      };
      gw.credential(t.token);
      const res = await gw.api('DELETE', `/api/tokens/${t.token}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual((res.body as { revoked: string[] }).revoked, [t.jti]);
      const mask = /\/api\/tokens\/\[redacted-jwt\]/;
      assert.match(await gw.proc.waitForLog(mask), mask);
    });

    it('lets no token reach the process log or stderr', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
