import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { GrantView } from '../store/grants.js';
import { delegatedToken, errorOf, type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia } from '../testing/run.js';

const GRACE_MS = 500;

describe('just-in-time access: connections that need a grant (PostgreSQL, psql and pg)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  const keys: Record<'alice' | 'bob' | 'carol' | 'dave', string> = {
    alice: '',
    bob: '',
    carol: '',
    dave: '',
  };

  const psql = (who: keyof typeof keys, database: string, sql: string) =>
    psqlVia({ port, password: keys[who], database, user: who }, ['-v', 'VERBOSITY=verbose', '-c', sql], {
      timeoutMs: 60_000,
    });
  const cli = (who: keyof typeof keys, args: string[]) => gw.cli(['access', ...args], { token: keys[who] });
  /** Asks for access as `who` from the CLI; returns the request. */
  const request = async (who: keyof typeof keys, connection: string, forText: string): Promise<GrantView> => {
    const res = await cli(who, ['request', connection, '--for', forText, '--reason', 'incident 42']);
    assert.equal(res.code, 0, res.stderr);
    const id = /access request (\S+): pending/.exec(res.stdout)?.[1];
    assert.ok(id, res.stdout);
    const got = await gw.api('GET', `/api/access/${id}`, { token: keys[who] });
    assert.equal(got.status, 200, got.text);
    return got.body as GrantView;
  };
  const grant = async (id: string): Promise<GrantView> => {
    const res = await gw.api('POST', `/api/access/${id}/grant`, {
      token: keys.bob,
      body: { reason: 'on call' },
    });
    assert.equal(res.status, 200, res.text);
    return res.body as GrantView;
  };
  const client = async (who: keyof typeof keys, database: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, database, user: who, password: keys[who] });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };

  before(async () => {
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', {
      config: {
        connections: [
          pgConnection(db.name, 'open-db'),
          ...[
            'vault',
            'vault-own',
            'vault-expiry',
            'vault-revoke',
            'vault-deny',
            'vault-cancel',
            'vault-giveup',
            'vault-scope',
            'vault-audit',
          ].map((name) => ({
            ...pgConnection(db.name, name),
            access: 'jit',
          })),
        ],
        access: { approvers: ['dba'], grace: `${GRACE_MS}ms`, poll_interval: '200ms', max_duration: '1h' },
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    Object.assign(
      keys,
      await mintKeys(gw, { alice: 'dev', bob: 'dba', carol: 'dba', dave: 'warden:auditor' }),
    );
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('refuses a connection without a grant, telling how to ask for one; an open connection needs none', async () => {
    const open = await psql('alice', 'open-db', 'select 1');
    assert.equal(open.code, 0, open.stderr);

    const res = await psql('alice', 'vault', 'select 1');
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      /FATAL: {2}connection "vault" needs a just-in-time access grant: run "warden access request vault --for 30m --reason …"/,
    );
    const viaPg = await client('alice', 'vault').then(
      () => assert.fail('pg should have been refused'),
      (err: unknown) => err as { code?: string },
    );
    assert.equal(viaPg.code, '28000');
    await gw.waitForAudit(
      'access.refused',
      (a) => a.payload.connection === 'vault' && a.payload.subject === 'alice',
    );
    await gw.waitForAudit('gateway.refused', (a) => a.target === 'connection:vault');
  });

  it('lets the requester in once an approver grants the request; nobody grants their own', async () => {
    const r = await request('alice', 'vault', '10m');
    assert.equal(r.subject, 'alice');
    assert.equal(r.duration_ms, 600_000);
    const waiting = await psql('alice', 'vault', 'select 1');
    assert.match(waiting.stderr, new RegExp(`your request ${r.id} is waiting for an approver`));
    const again = await cli('alice', ['request', 'vault', '--for', '5m', '--reason', 'again']);
    assert.match(again.stderr, /409 conflict.*already waiting/);

    const listed = await cli('bob', ['ls', '--pending']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${r.id}\\s+pending\\s+vault\\s+alice\\s+10m`));
    const self = await cli('alice', ['grant', r.id]);
    assert.match(self.stderr, /403 forbidden.*access you \(or an agent acting for you\) asked for/);

    // carol is an approver, but not for her own request.
    const own = await request('carol', 'vault-own', '10m');
    const refused = await cli('carol', ['grant', own.id]);
    assert.match(refused.stderr, /403 forbidden.*access you \(or an agent acting for you\) asked for/);
    await gw.waitForAudit('access.grant.refused', (a) => a.payload.grant === own.id);

    const granted = await cli('bob', ['grant', r.id, '--reason', 'on call', '--for', '5m']);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, new RegExp(`access grant ${r.id}: alice may connect to vault until `));
    const g = (await gw.api('GET', `/api/access/${r.id}`)).body as GrantView;
    assert.equal(g.status, 'granted');
    assert.equal(g.decided_by, 'bob');
    assert.equal(g.duration_ms, 300_000, 'a grant may shorten what was asked for');
    const longer = await gw.api('POST', `/api/access/${own.id}/grant`, {
      token: keys.bob,
      body: { for: '1h' },
    });
    assert.equal(longer.status, 400, longer.text);

    const ok = await psql('alice', 'vault', 'select 42');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), '42');
    await gw.waitForAudit('access.granted', (a) => a.payload.grant === r.id && a.actor.subject === 'bob');
    // alice sees her own requests only; bob sees carol's too.
    const mine = (await gw.api('GET', '/api/access', { token: keys.alice })).body as { grants: GrantView[] };
    assert.deepEqual(
      mine.grants.map((x) => x.id),
      [r.id],
    );
    const notMine = await gw.api('GET', `/api/access/${own.id}`, { token: keys.alice });
    assert.equal(notMine.status, 404);
    const notApprover = await cli('alice', ['deny', own.id]);
    assert.match(notApprover.stderr, /404 not_found/, 'alice is no approver and cannot see carol’s request');
  });

  it('ends a live psql session when its grant expires (57P01 naming the grant, after the grace), then refuses new ones', async () => {
    const r = await request('alice', 'vault-expiry', '4s');
    const g = await grant(r.id);
    assert.ok(g.expires_at);
    const running = psql('alice', 'vault-expiry', 'select pg_sleep(60)');
    const res = await running;
    const endedAt = Date.now();
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /FATAL: {2}57P01: access grant \S+ to connection "vault-expiry" expired/);
    assert.match(res.stderr, new RegExp(`access grant ${r.id} `));
    assert.ok(
      endedAt >= Date.parse(g.expires_at) + GRACE_MS - 100,
      'the session went on for the grace period after the grant expired',
    );
    const terminated = await gw.waitForAudit('access.session_terminated', (a) => a.payload.grant === r.id);
    assert.equal(terminated.payload.cause, 'expired');
    await gw.waitForAudit('access.expired', (a) => a.payload.grant === r.id);
    await gw.waitForAudit(
      'session.closed',
      (a) => a.payload.session === terminated.payload.session && a.payload.reason === 'killed',
    );
    assert.equal(((await gw.api('GET', `/api/access/${r.id}`)).body as GrantView).status, 'expired');

    const later = await psql('alice', 'vault-expiry', 'select 1');
    assert.notEqual(later.code, 0);
    assert.match(later.stderr, /needs a just-in-time access grant/);
  });

  /** A granted session in a long statement, ended by `by` revoking the grant; new logins refused after. */
  const revokeWhileRunning = async (by: 'alice' | 'bob', connection: string, reason: string) => {
    const r = await request('alice', connection, '10m');
    await grant(r.id);
    const c = await client('alice', connection);
    assert.equal((await c.query('select 1 as n')).rows[0].n, 1);
    const sleeping = c.query('select pg_sleep(60)').then(
      () => assert.fail('the session should have been ended'),
      (err: unknown) => err as { code?: string; message: string },
    );
    const revoked = await cli(by, ['revoke', r.id, '--reason', reason]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, `access request ${r.id}: revoked\n`);
    const err = await sleeping;
    assert.equal(err.code, '57P01');
    assert.match(
      err.message,
      new RegExp(`access grant ${r.id} to connection "${connection}" was revoked by ${by}: ${reason}`),
    );
    await c.end().catch(() => undefined);
    const g = (await gw.api('GET', `/api/access/${r.id}`)).body as GrantView;
    assert.equal(g.status, 'revoked');
    assert.equal(g.revoked_by, by);
    await gw.waitForAudit('access.revoked', (a) => a.payload.grant === r.id && a.actor.subject === by);
    const later = await psql('alice', connection, 'select 1');
    assert.notEqual(later.code, 0);
    assert.match(later.stderr, /needs a just-in-time access grant/);
    return r;
  };

  it('ends a live pg session when an approver revokes its grant, and refuses new ones', async () => {
    const r = await revokeWhileRunning('bob', 'vault-revoke', 'incident closed');
    await gw.waitForAudit(
      'access.session_terminated',
      (a) => a.payload.grant === r.id && a.payload.cause === 'revoked',
    );
  });

  it('lets the requester cancel their own pending request, and nobody else (403, audited)', async () => {
    const r = await request('alice', 'vault-cancel', '10m');
    const byApprover = await cli('bob', ['cancel', r.id]);
    assert.notEqual(byApprover.code, 0);
    assert.match(
      byApprover.stderr,
      new RegExp(`403 forbidden.*access request ${r.id}: only its requester may cancel it`),
    );
    const api = await gw.api('POST', `/api/access/${r.id}/cancel`, { token: keys.carol, body: {} });
    assert.equal(api.status, 403, api.text);
    assert.equal(errorOf(api).message, `access request ${r.id}: only its requester may cancel it`);
    await gw.waitForAudit(
      'access.cancel.refused',
      (a) => a.payload.grant === r.id && a.actor.subject === 'bob',
    );
    assert.equal(((await gw.api('GET', `/api/access/${r.id}`)).body as GrantView).status, 'pending');

    const cancelled = await cli('alice', ['cancel', r.id]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(cancelled.stdout, `access request ${r.id}: cancelled\n`);
    const g = (await gw.api('GET', `/api/access/${r.id}`)).body as GrantView;
    assert.equal(g.status, 'cancelled');
    assert.equal(g.decided_by, 'alice');
    await gw.waitForAudit('access.cancelled', (a) => a.payload.grant === r.id && a.actor.subject === 'alice');
    const late = await cli('bob', ['grant', r.id]);
    assert.match(late.stderr, /409 conflict.*already cancelled/);
    const res = await psql('alice', 'vault-cancel', 'select 1');
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /run "warden access request vault-cancel/, 'no pending request any more');
  });

  it('lets the requester give up their own grant: the live session ends and new logins are refused', async () => {
    await revokeWhileRunning('alice', 'vault-giveup', 'done early');
  });

  it('refuses asking for longer than access.max_duration (400)', async () => {
    const res = await cli('alice', ['request', 'vault-cancel', '--for', '2h', '--reason', 'long night']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /400 .*access lasts at most 1h \(access\.max_duration\)/);
    const viaApi = await gw.api('POST', '/api/access/requests', {
      token: keys.alice,
      body: { connection: 'vault-cancel', for: '61m', reason: 'long night' },
    });
    assert.equal(viaApi.status, 400, viaApi.text);
    assert.equal(errorOf(viaApi).message, 'body.for: access lasts at most 1h (access.max_duration)');
    const mine = (
      await gw.api('GET', '/api/access?connection=vault-cancel&status=pending', { token: keys.alice })
    ).body as { grants: GrantView[] };
    assert.deepEqual(mine.grants, [], 'nothing was asked for');
  });

  it('refuses a request from a credential whose scope does not cover the connection (403, audited)', async () => {
    const narrow = await delegatedToken(gw, keys.alice, 'alice-helper', 'open-db');
    const res = await gw.api('POST', '/api/access/requests', {
      token: narrow,
      body: { connection: 'vault-scope', for: '10m', reason: 'incident 42' },
    });
    assert.equal(res.status, 403, res.text);
    assert.equal(errorOf(res).code, 'forbidden');
    assert.equal(errorOf(res).message, 'your credential does not cover connection "vault-scope"');
    await gw.waitForAudit(
      'access.request.refused',
      (a) => a.payload.connection === 'vault-scope' && a.actor.subject === 'alice-helper',
    );
    const none = (await gw.api('GET', '/api/access?connection=vault-scope')).body as { grants: GrantView[] };
    assert.deepEqual(none.grants, []);

    // Scoped to the connection, the same agent may ask, for alice.
    const covering = await delegatedToken(gw, keys.alice, 'alice-helper', 'vault-scope');
    const ok = await gw.api('POST', '/api/access/requests', {
      token: covering,
      body: { connection: 'vault-scope', for: '10m', reason: 'incident 42' },
    });
    assert.equal(ok.status, 201, ok.text);
    const g = ok.body as GrantView;
    assert.equal(g.subject, 'alice');
    assert.equal(g.requested_by, 'alice-helper');
  });

  it('shows an auditor everyone’s requests, without letting them decide', async () => {
    const fromAlice = await request('alice', 'vault-audit', '10m');
    const fromCarol = await request('carol', 'vault-audit', '10m');
    const seen = await gw.api('GET', '/api/access?limit=500', { token: keys.dave });
    assert.equal(seen.status, 200, seen.text);
    const grants = (seen.body as { grants: GrantView[] }).grants;
    const ids = grants.map((g) => g.id);
    assert.ok(ids.includes(fromAlice.id) && ids.includes(fromCarol.id), JSON.stringify(ids));
    const all = (await gw.api('GET', '/api/access?limit=500')).body as { grants: GrantView[] };
    assert.deepEqual(
      ids,
      all.grants.map((g) => g.id),
      'the auditor sees what an admin sees',
    );
    assert.deepEqual([...new Set(grants.map((g) => g.subject))].sort(), ['alice', 'carol']);
    const one = await gw.api('GET', `/api/access/${fromCarol.id}`, { token: keys.dave });
    assert.equal(one.status, 200, one.text);
    const decide = await gw.api('POST', `/api/access/${fromCarol.id}/grant`, { token: keys.dave, body: {} });
    assert.equal(decide.status, 403, decide.text);
    assert.match(errorOf(decide).message, /needs an approver/);
  });

  it('keeps refusing after a denial, and the audit chain verifies', async () => {
    const r = await request('alice', 'vault-deny', '10m');
    const denied = await cli('bob', ['deny', r.id, '--reason', 'use the replica']);
    assert.equal(denied.code, 0, denied.stderr);
    assert.equal(denied.stdout, `access request ${r.id}: denied\n`);
    const res = await psql('alice', 'vault-deny', 'select 1');
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /run "warden access request vault-deny/);
    const twice = await cli('bob', ['grant', r.id]);
    assert.match(twice.stderr, /409 conflict.*already denied/);
    // An agent holding a token delegated from an approver does not decide on access either.
    const asked = await request('carol', 'vault-deny', '10m');
    const agent = await delegatedToken(gw, keys.bob, 'bob-helper');
    const byAgent = await gw.api('POST', `/api/access/${asked.id}/grant`, { token: agent, body: {} });
    assert.equal(byAgent.status, 403, byAgent.text);
    assert.match(byAgent.text, /not a token delegated to an agent/);
    await gw.waitForAudit(
      'access.denied',
      (a) => a.payload.grant === r.id && a.payload.reason === 'use the replica',
    );

    const verified = await gw.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.deepEqual(await gw.leaks(), []);
  });
});
