import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ReviewView } from '../store/reviews.js';
import { delegatedToken, errorOf, type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia } from '../testing/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The error a held query ends with (handled at once: the decision may come before anyone awaits it). */
const settled = (q: Promise<unknown>): Promise<unknown> =>
  q.then(
    () => assert.fail('the held statement should have been refused'),
    (err: unknown) => err,
  );

/** A review rule on one connection: DELETE without WHERE waits for `approvals` from group dba. */
const holdDeletes = (connection: string, hold: string, approvals = 1) => ({
  name: `hold-deletes-${connection}`,
  match: { connections: [connection] },
  when: { sql: { statements: ['delete'], where: 'absent' } },
  effect: 'review',
  message: 'DELETE without WHERE needs a second pair of eyes',
  review: { approvers: ['dba'], approvals, hold },
});

describe('approvals: a statement held on the wire until people decide (PostgreSQL, psql and pg)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let direct: pg.Client;
  const keys: Record<'alice' | 'bob' | 'carol' | 'dave', string> = {
    alice: '',
    bob: '',
    carol: '',
    dave: '',
  };

  const client = async (database: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, database, user: 'alice', password: keys.alice });
    await c.connect();
    return c;
  };
  const rowCount = async (table: string): Promise<number> =>
    (await direct.query(`select count(*)::int as n from ${table}`)).rows[0].n;

  /** Polls the pending reviews as bob (an approver) until one for `connection` shows up. */
  const pendingReview = async (connection: string): Promise<ReviewView> => {
    for (let i = 0; i < 200; i++) {
      const res = await gw.api('GET', '/api/reviews?status=pending', { token: keys.bob });
      assert.equal(res.status, 200, res.text);
      const found = (res.body as { reviews: ReviewView[] }).reviews.find((r) => r.connection === connection);
      if (found) return found;
      await sleep(50);
    }
    throw new Error(`no pending review for ${connection}`);
  };
  const review = async (id: string): Promise<ReviewView> => {
    const res = await gw.api('GET', `/api/reviews/${id}`);
    assert.equal(res.status, 200, res.text);
    return res.body as ReviewView;
  };
  const decide = (who: keyof typeof keys, verdict: 'approve' | 'deny', id: string, reason?: string) =>
    gw.cli(['reviews', verdict, id, ...(reason ? ['--reason', reason] : [])], { token: keys[who] });

  before(async () => {
    db = await createThrowawayDb();
    direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    for (const t of ['orders', 'drafts', 'logs', 'carts', 'jobs', 'later', 'shapes', 'others', 'incidents']) {
      await direct.query(`create table ${t} (id int primary key, note text)`);
      await direct.query(`insert into ${t} select g, 'row ' || g from generate_series(1, 5) g`);
    }
    gw = await startGateway('sqlite', {
      config: {
        connections: ['shop', 'shop-quick', 'shop-two', 'shop-later'].map((name) =>
          pgConnection(db.name, name),
        ),
        policy: {
          rules: [
            holdDeletes('shop', '60s'),
            holdDeletes('shop-quick', '1500ms'),
            holdDeletes('shop-two', '60s', 2),
            { ...holdDeletes('shop-later', '60s'), review: { approvers: ['dba'], hold: false, ttl: '10m' } },
          ],
        },
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    Object.assign(keys, await mintKeys(gw, { alice: 'dev', bob: 'dba', carol: 'dba', dave: 'dev' }));
  });
  after(async () => {
    await direct?.end();
    await gw?.close();
    await db?.drop();
  });

  it('holds a psql DELETE until an approver approves it from the CLI, then it completes with its row count', async () => {
    const psql = psqlVia({ port, password: keys.alice, database: 'shop' }, ['-c', 'DELETE FROM orders'], {
      timeoutMs: 60_000,
    });
    const r = await pendingReview('shop');
    assert.equal(r.command, 'DELETE FROM orders');
    assert.equal(r.requester.subject, 'alice');
    assert.equal(r.rule, 'hold-deletes-shop');
    assert.deepEqual(r.approver_groups, ['dba']);
    assert.equal(r.message, 'DELETE without WHERE needs a second pair of eyes');
    assert.equal(await rowCount('orders'), 5, 'nothing ran while the statement was held');

    const listed = await gw.cli(['reviews', 'ls', '--pending'], { token: keys.bob });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${r.id}\\s+pending\\s+0/1\\s+alice`));

    const approved = await decide('bob', 'approve', r.id, 'end of season cleanup');
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(approved.stdout.trim(), `review ${r.id}: approved`);
    const done = await psql;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout.trim(), 'DELETE 5');
    assert.equal(await rowCount('orders'), 0);

    const after = await review(r.id);
    assert.equal(after.status, 'approved');
    assert.equal(after.decided_by, 'bob');
    assert.deepEqual(
      after.approvals.map((a) => [a.subject, a.reason]),
      [['bob', 'end of season cleanup']],
    );
    await gw.waitForAudit(
      'review.requested',
      (a) => a.payload.review === r.id && a.actor.subject === 'alice',
    );
    await gw.waitForAudit('review.approved', (a) => a.payload.review === r.id && a.actor.subject === 'bob');
  });

  it('refuses a denied statement with 42501 naming the approver and reason; the session goes on', async () => {
    const c = await client('shop');
    try {
      const held = settled(c.query('delete from drafts'));
      const r = await pendingReview('shop');
      const denied = await decide('bob', 'deny', r.id, 'drafts are still needed');
      assert.equal(denied.code, 0, denied.stderr);
      const err = (await held) as pg.DatabaseError;
      assert.equal(err.code, '42501');
      assert.equal(err.message, `denied by bob in review ${r.id}: drafts are still needed (warden)`);
      assert.deepEqual((await c.query('select count(*)::int as n from drafts')).rows, [{ n: 5 }]);
      assert.equal((await review(r.id)).status, 'denied');
      await gw.waitForAudit(
        'review.denied',
        (a) => a.payload.review === r.id && a.payload.reason !== undefined,
      );
    } finally {
      await c.end();
    }
  });

  it('refuses a statement nobody approved within the rule’s hold, and the review is expired', async () => {
    const c = await client('shop-quick');
    try {
      const started = Date.now();
      let id = '';
      await assert.rejects(c.query('delete from logs'), (err: pg.DatabaseError) => {
        assert.equal(err.code, '42501');
        const m = /^not approved in time: review (\S+) expired with 0 of 1 approvals \(warden\)$/.exec(
          err.message,
        );
        assert.ok(m, err.message);
        id = m[1]!;
        return true;
      });
      assert.ok(Date.now() - started >= 1400, 'held for the rule’s 1.5 s');
      assert.equal((await review(id)).status, 'expired');
      assert.equal(await rowCount('logs'), 5);
      // Too late to approve now.
      const late = await decide('bob', 'approve', id);
      assert.notEqual(late.code, 0);
      assert.match(late.stderr, /already expired/);
      assert.deepEqual((await c.query('select 1 as n')).rows, [{ n: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('cancels the review when the client disconnects while its statement is held', async () => {
    const c = await client('shop');
    c.on('error', () => undefined);
    const held = c.query('delete from carts').catch((err: Error) => err);
    const r = await pendingReview('shop');
    // The client goes away without a word, as a killed psql does.
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await held;
    await gw.waitForAudit('review.cancelled', (a) => a.payload.review === r.id);
    assert.equal((await review(r.id)).status, 'cancelled');
    const late = await decide('bob', 'approve', r.id);
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /already cancelled/);
    assert.equal(await rowCount('carts'), 5);
  });

  it('withdraws a held statement when psql cancels it (Ctrl-C): the review is cancelled, the target never saw it', async () => {
    const psql = psqlVia({ port, password: keys.alice, database: 'shop' }, ['-c', 'DELETE FROM carts'], {
      interruptAfterMs: 1_500,
    });
    const r = await pendingReview('shop');
    const res = await psql;
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      new RegExp(
        `ERROR: {2}review ${r.id} was cancelled: the statement was withdrawn before a decision \\(warden\\)`,
      ),
    );
    await gw.waitForAudit('review.cancelled', (a) => a.payload.review === r.id);
    assert.equal((await review(r.id)).status, 'cancelled');
    assert.equal(await rowCount('carts'), 5);
  });

  it('withdraws a held statement when its client closes politely (Terminate) while it waits', async () => {
    await direct.query(`create table polite (id int); insert into polite select generate_series(1, 4)`);
    const c = await client('shop');
    c.on('error', () => undefined);
    const held = c.query('delete from polite').catch((err: Error) => err);
    const r = await pendingReview('shop');
    await c.end(); // sends Terminate, then closes the socket
    await held;
    await gw.waitForAudit('review.cancelled', (a) => a.payload.review === r.id);
    const late = await decide('bob', 'approve', r.id);
    assert.match(late.stderr, /already cancelled/);
    assert.equal(await rowCount('polite'), 4, 'the statement never ran');
  });

  it('refuses to hold a statement too long for approvers to read', async () => {
    const c = await client('shop');
    try {
      const long = `delete from jobs /* ${'x'.repeat(70_000)} */`;
      const err = (await settled(c.query(long))) as pg.DatabaseError;
      assert.equal(err.code, '42501');
      assert.match(err.message, /too long to review \(at most 65536\)/);
    } finally {
      await c.end();
    }
  });

  it('never lets the requester, or anyone outside the approver groups, decide', async () => {
    const c = await client('shop');
    try {
      const held = settled(c.query('delete from jobs'));
      const r = await pendingReview('shop');
      const self = await decide('alice', 'approve', r.id);
      assert.notEqual(self.code, 0);
      assert.match(self.stderr, /cannot decide on a command you \(or an agent acting for you\) ran/);
      // dave may not even see it: not his command, not his group.
      const outsider = await decide('dave', 'approve', r.id);
      assert.notEqual(outsider.code, 0);
      assert.match(outsider.stderr, /does not exist/);
      const direct = await gw.api('POST', `/api/reviews/${r.id}/deny`, { token: keys.alice, body: {} });
      assert.equal(direct.status, 403);
      assert.match(errorOf(direct).message, /cannot decide/);
      await gw.waitForAudit('review.approve.refused', (a) => a.actor.subject === 'alice');
      assert.equal((await review(r.id)).status, 'pending');
      assert.equal((await decide('carol', 'deny', r.id)).code, 0);
      assert.match(String(await held), /denied by carol/);
    } finally {
      await c.end();
    }
  });

  it('refuses an approver deciding on a statement they ran with another credential of theirs', async () => {
    // bob (an approver) runs the statement with a Warden token minted from his key, then tries to
    // approve it with the key itself: the same person, so refused.
    const minted = await gw.cli(['token', 'create', '--ttl', '5m'], { token: keys.bob });
    assert.equal(minted.code, 0, minted.stderr);
    const token = gw.credential(minted.stdout.trim());
    const c = new pg.Client({ host: '127.0.0.1', port, database: 'shop', user: 'bob', password: token });
    await c.connect();
    try {
      await direct.query('create table mine (id int)');
      const held = settled(c.query('delete from mine'));
      const r = await pendingReview('shop');
      assert.equal(r.requester.subject, 'bob');
      const own = await decide('bob', 'approve', r.id);
      assert.notEqual(own.code, 0);
      assert.match(own.stderr, /cannot decide on a command you \(or an agent acting for you\) ran/);
      assert.equal((await decide('carol', 'deny', r.id, 'ask someone else')).code, 0);
      assert.match(String(await held), /denied by carol/);
    } finally {
      await c.end();
    }
  });

  it('does not let an agent decide with a token delegated from an approver', async () => {
    const agent = await delegatedToken(gw, keys.bob, 'bob-helper', 'shop');
    const c = await client('shop');
    try {
      const held = settled(c.query('delete from jobs'));
      const r = await pendingReview('shop');
      const byAgent = await gw.api('POST', `/api/reviews/${r.id}/approve`, { token: agent, body: {} });
      assert.equal(byAgent.status, 403, byAgent.text);
      assert.match(
        errorOf(byAgent).message,
        /decisions need your own credential, not a token delegated to an agent/,
      );
      assert.equal((await decide('bob', 'deny', r.id)).code, 0);
      assert.match(String(await held), /denied by bob/);
    } finally {
      await c.end();
    }
  });

  it('runs a statement whose rule needs two approvals only after two different approvers', async () => {
    await direct.query(`insert into orders select g, 'again ' || g from generate_series(1, 3) g`);
    const c = await client('shop-two');
    try {
      let finished = false;
      const held = c.query('delete from orders').then((res) => {
        finished = true;
        return res;
      });
      const r = await pendingReview('shop-two');
      const first = await decide('bob', 'approve', r.id);
      assert.equal(first.stdout.trim(), `review ${r.id}: pending, 1/2 approvals`);
      const again = await decide('bob', 'approve', r.id);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /bob has already approved it/);
      await sleep(600); // a poll interval: nothing may release it yet
      assert.equal(finished, false);
      assert.equal((await decide('carol', 'approve', r.id)).code, 0);
      assert.equal((await held).rowCount, 3);
      const done = await review(r.id);
      assert.deepEqual(
        done.approvals.map((a) => a.subject),
        ['bob', 'carol'],
      );
      assert.equal(done.decided_by, 'carol');
    } finally {
      await c.end();
    }
  });

  it('with hold: false refuses at once naming the review, and lets the same caller run it again once approved', async () => {
    const c = await client('shop-later');
    try {
      const first = (await settled(c.query('delete from later'))) as pg.DatabaseError;
      assert.equal(first.code, '42501');
      const m =
        /: review (\S+) is waiting for dba; run the same statement again once it is approved \(warden\)$/.exec(
          first.message,
        );
      assert.ok(m, first.message);
      const id = m[1]!;
      // Asking again before anyone decided opens no second review.
      const again = (await settled(c.query('delete from later'))) as pg.DatabaseError;
      assert.match(again.message, new RegExp(`review ${id} is waiting`));
      const r = await review(id);
      assert.equal(r.options.held, false);
      assert.equal((await decide('bob', 'approve', id)).code, 0);
      const approved = await review(id);
      assert.ok(approved.reuse_until && Date.parse(approved.reuse_until) > Date.now() + 9 * 60_000);
      assert.equal((await c.query('delete from later')).rowCount, 5);
      await gw.waitForAudit('command.approved', (a) => a.payload.review === id);
      // The approval is for this caller and this text: another caller, or other text, asks anew.
      const other = await gw.api('GET', '/api/reviews?status=pending', { token: keys.bob });
      assert.equal((other.body as { reviews: ReviewView[] }).reviews.filter((x) => x.id === id).length, 0);
      const d = new pg.Client({
        host: '127.0.0.1',
        port,
        database: 'shop-later',
        user: 'dave',
        password: keys.dave,
      });
      await d.connect();
      try {
        const byDave = (await settled(d.query('delete from later'))) as pg.DatabaseError;
        assert.doesNotMatch(byDave.message, new RegExp(id));
      } finally {
        await d.end();
      }
    } finally {
      await c.end();
    }
  });

  it('lets an approver pre-approve a statement shape: later runs go through at once until revoked', async () => {
    const c = await client('shop');
    try {
      const held = c.query('delete from shapes').then(
        (res) => res,
        (err: Error) => err,
      );
      const r = await pendingReview('shop');
      assert.equal(r.fingerprint, 'delete from shapes');
      // Not before it is approved, not by its requester, not by anyone who did not approve it.
      const early = await gw.cli(['reviews', 'preapprove', r.id], { token: keys.bob });
      assert.notEqual(early.code, 0);
      assert.match(early.stderr, /only one of its approvers may pre-approve it, once it is approved/);
      assert.equal((await decide('bob', 'approve', r.id)).code, 0);
      const self = await gw.cli(['reviews', 'preapprove', r.id], { token: keys.alice });
      assert.notEqual(self.code, 0, 'the requester cannot pre-approve her own statement');
      const other = await gw.cli(['reviews', 'preapprove', r.id], { token: keys.carol });
      assert.notEqual(other.code, 0, 'carol did not approve it');
      const forOwnGroup = await gw.cli(['reviews', 'preapprove', r.id, '--group', 'dba'], {
        token: keys.bob,
      });
      assert.notEqual(forOwnGroup.code, 0);
      assert.match(forOwnGroup.stderr, /cannot pre-approve for a group you are in \(dba\)/);
      const pre = await gw.cli(
        ['reviews', 'preapprove', r.id, '--for', '1h', '--reason', 'nightly cleanup'],
        {
          token: keys.bob,
        },
      );
      assert.equal(pre.code, 0, pre.stderr);
      const preId = /^pre-approval (\S+): alice may run this on shop until /.exec(pre.stdout)?.[1];
      assert.ok(preId, pre.stdout);
      assert.equal(((await held) as pg.QueryResult).rowCount, 5);
      // The same statement runs at once now: no review.
      await direct.query(`insert into shapes select g, 'x' from generate_series(1, 2) g`);
      assert.equal((await c.query('delete from shapes')).rowCount, 2);
      await gw.waitForAudit('command.preapproved', (a) => a.payload.preapproval === preId);
      const listed = await gw.cli(['preapprovals', 'ls'], { token: keys.bob });
      assert.match(listed.stdout, new RegExp(`${preId}\\s+shop\\s+alice\\s+bob`));
      // Another shape still asks.
      const otherShape = settled(c.query('delete from others'));
      const otherReview = await pendingReview('shop');
      assert.equal(otherReview.command, 'delete from others');
      assert.equal((await decide('bob', 'deny', otherReview.id)).code, 0);
      assert.match(String(await otherShape), /denied by bob/);
      // Revoked: the shape asks again.
      assert.equal((await gw.cli(['preapprovals', 'revoke', preId], { token: keys.bob })).code, 0);
      const asks = settled(c.query('delete from shapes'));
      const again = await pendingReview('shop');
      assert.equal(again.command, 'delete from shapes');
      assert.equal((await decide('bob', 'deny', again.id)).code, 0);
      assert.match(String(await asks), /denied by bob/);
    } finally {
      await c.end();
    }
  });

  it('lets the requester break the glass with a reason: it runs now, alerts, and waits for review after the fact', async () => {
    const psql = psqlVia({ port, password: keys.alice, database: 'shop' }, ['-c', 'DELETE FROM incidents'], {
      timeoutMs: 60_000,
    });
    const r = await pendingReview('shop');
    const noReason = await gw.cli(['reviews', 'approve', r.id, '--break-glass'], { token: keys.alice });
    assert.notEqual(noReason.code, 0);
    assert.match(noReason.stderr, /--break-glass needs --reason/);
    const notHers = await gw.cli(['reviews', 'approve', r.id, '--break-glass', '--reason', 'x'], {
      token: keys.bob,
    });
    assert.notEqual(notHers.code, 0, 'only the requester may break the glass');
    const broke = await gw.cli(
      ['reviews', 'approve', r.id, '--break-glass', '--reason', 'incident 42: disk full'],
      {
        token: keys.alice,
      },
    );
    assert.equal(broke.code, 0, broke.stderr);
    assert.equal(broke.stdout.trim(), `review ${r.id}: break-glass`);
    const done = await psql;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout.trim(), 'DELETE 5');
    const alert = await gw.waitForAudit('review.break_glass', (a) => a.payload.review === r.id);
    assert.equal(alert.payload.alert, true);
    assert.equal(alert.actor.subject, 'alice');
    const awaiting = await gw.cli(['reviews', 'ls', '--pending'], { token: keys.bob });
    assert.match(awaiting.stdout, new RegExp(`${r.id}\\s+break-glass`));
    assert.equal((await decide('bob', 'approve', r.id, 'confirmed with on-call')).code, 0);
    const after = await review(r.id);
    assert.equal(after.status, 'approved');
    assert.equal(after.break_glass, true);
    await gw.waitForAudit(
      'review.approved',
      (a) => a.payload.review === r.id && a.payload.after_the_fact === true,
    );
  });

  it('lets a requester break the glass on a statement that was not held, then run it', async () => {
    await direct.query(`create table urgent (id int); insert into urgent select generate_series(1, 3)`);
    const c = await client('shop-later');
    try {
      const first = (await settled(c.query('delete from urgent'))) as pg.DatabaseError;
      const id = /review (\S+) is waiting/.exec(first.message)?.[1];
      assert.ok(id, first.message);
      const broke = await gw.cli(['reviews', 'approve', id, '--break-glass', '--reason', 'hotfix'], {
        token: keys.alice,
      });
      assert.equal(broke.code, 0, broke.stderr);
      assert.equal((await c.query('delete from urgent')).rowCount, 3);
    } finally {
      await c.end();
    }
  });

  it('keeps every review decision in the verified audit chain', async () => {
    const verified = await gw.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
  });
});
