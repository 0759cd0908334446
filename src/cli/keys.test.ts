import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ApiKeyView } from '../identity/api-keys.js';
import { DIALECTS } from '../testing/dialects.js';
import { errorOf, type Gateway, keySecret, startGateway } from '../testing/gateway.js';

const KEY_LINE = /^wdn_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/;

for (const dialect of DIALECTS) {
  describe(`warden keys (${dialect})`, () => {
    let gw: Gateway;
    let ciBot: string;
    let shortLived: string;

    before(async () => {
      gw = await startGateway(dialect, { config: { identity: { roles: { admin: ['platform-admins'] } } } });
    });
    after(async () => gw?.close());

    it('prints a new key once, on stdout, and says so on stderr without it', async () => {
      const res = await gw.cli([
        'keys',
        'create',
        '--name',
        'ci-bot',
        '--groups',
        'deployers',
        '--kind',
        'agent',
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, KEY_LINE);
      ciBot = gw.credential(res.stdout.trim());
      assert.match(
        res.stderr,
        /^created API key ci-bot \(id [0-9a-f]{16}, agent\); it is shown only now:\n$/,
      );

      const me = await gw.api('GET', '/api/whoami', { token: ciBot });
      assert.equal(me.status, 200, me.text);
      assert.deepEqual(
        [
          (me.body as { subject: string }).subject,
          (me.body as { kind: string }).kind,
          (me.body as { groups: string[] }).groups,
          (me.body as { roles: string[] }).roles,
        ],
        ['ci-bot', 'agent', ['deployers'], ['user']],
      );
    });

    it('stores only a hash of the key', async () => {
      const [, id, secret] = /^wdn_([0-9a-f]{16})_(.+)$/.exec(ciBot)!;
      const store = gw.openStore();
      try {
        const row = await store.db
          .selectFrom('api_keys')
          .selectAll()
          .where('id', '=', id!)
          .executeTakeFirstOrThrow();
        assert.equal(row.secret_hash, createHash('sha256').update(secret!).digest('hex'));
        assert.ok(!JSON.stringify(row).includes(secret!), 'the api_keys row holds the secret');
        const all = JSON.stringify(await store.db.selectFrom('api_keys').selectAll().execute());
        assert.ok(!all.includes(keySecret(gw.adminKey)!), 'the bootstrap key is stored in clear');
      } finally {
        await store.close();
      }
    });

    it('lists keys as a table and as JSON, never the keys themselves', async () => {
      const table = await gw.cli(['keys', 'ls']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^ID\s+NAME\s+KIND\s+GROUPS\s+CREATED\s+EXPIRES\s+REVOKED\s+LAST USED$/m);
      assert.match(table.stdout, /^[0-9a-f]{16}\s+ci-bot\s+agent\s+deployers\s/m);
      assert.match(table.stdout, /^[0-9a-f]{16}\s+bootstrap-admin\s+service\s+warden:admin\s/m);

      const json = await gw.cli(['keys', 'ls', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const keys = JSON.parse(json.stdout) as ApiKeyView[];
      assert.deepEqual(
        keys.map((k) => [k.name, k.kind, k.groups, k.revoked_at]),
        [
          ['bootstrap-admin', 'service', ['warden:admin'], null],
          ['ci-bot', 'agent', ['deployers'], null],
        ],
      );
      for (const out of [table.stdout, json.stdout]) {
        assert.ok(!out.includes('wdn_'), 'a key was listed');
        assert.ok(!out.includes(keySecret(ciBot)!));
      }
    });

    it('refuses a zero lifetime instead of creating a key that never expires', async () => {
      const res = await gw.cli(['keys', 'create', '--name', 'zero-bot', '--expires', '0s']);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /^warden: 400 validation_failed: body\.expires_in: must be at least 1s\n$/);
    });

    it('refuses a second live key with the same name', async () => {
      const res = await gw.cli(['keys', 'create', '--name', 'ci-bot']);
      assert.notEqual(res.code, 0);
      assert.equal(res.stdout, '');
      assert.match(
        res.stderr,
        /^warden: 409 conflict: a live API key named "ci-bot" exists; revoke it first\n$/,
      );
    });

    it('refuses a revoked key with 401 and audits the refusal as revoked', async () => {
      const res = await gw.cli(['keys', 'revoke', 'ci-bot']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^revoked API key ci-bot \([0-9a-f]{16}\)\n$/);

      const refused = await gw.api('GET', '/api/whoami', { token: ciBot });
      assert.equal(refused.status, 401);
      assert.deepEqual(errorOf(refused), { code: 'unauthenticated', message: 'API key ci-bot was revoked' });
      const event = await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'revoked');
      assert.deepEqual(
        [event.outcome, event.target, event.payload.credential_kind],
        ['denied', 'GET /api/whoami', 'api_key'],
      );

      const listed = JSON.parse((await gw.cli(['keys', 'ls', '--json'])).stdout) as ApiKeyView[];
      assert.ok(!listed.some((k) => k.name === 'ci-bot'), 'revoked keys are hidden without --all');
      const all = JSON.parse((await gw.cli(['keys', 'ls', '--all', '--json'])).stdout) as ApiKeyView[];
      assert.notEqual(all.find((k) => k.name === 'ci-bot')?.revoked_at, null);
    });

    it('refuses an expired key with 401 and audits the refusal as expired', async () => {
      const res = await gw.cli([
        'keys',
        'create',
        '--name',
        'short-lived',
        '--groups',
        'platform-admins',
        '--expires',
        '1s',
      ]);
      assert.equal(res.code, 0, res.stderr);
      shortLived = gw.credential(res.stdout.trim());
      assert.match(res.stderr, /, expires \d{4}-\d\d-\d\dT/);
      const view = (await gw.api('GET', '/api/keys')).body as { keys: ApiKeyView[] };
      const expiresAt = Date.parse(view.keys.find((k) => k.name === 'short-lived')!.expires_at!);
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));

      const refused = await gw.api('GET', '/api/keys', { token: shortLived });
      assert.equal(refused.status, 401);
      assert.deepEqual(errorOf(refused), {
        code: 'unauthenticated',
        message: 'API key short-lived has expired',
      });
      const event = await gw.waitForAudit('auth.refused', (r) => r.payload.reason === 'expired');
      assert.deepEqual([event.target, event.payload.credential_kind], ['GET /api/keys', 'api_key']);
    });

    it('revokes a key pasted whole, keeping its secret out of URLs and logs', async () => {
      const make = async (name: string) => {
        const res = await gw.cli(['keys', 'create', '--name', name]);
        assert.equal(res.code, 0, res.stderr);
        return gw.credential(res.stdout.trim());
      };
      const pasted = await make('pasted-bot');
      const res = await gw.cli(['keys', 'revoke', pasted]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^revoked API key pasted-bot /);
      // Through the raw API too: the server takes the id from the key and logs only the id.
      const raw = await make('raw-bot');
      const del = await gw.api('DELETE', `/api/keys/${raw}`);
      assert.equal(del.status, 200, del.text);
      assert.equal((del.body as ApiKeyView).name, 'raw-bot');
      const missing = await gw.api('DELETE', `/api/nothing/${raw}`);
      assert.equal(missing.status, 404);
      assert.ok(!missing.text.includes(raw.slice(22)), 'the 404 does not echo the secret');
      const mask = /wdn_[0-9a-f]{16}_\[redacted\]/;
      assert.match(await gw.proc.waitForLog(mask), mask, 'the log shows which key, not the key');
    });

    it('audits creation and revocation without the key', async () => {
      const created = await gw.waitForAudit('key.created', (r) => r.payload.name === 'ci-bot');
      assert.deepEqual([created.actor.subject, created.payload.kind], ['bootstrap-admin', 'agent']);
      await gw.waitForAudit('key.revoked', (r) => r.payload.name === 'ci-bot');
    });

    it('lets no key reach the process log or stderr', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
