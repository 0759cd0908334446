import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { AuditRecord } from '../audit/record.js';
import type { SessionView } from '../store/sessions.js';
import { openPgSession } from '../testing/pg-session.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type Replicas, startReplicas } from '../testing/replicas.js';
import { api, type WardenProcess } from '../testing/warden-process.js';

/** Generous: B needs the 1 s timeout, a sweep, then a lifetime check to end the orphan. */
const WITHIN_MS = 15_000;

describe('a gateway that stops answering (two gateways sharing one PostgreSQL store)', () => {
  let store: ThrowawayDb;
  let target: ThrowawayDb;
  let replicas: Replicas;
  let alice = '';
  const clients: pg.Client[] = [];

  before(async () => {
    store = await createThrowawayDb();
    target = await createThrowawayDb();
    replicas = await startReplicas(store.url, {
      connections: [pgConnection(target.name, 'shop')],
      sessions: { check_interval: '200ms', gateway_heartbeat: '200ms', gateway_timeout: '1s' },
    });
    alice = await replicas.key('alice', ['dev']);
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await replicas?.stop();
    await target?.drop();
    await store?.drop();
  });

  const open = async (g: WardenProcess, password: string) => {
    assert.ok(g.postgres);
    const session = await openPgSession(g.postgres.port, password);
    clients.push(session.c);
    return session;
  };

  it('ends the sessions of a gateway that crashed as lost, and their children on other gateways as orphans', async () => {
    const [a, b] = replicas.gateways as [WardenProcess, WardenProcess];
    const parent = await open(a, alice);
    const minted = await api(b.url, 'POST', '/api/tokens', {
      token: alice,
      headers: { 'x-warden-session': parent.id },
      body: { ttl: '10m' },
    });
    assert.equal(minted.status, 201, minted.text);
    const child = await open(b, (minted.body as { token: string }).token);
    const bystander = await open(b, alice);

    // Gateway A dies without a word: its session row still says active.
    a.child.kill('SIGKILL');
    const err = await Promise.race([
      child.ended,
      sleep(WITHIN_MS).then(() => assert.fail('the orphan on B was not ended')),
    ]);
    assert.equal(err.code, '57P01');
    assert.match(err.message, new RegExp(`its parent session ${parent.id} ended`));

    const seen = async (id: string) =>
      (await api(b.url, 'GET', `/api/sessions/${id}`, { token: replicas.adminKey })).body as SessionView;
    const lost = await seen(parent.id);
    assert.equal(lost.status, 'lost');
    assert.match(lost.end_reason ?? '', /the gateway carrying it \(\S+\) stopped answering/);
    // The client hears of its end first; the row's end is written right after (with its
    // `session.closed` event), so it is looked for until then.
    let childStatus = (await seen(child.id)).status;
    for (let i = 0; i < 100 && childStatus !== 'orphaned'; i++) {
      await sleep(50);
      childStatus = (await seen(child.id)).status;
    }
    assert.equal(childStatus, 'orphaned');
    const audit = await api(b.url, 'GET', '/api/audit?type=session.lost&limit=100', {
      token: replicas.adminKey,
    });
    const records = (audit.body as { records: AuditRecord[] }).records;
    assert.equal(records.filter((r) => r.payload.session === parent.id).length, 1, 'reported once');
    const gone = await api(b.url, 'GET', '/api/audit?type=gateway.lost&limit=100', {
      token: replicas.adminKey,
    });
    assert.ok(
      (gone.body as { records: AuditRecord[] }).records.some((r) =>
        (r.payload.sessions as string[]).includes(parent.id),
      ),
    );
    // B's own sessions go on: B keeps beating.
    await sleep(1500);
    assert.deepEqual((await bystander.c.query('select 1 as n')).rows, [{ n: 1 }]);
    assert.equal((await seen(bystander.id)).status, 'active');
  });
});
