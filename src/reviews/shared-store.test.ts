import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ReviewView } from '../store/reviews.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type Replicas, startReplicas } from '../testing/replicas.js';
import { psqlVia } from '../testing/run.js';
import { openEventStream } from '../testing/server-events.js';
import { api, type WardenProcess } from '../testing/warden-process.js';

/** Poll interval of a gateway for decisions taken elsewhere is 500 ms; this only bounds a stuck release. */
const RELEASED_WITHIN_MS = 5_000;

describe('approvals across two gateways sharing one PostgreSQL store', () => {
  let store: ThrowawayDb;
  let target: ThrowawayDb;
  let replicas: Replicas;
  let gateways: WardenProcess[] = [];
  const keys = { alice: '', bob: '' };

  before(async () => {
    store = await createThrowawayDb();
    target = await createThrowawayDb();
    replicas = await startReplicas(store.url, {
      connections: [pgConnection(target.name, 'shop')],
      policy: {
        rules: [
          {
            name: 'hold-deletes',
            when: { sql: { statements: ['delete'], where: 'absent' } },
            effect: 'review',
            review: { approvers: ['dba'], hold: '60s' },
          },
        ],
      },
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

  it('releases a statement held on gateway A when an approver approves it through gateway B', async () => {
    const [a, b] = gateways as [WardenProcess, WardenProcess];
    assert.ok(a.postgres);
    // A stream on B learns of the review held on A by polling the store.
    const live = await openEventStream(`${b.url}/api/reviews/stream`, keys.bob);
    await live.waitFor((e) => e.event === 'snapshot');
    const psql = psqlVia(
      { port: a.postgres.port, password: keys.alice, database: 'shop' },
      ['-c', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2); DELETE FROM t'],
      { timeoutMs: 60_000 },
    );
    let pending: ReviewView | undefined;
    for (let i = 0; i < 200 && !pending; i++) {
      // bob has no approver role: he sees the review because his group may decide on it.
      const res = await api(b.url, 'GET', '/api/reviews?status=pending', { token: keys.bob });
      assert.equal(res.status, 200, res.text);
      pending = (res.body as { reviews: ReviewView[] }).reviews[0];
      if (!pending) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(pending, 'the review held on A is listed through B');
    assert.equal(pending.requester.subject, 'alice');
    const streamed = await live.waitFor((e) => e.event === 'review');
    assert.equal(streamed.id, `${pending.id}:1`);
    assert.equal((JSON.parse(streamed.data) as ReviewView).status, 'pending');

    const approvedAt = Date.now();
    const res = await api(b.url, 'POST', `/api/reviews/${pending.id}/approve`, { token: keys.bob, body: {} });
    assert.equal(res.status, 200, res.text);
    const done = await psql;
    const waited = Date.now() - approvedAt;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout.trim().split('\n').pop(), 'DELETE 2');
    assert.ok(waited < RELEASED_WITHIN_MS, `released ${waited} ms after the approval on the other gateway`);
    await live.waitFor((e) => e.id === `${pending.id}:2`);

    // A gateway that stops ends its open streams rather than waiting for the clients to leave.
    const stopping = Date.now();
    await b.stop();
    await live.ended();
    assert.ok(Date.now() - stopping < 10_000, `stopped in ${Date.now() - stopping} ms with a stream open`);
    assert.equal(b.child.exitCode, 0);
  });
});
