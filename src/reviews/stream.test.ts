import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ServerEvent } from '../cli/server-events.js';
import type { ReviewView } from '../store/reviews.js';
import { type Gateway, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { type EventStreamClient, openEventStream } from '../testing/server-events.js';
import { CLI } from '../testing/warden-process.js';

const reviewOf = (e: ServerEvent): ReviewView => JSON.parse(e.data) as ReviewView;
const snapshotOf = (e: ServerEvent): ReviewView[] =>
  (JSON.parse(e.data) as { reviews: ReviewView[] }).reviews;
const isReview = (match: (r: ReviewView) => boolean) => (e: ServerEvent) =>
  e.event === 'review' && match(reviewOf(e));

describe('reviews stream: a snapshot, then every change the caller may see (server-sent events)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  const keys: Record<'alice' | 'bob' | 'dave', string> = { alice: '', bob: '', dave: '' };
  const streams: EventStreamClient[] = [];

  const client = async (who: 'alice' | 'dave') => {
    assert.ok(gw.proc.postgres);
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gw.proc.postgres.port,
      database: 'shop',
      user: who,
      password: keys[who],
    });
    await c.connect();
    return c;
  };
  const stream = async (who: keyof typeof keys, query = '') => {
    const s = await openEventStream(`${gw.url}/api/reviews/stream${query}`, keys[who]);
    streams.push(s);
    return s;
  };

  before(async () => {
    db = await createThrowawayDb();
    const setup = new pg.Client({ connectionString: db.url });
    await setup.connect();
    for (const t of ['orders', 'drafts', 'jobs']) {
      await setup.query(`create table ${t} (id int primary key)`);
      await setup.query(`insert into ${t} select generate_series(1, 3)`);
    }
    await setup.end();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name, 'shop')],
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
      },
    });
    const groups = { alice: 'dev', bob: 'dba', dave: 'ops' } as const;
    for (const name of Object.keys(keys) as Array<keyof typeof keys>) {
      const created = await gw.cli(['keys', 'create', '--name', name, '--groups', groups[name]]);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = gw.credential(created.stdout.trim());
    }
  });
  after(async () => {
    for (const s of streams) s.close();
    await gw?.close();
    await db?.drop();
  });

  it('streams a held DELETE to an approver as pending, then approved once approved from the CLI', async () => {
    const bob = await stream('bob');
    assert.equal(bob.response.status, 200);
    assert.match(bob.response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(bob.response.headers.get('cache-control'), 'no-cache');
    assert.equal(bob.response.headers.get('x-accel-buffering'), 'no');
    const snapshot = await bob.waitFor((e) => e.event === 'snapshot');
    assert.deepEqual(snapshotOf(snapshot), []);
    // dave is neither in the approver group nor the requester: he must learn nothing of it.
    const dave = await stream('dave');
    await dave.waitFor((e) => e.event === 'snapshot');

    const alice = await client('alice');
    try {
      const held = alice.query('delete from orders');
      const pending = await bob.waitFor(isReview((r) => r.command === 'delete from orders'));
      const r = reviewOf(pending);
      assert.equal(r.status, 'pending');
      assert.equal(r.requester.subject, 'alice');
      assert.equal(pending.id, `${r.id}:${r.version}`);
      // Each caller is told whether they may decide: bob (dba) may; alice, who ran it, may not.
      assert.equal((r as ReviewView & { may_decide: boolean }).may_decide, true);
      const asAlice = await gw.api('GET', `/api/reviews/${r.id}`, { token: keys.alice });
      assert.equal((asAlice.body as { may_decide: boolean }).may_decide, false);
      const listed = await gw.api('GET', '/api/reviews?status=pending', { token: keys.bob });
      assert.deepEqual(
        (listed.body as { reviews: Array<{ id: string; may_decide: boolean }> }).reviews.map((x) => [
          x.id,
          x.may_decide,
        ]),
        [[r.id, true]],
      );

      // A stream opened now has it in its snapshot; dave's does not.
      const late = await stream('bob');
      assert.deepEqual(
        snapshotOf(await late.waitFor((e) => e.event === 'snapshot')).map((x) => x.id),
        [r.id],
      );
      const daveLate = await stream('dave');
      assert.deepEqual(snapshotOf(await daveLate.waitFor((e) => e.event === 'snapshot')), []);

      const approved = await gw.cli(['reviews', 'approve', r.id], { token: keys.bob });
      assert.equal(approved.code, 0, approved.stderr);
      const done = reviewOf(await bob.waitFor(isReview((x) => x.id === r.id && x.status === 'approved')));
      assert.equal(done.decided_by, 'bob');
      assert.equal((await held).rowCount, 3);
      await late.waitFor(isReview((x) => x.id === r.id && x.status === 'approved'));

      // Each version once, though the local desk and the store poll both report it.
      await new Promise((res) => setTimeout(res, 2_500));
      const ids = bob.events.filter((e) => e.event === 'review').map((e) => e.id);
      assert.deepEqual(ids, [`${r.id}:1`, `${r.id}:2`]);
      assert.deepEqual(
        late.events.filter((e) => e.event === 'review').map((e) => e.id),
        [`${r.id}:2`],
      );

      // dave then holds a command of his own: he sees his, and never saw alice's.
      const daveClient = await client('dave');
      try {
        const his = daveClient.query('delete from jobs').catch((err: Error) => err);
        const own = reviewOf(await dave.waitFor(isReview((x) => x.requester.subject === 'dave')));
        assert.ok(
          dave.events.every((e) => e.event === 'snapshot' || reviewOf(e).id === own.id),
          JSON.stringify(dave.events),
        );
        assert.ok(daveLate.events.every((e) => e.event === 'snapshot' || reviewOf(e).id === own.id));
        assert.equal((await gw.cli(['reviews', 'deny', own.id], { token: keys.bob })).code, 0);
        assert.match(String(await his), /denied by bob/);
      } finally {
        await daveClient.end();
      }
    } finally {
      await alice.end();
    }
  });

  it('refuses a stream without a credential, and an unknown status', async () => {
    const anonymous = await fetch(`${gw.url}/api/reviews/stream`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const bad = await fetch(`${gw.url}/api/reviews/stream?status=approved`, {
      headers: { authorization: `Bearer ${keys.bob}` },
    });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  });

  it('`warden reviews watch` prints a line for a held command until it is stopped', async () => {
    const watch = spawn(process.execPath, [CLI, 'reviews', 'watch'], {
      env: { ...process.env, ...gw.proc.env(keys.bob) },
    });
    let out = '';
    let err = '';
    watch.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    watch.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const alice = await client('alice');
    try {
      const bob = await stream('bob');
      const held = alice.query('delete from drafts').catch((e: Error) => e);
      const r = reviewOf(await bob.waitFor(isReview((x) => x.command === 'delete from drafts')));
      const line = new RegExp(`^\\S+  ${r.id}  pending    0/1  alice  delete from drafts$`, 'm');
      for (let i = 0; i < 200 && !line.test(out); i++) await new Promise((res) => setTimeout(res, 100));
      assert.match(out, line, `stdout: ${out}\nstderr: ${err}`);
      assert.equal((await gw.cli(['reviews', 'deny', r.id], { token: keys.bob })).code, 0);
      await held;
      const denied = new RegExp(`^\\S+  ${r.id}  denied     0/1  alice  delete from drafts$`, 'm');
      for (let i = 0; i < 200 && !denied.test(out); i++) await new Promise((res) => setTimeout(res, 100));
      assert.match(out, denied, out);
    } finally {
      await alice.end();
      const exited = new Promise((res) => watch.on('close', res));
      watch.kill('SIGINT');
      await exited;
    }
  });
});
