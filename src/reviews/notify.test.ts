import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ReviewView } from '../store/reviews.js';
import { type Gateway, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia } from '../testing/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: Record<string, unknown>;
  /** What the receiver answered. */
  status: number;
}

/**
 * A webhook receiver on loopback. It answers /hook by the connection of the review it is told
 * of: `flaky` fails each delivery twice with 500 before 200, `down` always answers 500, `bad`
 * answers 400; /hang is never answered; everything else gets 200.
 */
async function startReceiver(): Promise<{ url: string; seen: Received[]; server: Server }> {
  const seen: Received[] = [];
  const tries = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // Never answered: the gateway's per-request timeout has to end it.
      if (req.url === '/hang') return;
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      let status = 200;
      if (req.url === '/hook') {
        const delivery = String(req.headers['x-warden-delivery']);
        const n = (tries.get(delivery) ?? 0) + 1;
        tries.set(delivery, n);
        const connection = (body.review as ReviewView).connection;
        if (connection === 'flaky' && n <= 2) status = 500;
        if (connection === 'down') status = 500;
        if (connection === 'bad') status = 400;
      }
      seen.push({ path: req.url ?? '', headers: req.headers, raw, body, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

/** Checks the signature as a receiver would: HMAC-SHA256 of `<timestamp>.<raw body>`, in constant time. */
function signatureValid(secret: string, r: Received): boolean {
  const ts = String(r.headers['x-warden-timestamp']);
  const expected = Buffer.from(
    `sha256=${createHmac('sha256', secret).update(`${ts}.`).update(r.raw).digest('hex')}`,
  );
  const given = Buffer.from(String(r.headers['x-warden-signature']));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A receiver that answers every request with a 302 to `location`. */
async function startRedirector(location: string): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(302, { location }).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const holdDeletes = (connection: string) => ({
  name: `hold-deletes-${connection}`,
  match: { connections: [connection] },
  when: { sql: { statements: ['delete'], where: 'absent' } },
  effect: 'review',
  review: { approvers: ['dba'], approvals: 1, hold: '60s' },
});

describe('review notifications: a signed webhook and a Slack message, delivered to real HTTP receivers', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  /** Where the redirecting receiver points: it must never be asked anything. */
  let second: Awaited<ReturnType<typeof startReceiver>>;
  let redirector: Awaited<ReturnType<typeof startRedirector>>;
  let secretDir: string;
  const secret = randomBytes(24).toString('hex');
  // The path of a Slack webhook URL is its credential: it must show up in no log or audit record.
  const slackToken = `T0000/B0000/${randomBytes(12).toString('hex')}`;
  const keys = { alice: '', bob: '' };

  /** Waits for a request the receiver got; fails with what it did get otherwise. */
  const received = async (match: (r: Received) => boolean, what: string): Promise<Received> => {
    for (let i = 0; i < 400; i++) {
      const hit = receiver.seen.find(match);
      if (hit) return hit;
      await sleep(50);
    }
    throw new Error(
      `receiver never got ${what}; got:\n${receiver.seen.map((r) => r.raw.toString()).join('\n')}`,
    );
  };
  const hook = (event: string, connection: string) => (r: Received) =>
    r.path === '/hook' &&
    r.body.event === event &&
    (r.body.review as ReviewView).connection === connection &&
    r.status === 200;
  const reviewOf = (r: Received) => r.body.review as ReviewView;
  const attemptsOf = (delivery: unknown) =>
    receiver.seen.filter((s) => s.headers['x-warden-delivery'] === delivery);

  /** Holds `delete from <table>` on `connection` through pg; the promise settles when it is decided. */
  const hold = async (connection: string, table: string) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      database: connection,
      user: 'alice',
      password: keys.alice,
    });
    await c.connect();
    const done = c.query(`delete from ${table}`).then(
      (res) => res,
      (err: Error) => err,
    );
    return { done: done.finally(() => c.end()) };
  };
  const deny = (id: string) => gw.cli(['reviews', 'deny', id], { token: keys.bob });

  before(async () => {
    receiver = await startReceiver();
    second = await startReceiver();
    redirector = await startRedirector(`${second.url}/hook`);
    secretDir = mkdtempSync(join(tmpdir(), 'warden-notify-'));
    const secretFile = join(secretDir, 'webhook.secret');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    db = await createThrowawayDb();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    for (const t of ['orders', 'drafts', 'logs', 'carts', 'notes']) {
      await direct.query(`create table ${t} (id int primary key)`);
      await direct.query(`insert into ${t} select generate_series(1, 5)`);
    }
    await direct.end();
    const names = ['shop', 'flaky', 'down', 'bad', 'moved'];
    gw = await startGateway('sqlite', {
      config: {
        connections: names.map((n) => pgConnection(db.name, n)),
        policy: { rules: names.map(holdDeletes) },
        reviews: {
          console_url: 'https://warden.example.com/',
          notify: [
            {
              kind: 'webhook',
              url: `${receiver.url}/hook`,
              secret_file: secretFile,
              retry: { attempts: 4, initial_backoff: '50ms' },
            },
            {
              kind: 'webhook',
              url: `${receiver.url}/hang`,
              secret_file: secretFile,
              events: ['requested'],
              timeout: '200ms',
              retry: { attempts: 2, initial_backoff: '50ms' },
            },
            // Only cancellations, which no other test here causes, so its failures stay out of theirs.
            {
              kind: 'webhook',
              url: `${redirector.url}/moved`,
              secret_file: secretFile,
              events: ['cancelled'],
              retry: { attempts: 3, initial_backoff: '50ms' },
            },
            {
              kind: 'slack',
              url: `${receiver.url}/slack/${slackToken}`,
              events: ['requested', 'approved', 'denied'],
            },
          ],
        },
      },
    });
    gw.secret(secret);
    gw.secret(slackToken);
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    for (const [name, group] of [
      ['alice', 'dev'],
      ['bob', 'dba'],
    ] as const) {
      const created = await gw.cli(['keys', 'create', '--name', name, '--groups', group]);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = gw.credential(created.stdout.trim());
    }
  });
  after(async () => {
    // A delivery may still hang on /hang: shutdown gives it a short grace, not the whole timeout chain.
    const stopping = Date.now();
    await gw?.stop();
    assert.ok(Date.now() - stopping < 15_000, 'the gateway stopped promptly');
    await gw?.close();
    await db?.drop();
    receiver?.server.closeAllConnections();
    receiver?.server.close();
    for (const s of [second?.server, redirector?.server]) {
      s?.closeAllConnections();
      s?.close();
    }
    if (secretDir) rmSync(secretDir, { recursive: true, force: true });
  });

  it('posts a signed review.requested for a psql DELETE held on the wire, then review.approved once approved from the CLI', async () => {
    const psql = psqlVia({ port, password: keys.alice, database: 'shop' }, ['-c', 'DELETE FROM orders'], {
      timeoutMs: 60_000,
    });
    const requested = await received(hook('review.requested', 'shop'), 'review.requested');
    assert.equal(requested.headers['content-type'], 'application/json');
    assert.equal(requested.headers['x-warden-event'], 'review.requested');
    assert.match(String(requested.headers['x-warden-delivery']), /^[0-9a-f-]{36}$/);
    assert.ok(signatureValid(secret, requested), 'the signature verifies with the secret from the file');
    assert.ok(!signatureValid('another secret', requested));
    const ts = Number(requested.headers['x-warden-timestamp']);
    assert.ok(Math.abs(Date.now() / 1000 - ts) < 300, 'a fresh timestamp');
    assert.ok(!Number.isNaN(Date.parse(String(requested.body.sent_at))));
    const r = reviewOf(requested);
    assert.equal(r.status, 'pending');
    assert.equal(r.command, 'DELETE FROM orders');
    assert.equal(r.requester.subject, 'alice');
    assert.equal(r.rule, 'hold-deletes-shop');
    assert.deepEqual(r.approver_groups, ['dba']);
    assert.deepEqual(r.approvals, []);

    const approved = await gw.cli(['reviews', 'approve', r.id], { token: keys.bob });
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal((await psql).stdout.trim(), 'DELETE 5');
    const done = await received(hook('review.approved', 'shop'), 'review.approved');
    assert.ok(signatureValid(secret, done));
    assert.notEqual(done.headers['x-warden-delivery'], requested.headers['x-warden-delivery']);
    const decided = reviewOf(done);
    assert.equal(decided.id, r.id);
    assert.equal(decided.status, 'approved');
    assert.equal(decided.decided_by, 'bob');
    assert.deepEqual(
      decided.approvals.map((a) => a.subject),
      ['bob'],
    );
  });

  it('sends Slack a message naming requester, connection, rule and command, with approve and deny links while pending', async () => {
    const slack = (text: string) => (r: Received) =>
      r.path === `/slack/${slackToken}` && String(r.body.text).includes(text);
    const asked = await received(slack('alice asks to run a command on shop'), 'the Slack request message');
    const id = /review (\S+)\)/.exec(String(asked.body.text))?.[1];
    assert.ok(id, String(asked.body.text));
    const blocks = JSON.stringify(asked.body.blocks);
    assert.ok(Array.isArray(asked.body.blocks));
    assert.ok(blocks.includes(`https://warden.example.com/reviews/${id}?action=approve`), blocks);
    assert.ok(blocks.includes(`https://warden.example.com/reviews/${id}?action=deny`), blocks);
    assert.ok(blocks.includes('```DELETE FROM orders```'), blocks);
    assert.ok(blocks.includes('hold-deletes-shop'), blocks);
    assert.ok(blocks.includes(`warden reviews approve ${id}`), blocks);
    assert.ok(blocks.includes('0/1'), blocks);
    assert.equal(asked.headers['x-warden-signature'], undefined, 'Slack messages are not signed');

    const decided = await received(slack(`Review ${id} by alice on shop was approved`), 'the Slack outcome');
    const after = JSON.stringify(decided.body.blocks);
    assert.ok(after.includes('Approved by bob'), after);
    assert.ok(!after.includes('action=approve'), 'no buttons once decided');
  });

  it('retries a 500 with backoff and delivers once, with the same delivery id on every attempt', async () => {
    const held = await hold('flaky', 'drafts');
    const ok = await received(hook('review.requested', 'flaky'), 'the flaky delivery');
    const attempts = attemptsOf(ok.headers['x-warden-delivery']);
    assert.deepEqual(
      attempts.map((a) => a.status),
      [500, 500, 200],
    );
    for (const a of attempts) assert.ok(signatureValid(secret, a), 'every attempt is signed');
    const r = reviewOf(ok);
    assert.equal((await deny(r.id)).code, 0);
    assert.match(String(await held.done), /denied by bob/);
    await received(hook('review.denied', 'flaky'), 'the denial');
  });

  it('records review.notification.failed with the host only once a receiver keeps failing', async () => {
    const held = await hold('down', 'logs');
    const first = await received(
      (r) => r.path === '/hook' && (r.body.review as ReviewView).connection === 'down',
      'a delivery to the failing receiver',
    );
    const r = reviewOf(first);
    // This delivery's record: the hanging receiver's notifier fails the same review on the same host.
    const failed = await gw.waitForAudit(
      'review.notification.failed',
      (a) => a.payload.review === r.id && a.payload.delivery === first.headers['x-warden-delivery'],
    );
    assert.equal(failed.outcome, 'failure');
    assert.equal(failed.actor.subject, 'warden');
    assert.equal(failed.payload.notifier, 'webhook');
    assert.equal(failed.payload.host, new URL(receiver.url).host);
    assert.equal(failed.payload.attempts, 4);
    assert.equal(failed.payload.error, 'HTTP 500');
    assert.equal(failed.payload.delivery, first.headers['x-warden-delivery']);
    assert.ok(!JSON.stringify(failed).includes('/hook'), 'no URL path in the audit record');
    assert.equal(attemptsOf(first.headers['x-warden-delivery']).length, 4);
    // The held statement never waited on the receiver: it is decided as usual.
    assert.equal((await deny(r.id)).code, 0);
    assert.match(String(await held.done), /denied by bob/);
  });

  it('does not retry a 400', async () => {
    const held = await hold('bad', 'carts');
    const first = await received(
      (r) => r.path === '/hook' && (r.body.review as ReviewView).connection === 'bad',
      'a delivery to the refusing receiver',
    );
    const r = reviewOf(first);
    // This delivery's record: the hanging receiver's notifier fails the same review on the same host.
    const failed = await gw.waitForAudit(
      'review.notification.failed',
      (a) => a.payload.review === r.id && a.payload.delivery === first.headers['x-warden-delivery'],
    );
    assert.equal(failed.payload.attempts, 1);
    assert.equal(failed.payload.error, 'HTTP 400');
    await sleep(500); // ten backoffs of the test config: a retry would have come by now
    assert.equal(attemptsOf(first.headers['x-warden-delivery']).length, 1);
    assert.equal((await deny(r.id)).code, 0);
    await held.done;
  });

  it('does not follow a 302 to another receiver: the delivery fails, once, and is audited', async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      database: 'moved',
      user: 'alice',
      password: keys.alice,
    });
    c.on('error', () => undefined);
    await c.connect();
    const held = c.query('delete from notes').then(
      () => assert.fail('the held statement should not have run'),
      (err: Error) => err,
    );
    const requested = await received(hook('review.requested', 'moved'), 'the moved review');
    const id = reviewOf(requested).id;
    // The session leaves while its statement waits: the review is cancelled.
    await c.end().catch(() => undefined);
    await held;
    const failed = await gw.waitForAudit(
      'review.notification.failed',
      (a) => a.payload.review === id && a.payload.event === 'review.cancelled',
    );
    assert.equal(failed.payload.host, new URL(redirector.url).host);
    assert.equal(failed.payload.error, 'HTTP 302');
    assert.equal(failed.payload.attempts, 1, 'a redirect is not retried');
    assert.deepEqual(redirector.seen, ['/moved']);
    await sleep(500);
    assert.deepEqual(second.seen, [], 'the receiver the redirect pointed to was never asked');
  });

  it('gives up on a receiver that never answers after the per-request timeout, each attempt', async () => {
    const requested = await received(hook('review.requested', 'shop'), 'the shop review');
    const id = reviewOf(requested).id;
    const failed = await gw.waitForAudit(
      'review.notification.failed',
      (a) =>
        a.payload.review === id && a.payload.host === new URL(receiver.url).host && a.payload.attempts === 2,
    );
    assert.equal(failed.payload.error, 'timed out after 200 ms');
  });

  it('counts deliveries in the metrics and leaks neither the webhook secret nor the Slack URL', async () => {
    const res = await gw.api('GET', '/metrics');
    assert.equal(res.status, 200, res.text);
    assert.match(
      res.text,
      /warden_review_notifications_total\{kind="webhook",outcome="failed"\} ([2-9]|\d{2,})\n/,
    );
    assert.match(res.text, /warden_review_notifications_total\{kind="slack",outcome="sent"\} [1-9]/);
    assert.deepEqual(await gw.leaks(), []);
  });
});
