import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openPgSession } from '../testing/pg-session.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type Replicas, startReplicas } from '../testing/replicas.js';
import { api, type WardenProcess } from '../testing/warden-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SessionRow {
  id: string;
  status: string;
  end_reason: string | null;
}

describe('end_with_parent across two gateways sharing one PostgreSQL store', () => {
  let store: ThrowawayDb;
  let target: ThrowawayDb;
  let replicas: Replicas;
  let alice = '';

  before(async () => {
    store = await createThrowawayDb();
    target = await createThrowawayDb();
    replicas = await startReplicas(store.url, {
      connections: [pgConnection(target.name, 'shop')],
      sessions: { check_interval: '200ms' },
    });
    alice = await replicas.key('alice', ['dev']);
  });
  after(async () => {
    await replicas?.stop();
    await target?.drop();
    await store?.drop();
  });

  const open = (g: WardenProcess, password: string) => {
    assert.ok(g.postgres);
    return openPgSession(g.postgres.port, password);
  };

  it('ends a child session on gateway B when its parent session on gateway A ends', async () => {
    const [a, b] = replicas.gateways as [WardenProcess, WardenProcess];
    const parent = await open(a, alice);
    const listed = await api(b.url, 'GET', '/api/sessions?connection=shop&status=active', { token: alice });
    const [parentRow] = (listed.body as { sessions: SessionRow[] }).sessions;
    assert.ok(parentRow);
    const minted = await api(b.url, 'POST', '/api/tokens', {
      token: alice,
      headers: { 'x-warden-session': parentRow.id },
      body: {},
    });
    assert.equal(minted.status, 201, minted.text);
    const child = await open(b, (minted.body as { token: string }).token);
    await parent.c.end();
    const err = await Promise.race([
      child.ended,
      sleep(10_000).then(() => {
        throw new Error('the child session was not ended');
      }),
    ]);
    assert.equal(err.code, '57P01');
    assert.equal(err.message, `session ended: its parent session ${parentRow.id} ended (warden)`);
    // Seen the same from gateway A.
    let row: SessionRow | undefined;
    for (let i = 0; i < 100; i++) {
      const res = await api(a.url, 'GET', '/api/sessions?connection=shop&status=orphaned', { token: alice });
      row = (res.body as { sessions: SessionRow[] }).sessions[0];
      if (row) break;
      await sleep(100);
    }
    assert.ok(row, 'no orphaned session in the store');
    assert.equal(row.end_reason, `session ended: its parent session ${parentRow.id} ended`);
  });
});
