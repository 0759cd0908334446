import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import type pg from 'pg';
import type { Trace } from '../audit/trace.js';
import type { SessionView } from '../store/sessions.js';
import { delegatedToken, type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { openPgSession } from '../testing/pg-session.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
/** Generous: gateways re-check live sessions every second; this only bounds one that never ends. */
const ENDS_WITHIN_MS = 10_000;

describe('token lineage: parent sessions, trace context, disabled subjects, audit trace', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let keys: Record<'agent-a' | 'svc-x' | 'svc-y', string>;
  const clients: pg.Client[] = [];

  /** An open pg session on `shop` with `password`, its Warden session id, and the error that ends it. */
  const open = async (password: string, options?: string) => {
    const session = await openPgSession(port, password, options ? { options } : {});
    clients.push(session.c);
    // Every session reads its own id on the target, to name it in X-Warden-Session.
    const row = (await gw.api('GET', `/api/sessions/${session.id}`)).body as SessionView;
    assert.equal(row.status, 'active');
    return session;
  };

  const endedWithin = (ended: Promise<pg.DatabaseError>) =>
    Promise.race([
      ended,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the session was not ended')), ENDS_WITHIN_MS),
      ),
    ]);

  const session = async (id: string) => (await gw.api('GET', `/api/sessions/${id}`)).body as SessionView;

  before(async () => {
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', {
      config: { connections: [pgConnection(db.name, 'shop')], tracing: { sql_comments: true } },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    keys = await mintKeys(gw, { 'agent-a': 'bots', 'svc-x': 'bots', 'svc-y': 'bots' });
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await gw?.close();
    await db?.drop();
  });

  it('records the session a token was minted in, and refuses a session that is not the caller’s own', async () => {
    const a = await open(keys['agent-a']);
    const token = await delegatedToken(gw, keys['agent-a'], 'helper-1', 'shop', { parentSession: a.id });
    const child = await open(token);
    const row = await session(child.id);
    assert.equal(row.parent_session_id, a.id);
    assert.equal(row.root_subject, 'agent-a');
    assert.deepEqual(row.chain, ['helper-1']);
    const opened = await gw.waitForAudit('session.opened', (r) => r.payload.session === child.id);
    assert.equal(opened.actor.parent_session, a.id);
    assert.equal(opened.payload.parent_session, a.id);

    // The CLI names the session from WARDEN_SESSION.
    const cli = await gw.cli(['token', 'delegate', '--to', 'helper-2', '--connections', 'shop'], {
      token: keys['agent-a'],
      env: { WARDEN_SESSION: a.id, TRACEPARENT: TP },
    });
    assert.equal(cli.code, 0, cli.stderr);
    const jti = decodeJwt(cli.stdout.trim()).jti as string;
    const exchanged = await gw.waitForAudit('token.exchanged', (r) => r.payload.jti === jti);
    assert.equal(exchanged.payload.traceparent, TP, 'the caller’s trace is on the audit record');
    assert.equal(exchanged.payload.parent_session, a.id);
    const store = gw.openStore();
    const minted = await store.db
      .selectFrom('tokens')
      .selectAll()
      .where('jti', '=', jti)
      .executeTakeFirstOrThrow();
    await store.close();
    assert.equal(minted.parent_session_id, a.id);
    assert.equal(minted.root_subject, 'agent-a');

    // Someone else's session, an unknown one, or one that ended cannot parent a token.
    const other = await open(keys['svc-y']);
    await assert.rejects(
      delegatedToken(gw, keys['agent-a'], 'helper-3', 'shop', { parentSession: other.id }),
      /invalid_request.*is not a session of agent-a/,
    );
    await assert.rejects(
      delegatedToken(gw, keys['agent-a'], 'helper-3', 'shop', {
        parentSession: '01900000-0000-7000-8000-000000000000',
      }),
      /is not known to this Warden/,
    );
    await a.c.end();
    await gw.waitForAudit('session.closed', (r) => r.payload.session === a.id);
    await assert.rejects(
      delegatedToken(gw, keys['agent-a'], 'helper-3', 'shop', { parentSession: a.id }),
      /has ended/,
    );
    const minting = await gw.api('POST', '/api/tokens', {
      token: keys['agent-a'],
      headers: { 'x-warden-session': other.id },
      body: {},
    });
    assert.equal(minting.status, 400, minting.text);
    await gw.waitForAudit(
      'token.refused',
      (r) =>
        r.actor.subject === 'agent-a' && String(r.payload.reason).includes('is not a session of agent-a'),
    );
  });

  it('keeps the caller’s traceparent on its session and continues the trace in the SQL the database sees', async () => {
    const s = await open(keys['agent-a'], `-c traceparent=${TP}`);
    const q = (await s.c.query<{ q: string }>('select current_query() as q')).rows[0]!.q;
    const sent = /\/\*traceparent='(00-[0-9a-f]{32}-[0-9a-f]{16}-01)'\*\//.exec(q)?.[1];
    assert.ok(sent, `no trace comment in ${q}`);
    assert.equal(sent.split('-')[1], '4bf92f3577b34da6a3ce929d0e0e4736', 'same trace');
    assert.notEqual(sent.split('-')[2], '00f067aa0ba902b7', "Warden's own span");
    // The setting never reached the target (it would reject an unknown parameter).
    assert.equal((await s.c.query<{ n: number }>('select 1 as n')).rows[0]!.n, 1);
    const row = await session(s.id);
    assert.equal(row.traceparent, TP);
    // Statement events are written in batches: wait for this one.
    let texts: string[] = [];
    for (let i = 0; i < 100 && !texts.includes('select current_query() as q'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const res = await gw.api('GET', `/api/sessions/${s.id}/events`);
      texts = (res.body as { events: Array<{ text: string }> }).events.map((e) => e.text);
    }
    assert.ok(
      texts.includes('select current_query() as q'),
      `the recording keeps the statement as the client sent it; saw ${texts.join(' | ')}`,
    );

    // The same trace carried in application_name: kept on the session, taken out of the name.
    const byName = await openPgSession(port, keys['agent-a'], { applicationName: `etl traceparent=${TP}` });
    clients.push(byName.c);
    const named = await session(byName.id);
    assert.equal(named.traceparent, TP);
    assert.equal(named.application, 'etl');
    const target = (await byName.c.query<{ a: string }>("select current_setting('application_name') as a"))
      .rows[0]!.a;
    assert.match(target, /^etl \[warden s=/, 'the target sees the name without the trace');
  });

  it('disabling a service account refuses its key and every delegate, revokes its tokens and ends its live sessions', async () => {
    const token = await delegatedToken(gw, keys['svc-x'], 'helper-x', 'shop');
    // A token minted before tokens kept their root subject: found through the key it was minted from.
    const older = await delegatedToken(gw, keys['svc-x'], 'helper-old', 'shop');
    const store = gw.openStore();
    await store.db
      .updateTable('tokens')
      .set({ root_subject: null })
      .where('jti', '=', decodeJwt(older).jti as string)
      .execute();
    await store.close();
    const direct = await open(keys['svc-x']);
    const delegated = await open(token);
    const bystander = await open(keys['agent-a']);

    const notAdmin = await gw.cli(['subjects', 'disable', 'svc-x', '--reason', 'nope'], {
      token: keys['agent-a'],
    });
    assert.notEqual(notAdmin.code, 0);
    assert.match(notAdmin.stderr, /403/);

    const disabled = await gw.cli(['subjects', 'disable', 'svc-x', '--reason', 'key leaked in CI logs']);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /disabled svc-x; revoked 2 token\(s\)/);
    for (const s of [direct, delegated]) {
      const err = await endedWithin(s.ended);
      assert.equal(err.code, '57P01');
      assert.match(err.message, /session ended: svc-x was disabled by .*: key leaked in CI logs/);
    }
    await gw.waitForAudit('session.revoked', (r) => r.payload.session === delegated.id);
    await gw.waitForAudit('subject.disabled', (r) => r.target === 'subject:svc-x');
    assert.deepEqual((await bystander.c.query('select 2 as n')).rows, [{ n: 2 }], 'others go on');

    await assert.rejects(open(keys['svc-x']), (e: pg.DatabaseError) => {
      assert.equal(e.code, '28P01');
      assert.match(e.message, /svc-x was disabled/);
      return true;
    });
    const api = await gw.api('GET', '/api/whoami', { token: keys['svc-x'] });
    assert.equal(api.status, 401);
    const ls = await gw.cli(['subjects', 'ls']);
    assert.match(ls.stdout, /svc-x .*key leaked in CI logs/);

    // Enabled again: the key works; the token revoked with it stays revoked.
    assert.equal((await gw.cli(['subjects', 'enable', 'svc-x'])).code, 0);
    const back = await open(keys['svc-x']);
    await back.c.end();
    await assert.rejects(open(token), /revoked/);
    await assert.rejects(open(older), /revoked/);
    // An admin cannot lock themselves out.
    const whoAmI = ((await gw.api('GET', '/api/whoami')).body as { subject: string }).subject;
    const self = await gw.api('POST', `/api/subjects/${encodeURIComponent(whoAmI)}/disable`, {
      body: { reason: 'oops' },
    });
    assert.equal(self.status, 400);
    assert.match(self.text, /cannot disable yourself/);
  });

  it('traces a lineage from its root credential through every delegate, with sessions and commands in order', async () => {
    const a = await open(keys['agent-a']);
    await a.c.query("select 'a-was-here' as x");
    const t1 = await delegatedToken(gw, keys['agent-a'], 'planner', 'shop', { parentSession: a.id });
    const s1 = await open(t1);
    await s1.c.query("select 'planner-was-here' as x");
    const t2 = await delegatedToken(gw, t1, 'coder', 'shop', { parentSession: s1.id });
    const s2 = await open(t2);
    await s2.c.query("select 'coder-was-here' as x");
    await s2.c.end();
    await gw.waitForAudit('session.closed', (r) => r.payload.session === s2.id);

    // Statement events are written in batches: ask until the last one is in.
    let trace: Trace | undefined;
    for (let i = 0; i < 100; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const res = await gw.api('GET', `/api/audit/trace/${s2.id}`);
      assert.equal(res.status, 200, res.text);
      trace = res.body as Trace;
      if (JSON.stringify(trace).includes('coder-was-here')) break;
    }
    assert.ok(trace);
    assert.equal(trace.root_subject, 'agent-a');
    assert.deepEqual(trace.from, { kind: 'session', id: s2.id });
    assert.equal(trace.root.kind, 'api_key');
    assert.equal(trace.root.subject, 'agent-a');
    const planner = trace.root.children.find((n) => n.subject === 'planner');
    assert.ok(planner, 'planner under agent-a');
    assert.equal(planner.parent_session_id, a.id);
    assert.deepEqual(planner.chain, ['planner']);
    const coder = planner.children.find((n) => n.subject === 'coder');
    assert.ok(coder, 'coder under planner');
    assert.deepEqual(coder.chain, ['planner', 'coder']);
    assert.equal(coder.sessions.length, 1);
    assert.equal(coder.sessions[0]!.id, s2.id);
    assert.equal(coder.sessions[0]!.parent_session_id, s1.id);
    assert.ok(coder.sessions[0]!.commands.some((c) => c.text.includes('coder-was-here')));
    assert.ok(trace.root.sessions.some((s) => s.id === a.id));

    // The same tree from a token id; the root's owner may read it, another caller may not.
    const byToken = await gw.api('GET', `/api/audit/trace/${decodeJwt(t1).jti as string}`, {
      token: keys['agent-a'],
    });
    assert.equal(byToken.status, 200, byToken.text);
    assert.equal((byToken.body as Trace).root.id, trace.root.id);
    const stranger = await gw.api('GET', `/api/audit/trace/${s2.id}`, { token: keys['svc-y'] });
    assert.equal(stranger.status, 404);
    // A delegate sees the part of the tree under its own token, and nothing beside or above it.
    const fromPlanner = await gw.api('GET', `/api/audit/trace/${s2.id}`, { token: t1 });
    assert.equal(fromPlanner.status, 200, fromPlanner.text);
    assert.equal((fromPlanner.body as Trace).root.subject, 'planner');
    assert.ok(
      !fromPlanner.text.includes('a-was-here'),
      "the root's own sessions are not shown to a delegate",
    );
    const sibling = await delegatedToken(gw, keys['agent-a'], 'reviewer', 'shop');
    for (const id of [s2.id, a.id, decodeJwt(t1).jti as string]) {
      const peek = await gw.api('GET', `/api/audit/trace/${id}`, { token: sibling });
      assert.equal(peek.status, 404, `a sibling delegate traced ${id}`);
    }
    const up = await gw.api('GET', `/api/audit/trace/${a.id}`, { token: t2 });
    assert.equal(up.status, 404, 'a delegate cannot trace its parent');
    const unknown = await gw.api('GET', '/api/audit/trace/nothing-here');
    assert.equal(unknown.status, 404);

    const cli = await gw.cli(['audit', 'trace', s2.id]);
    assert.equal(cli.code, 0, cli.stderr);
    const out = cli.stdout;
    const at = (needle: string) => {
      const i = out.indexOf(needle);
      assert.ok(i >= 0, `${needle} not in:\n${out}`);
      return i;
    };
    assert.ok(at('agent-a (root)') < at('planner (agent; chain planner)'));
    assert.ok(at('planner (agent; chain planner)') < at('coder (agent; chain planner → coder)'));
    assert.ok(at('coder (agent; chain planner → coder)') < at("select 'coder-was-here'"));
    assert.ok(at(`minted in session ${s1.id}`) > 0);
  });
});
