import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GrantView } from '../store/grants.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type Replicas, startReplicas } from '../testing/replicas.js';
import { psqlVia } from '../testing/run.js';
import { api, type WardenProcess } from '../testing/warden-process.js';

describe('just-in-time access across two gateways sharing one PostgreSQL store', () => {
  let store: ThrowawayDb;
  let target: ThrowawayDb;
  let replicas: Replicas;
  let gateways: WardenProcess[] = [];
  const keys = { alice: '', bob: '' };

  before(async () => {
    store = await createThrowawayDb();
    target = await createThrowawayDb();
    replicas = await startReplicas(store.url, {
      connections: [{ ...pgConnection(target.name, 'vault'), access: 'jit' }],
      access: { approvers: ['dba'], grace: '200ms', poll_interval: '200ms' },
    });
    gateways = replicas.gateways;
    keys.alice = await replicas.key('alice', ['dev']);
    keys.bob = await replicas.key('bob', ['dba']);
  });
  after(async () => {
    await replicas?.stop();
    await target?.drop();
    await store?.drop();
  });

  it('ends a session on gateway A when its grant is revoked through gateway B', async () => {
    const [a, b] = gateways as [WardenProcess, WardenProcess];
    assert.ok(a.postgres);
    const asked = await api(a.url, 'POST', '/api/access/requests', {
      token: keys.alice,
      body: { connection: 'vault', for: '10m', reason: 'incident 7' },
    });
    assert.equal(asked.status, 201, asked.text);
    const id = (asked.body as GrantView).id;
    const granted = await api(b.url, 'POST', `/api/access/${id}/grant`, { token: keys.bob, body: {} });
    assert.equal(granted.status, 200, granted.text);

    const running = psqlVia({ port: a.postgres.port, password: keys.alice, database: 'vault' }, [
      '-c',
      'select pg_sleep(60)',
    ]);
    // Revoked once the session is live on A.
    let live = false;
    for (let i = 0; i < 100 && !live; i++) {
      const res = await api(a.url, 'GET', '/api/sessions?status=active', { token: keys.alice });
      live = (res.body as { sessions?: unknown[] }).sessions?.length === 1;
      if (!live) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(live, 'the psql session shows up as active');
    const revoked = await api(b.url, 'POST', `/api/access/${id}/revoke`, {
      token: keys.bob,
      body: { reason: 'done' },
    });
    assert.equal(revoked.status, 200, revoked.text);
    const res = await running;
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      new RegExp(`FATAL: {2}access grant ${id} to connection "vault" was revoked by bob: done`),
    );

    const again = await psqlVia({ port: a.postgres.port, password: keys.alice, database: 'vault' }, [
      '-c',
      'select 1',
    ]);
    assert.match(again.stderr, /needs a just-in-time access grant/);
  });
});
