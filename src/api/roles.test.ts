import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../audit/record.js';
import { type NewSession, Sessions, type SessionView } from '../store/sessions.js';
import { DIALECTS } from '../testing/dialects.js';
import {
  type ApiResponse,
  apiKeys,
  errorOf,
  type Gateway,
  keySecret,
  startGateway,
} from '../testing/gateway.js';

const PASSWORD = 'roles-Pw-7d3c0e9f15';

function session(id: string, subject: string, root: string, minutesAgo: number): NewSession {
  return {
    id,
    subject,
    kind: subject === root ? 'human' : 'agent',
    root_subject: root,
    chain: subject === root ? [] : [subject],
    token_id: null,
    parent_session_id: null,
    connection: 'orders',
    protocol: 'postgres',
    client_addr: '10.0.0.7',
    status: 'ended',
    started_at: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    ended_at: new Date(Date.now() - (minutesAgo - 1) * 60_000).toISOString(),
  };
}

const SESSIONS = [
  session('s-alice-1', 'alice', 'alice', 30),
  session('s-alice-agent', 'alice-agent', 'alice', 20),
  session('s-bob-1', 'bob', 'bob', 10),
];

for (const dialect of DIALECTS) {
  describe(`roles (${dialect})`, () => {
    let gw: Gateway;
    let keys: Record<'alice' | 'bob' | 'sec', string>;
    /** Everything alice was answered, to prove none of it carries a secret. */
    const seenByAlice: ApiResponse[] = [];
    const asAlice = async (method: string, path: string, body?: unknown) => {
      const res = await gw.api(method, path, { token: keys.alice!, body });
      seenByAlice.push(res);
      return res;
    };

    before(async () => {
      gw = await startGateway(dialect, {
        config: {
          identity: { token_max_ttl: '1h', roles: { admin: ['platform-admins'], auditor: ['security'] } },
        },
      });
      gw.secret(PASSWORD);
      keys = await apiKeys(gw, { alice: ['staff'], bob: ['staff'], sec: ['security'] });
      const conn = await gw.api('POST', '/api/connections', {
        body: {
          name: 'orders',
          protocol: 'postgres',
          target: { host: 'db.internal', port: 5432 },
          credentials: { user: 'app', password: PASSWORD },
        },
      });
      assert.equal(conn.status, 201, conn.text);
      const store = gw.openStore();
      try {
        const sessions = new Sessions(store);
        for (const s of SESSIONS) await sessions.insert(s);
      } finally {
        await store.close();
      }
    });
    after(async () => gw?.close());

    it('forbids a user without a role to change connections, list keys or read the audit trail (403, access.denied)', async () => {
      const refused: Array<[string, string, unknown?]> = [
        ['POST', '/api/connections', { name: 'mine', protocol: 'http', target: { host: 'h', port: 80 } }],
        ['DELETE', '/api/connections/orders'],
        ['GET', '/api/keys'],
        ['POST', '/api/keys', { name: 'alice-2' }],
        ['GET', '/api/audit'],
        ['GET', '/api/audit/export'],
      ];
      for (const [method, path, body] of refused) {
        const res = await asAlice(method, path, body);
        assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
        assert.equal(errorOf(res).code, 'forbidden');
        assert.match(errorOf(res).message, /^this needs the (admin|auditor) role; you have user$/);
      }
      const denied = await gw.waitForAudit(
        'access.denied',
        (r) => r.actor.subject === 'alice' && r.target === 'GET /api/audit/export',
      );
      assert.deepEqual([denied.outcome, denied.payload.required_role], ['denied', 'auditor']);
      const all = (await gw.api('GET', '/api/audit?type=access.denied&limit=1000')).body as {
        records: AuditRecord[];
      };
      assert.equal(all.records.filter((r) => r.actor.subject === 'alice').length, refused.length);
      assert.equal(
        (await gw.api('GET', '/api/connections/orders')).status,
        200,
        'the refused DELETE removed it',
      );
    });

    it("shows a user only their own sessions and answers 404 for someone else's", async () => {
      const list = await asAlice('GET', '/api/sessions');
      assert.equal(list.status, 200, list.text);
      const ids = (list.body as { sessions: SessionView[] }).sessions.map((s) => s.id);
      assert.deepEqual(ids, ['s-alice-agent', 's-alice-1']);

      assert.equal((await asAlice('GET', '/api/sessions/s-alice-agent')).status, 200);
      const bobs = await asAlice('GET', '/api/sessions/s-bob-1');
      assert.equal(bobs.status, 404);
      assert.deepEqual(errorOf(bobs), { code: 'not_found', message: 'session s-bob-1 does not exist' });
      const filtered = await asAlice('GET', '/api/sessions?subject=bob');
      assert.deepEqual((filtered.body as { sessions: SessionView[] }).sessions, []);

      const cli = await gw.cli(['sessions', 'ls', '--json'], { token: keys.bob! });
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(
        (JSON.parse(cli.stdout) as SessionView[]).map((s) => s.id),
        ['s-bob-1'],
      );
    });

    it('never shows a user a secret', async () => {
      assert.equal((await asAlice('GET', '/api/connections')).status, 200);
      assert.equal((await asAlice('GET', '/api/connections/orders')).status, 200);
      assert.equal((await asAlice('GET', '/api/whoami')).status, 200);
      const minted = await asAlice('POST', '/api/tokens', { ttl: '1m' });
      assert.equal(minted.status, 201, minted.text);
      gw.credential((minted.body as { token: string }).token);
      const tokens = await asAlice('GET', '/api/tokens?subject=bootstrap-admin');
      assert.deepEqual(
        (tokens.body as { tokens: Array<{ subject: string }> }).tokens.map((t) => t.subject),
        ['alice'],
      );
      const others = [gw.adminKey, keys.bob!, keys.sec!].flatMap((k) => [k, keySecret(k)!]);
      for (const res of seenByAlice) {
        assert.ok(!res.text.includes(PASSWORD), res.text);
        for (const k of others) assert.ok(!res.text.includes(k), `another caller's key in ${res.text}`);
      }
    });

    it('lets an auditor see every session and the audit trail, but not change connections', async () => {
      const sec = keys.sec!;
      const list = await gw.api('GET', '/api/sessions', { token: sec });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(
        (list.body as { sessions: SessionView[] }).sessions.map((s) => s.id),
        ['s-bob-1', 's-alice-agent', 's-alice-1'],
      );
      assert.equal((await gw.api('GET', '/api/sessions/s-bob-1', { token: sec })).status, 200);

      const audit = await gw.api('GET', '/api/audit?type=access.denied', { token: sec });
      assert.equal(audit.status, 200, audit.text);
      assert.ok((audit.body as { records: AuditRecord[] }).records.length > 0);
      assert.equal((await gw.api('GET', '/api/audit/verify', { token: sec })).status, 200);

      const create = await gw.api('POST', '/api/connections', {
        token: sec,
        body: { name: 'audit-db', protocol: 'postgres', target: { host: 'h', port: 5432 } },
      });
      assert.equal(create.status, 403);
      assert.equal(errorOf(create).message, 'this needs the admin role; you have auditor, user');
      assert.equal((await gw.api('GET', '/api/keys', { token: sec })).status, 403);
      await gw.waitForAudit(
        'access.denied',
        (r) => r.actor.subject === 'sec' && r.target === 'POST /api/connections',
      );
    });

    it('lets no password, key or token reach the process log or stderr', async () => {
      await gw.stop();
      assert.deepEqual(await gw.leaks(), []);
    });
  });
}
