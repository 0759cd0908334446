import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { timeOrderedId } from '../crypto/ids.js';
import { REDACTED } from '../policy/mask/styles.js';
import type { SessionView } from '../store/sessions.js';
import { type ConsoleBrowser, openBrowser, SEEN_WITHIN } from '../testing/browser.js';
import { delegatedToken, type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia, type RunResult } from '../testing/run.js';
import { recordTerminalSample } from '../testing/terminal-sample.js';

const EMAIL = 'ada@example.com';

/**
 * The web console end to end: Debian's Chromium, driven by playwright-core, against a real Warden
 * with a real PostgreSQL target and psql as the client, signed in with an API key.
 */
describe('web console in Chromium against a real Warden and PostgreSQL', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let ui: ConsoleBrowser;
  let page: Page;
  let keys: Record<'carol' | 'alice', string>;
  let port: number;

  const psql = (password: string, args: string[], user = 'alice') =>
    psqlVia({ port, password, database: 'shop', user }, args, { timeoutMs: 90_000 });
  /** The newest session of `subject`, as an auditor sees it through the API, once there is one. */
  const sessionOf = async (subject: string, status?: string): Promise<SessionView> => {
    for (let i = 0; i < 200; i++) {
      const q = `subject=${encodeURIComponent(subject)}${status ? `&status=${status}` : ''}`;
      const [s] = ((await gw.api('GET', `/api/sessions?${q}`)).body as { sessions: SessionView[] }).sessions;
      if (s) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no session of ${subject}`);
  };
  const nav = async (label: string) => {
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: label }).click();
  };

  before(async () => {
    db = await createThrowawayDb();
    const setup = new pg.Client({ connectionString: db.url });
    await setup.connect();
    await setup.query('create table customers (id int primary key, name text, email text)');
    await setup.query(
      `insert into customers values (1, 'Ada', '${EMAIL}'), (2, 'Grace', 'grace@example.com')`,
    );
    await setup.query('create table jobs (id int primary key)');
    await setup.query('insert into jobs select generate_series(1, 3)');
    await setup.end();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name, 'shop')],
        identity: { roles: { admin: ['ops'], auditor: ['ops'] } },
        policy: {
          rules: [
            { name: 'mask-email', effect: 'mask', mask: { columns: ['*.email'], style: 'redact' } },
            {
              name: 'hold-deletes',
              when: { sql: { statements: ['delete'], where: 'absent' } },
              effect: 'review',
              review: { approvers: ['dba'], hold: '120s' },
            },
          ],
        },
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    keys = await mintKeys(gw, { carol: 'ops,dba', alice: 'dev' });
    ui = await openBrowser();
    page = ui.page;
  });
  after(async () => {
    await ui?.close();
    await gw?.close();
    await db?.drop();
  });

  it('signs in with an API key, which is traded for a Warden token and never kept', async () => {
    await page.goto(gw.url);
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
    await ui.screenshot('01-sign-in');
    await page.getByLabel('API key').fill(keys.carol);
    await page.getByRole('button', { name: 'Sign in with API key' }).click();
    await page.getByTestId('whoami').filter({ hasText: 'carol' }).waitFor();
    const stored = await page.evaluate<string>('JSON.stringify(sessionStorage)');
    assert.ok(!stored.includes(keys.carol), 'the API key must not be kept by the browser');
    assert.match(stored, /jti/);
  });

  let alice: SessionView;
  let held: Promise<RunResult>;

  it('shows a psql session appear live, then its statements with the masked value', async () => {
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    // psql reads customers, then issues a DELETE the policy holds for a dba's approval.
    held = psql(keys.alice, [
      '-c',
      'SELECT id, name, email FROM customers ORDER BY id',
      '-c',
      'DELETE FROM jobs',
    ]);
    alice = await sessionOf('alice', 'active');
    // No reload: the list refreshes by itself.
    const row = page.locator(`tr[data-session="${alice.id}"]`);
    await row.waitFor(SEEN_WITHIN);
    await ui.screenshot('02-sessions');
    await row.getByRole('link', { name: 'alice' }).click();

    await page.getByRole('heading', { name: /^Session / }).waitFor();
    const identity = page.getByLabel('identity');
    await identity.getByText('alice', { exact: true }).first().waitFor();
    const select = page.locator('li.statement', { hasText: 'FROM customers' });
    await select.waitFor(SEEN_WITHIN);
    await select.getByText(REDACTED).first().waitFor();
    assert.equal(await page.getByText(EMAIL).count(), 0, 'the unmasked email must not reach the page');
    await ui.screenshot('03-session-detail');
  });

  it('approves the held DELETE from the inbox; psql completes and the session page updates live', async () => {
    await nav('Reviews');
    const card = page.locator('li.review', { hasText: 'DELETE FROM jobs' });
    await card.waitFor(SEEN_WITHIN);
    await card.getByText('hold-deletes').first().waitFor();
    // The facts the rule matched: a DELETE writing jobs, without a WHERE clause.
    const facts = card.getByLabel('facts');
    await facts.getByText('no WHERE clause').waitFor();
    assert.match(await facts.innerText(), /delete · writes jobs/);
    await ui.screenshot('04-reviews');
    await card.getByLabel('reason').fill('cleanup ticket 42');
    await card.getByRole('button', { name: 'Approve' }).click();
    // The pending inbox drops it once decided (the stream says so).
    await card.waitFor({ state: 'detached', ...SEEN_WITHIN });

    const done = await held;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /DELETE 3/);

    await page.goBack();
    await page.locator('li.statement', { hasText: 'DELETE FROM jobs' }).waitFor(SEEN_WITHIN);
    await page.locator('.title-row .badge', { hasText: 'closed' }).waitFor(SEEN_WITHIN);
  });

  it('expands a three-level agent chain from the person through two agents', async () => {
    const agentA = await delegatedToken(gw, keys.alice, 'agent-a');
    const agentB = await delegatedToken(gw, agentA, 'agent-b');
    for (const [token, user] of [
      [agentA, 'agent-a'],
      [agentB, 'agent-b'],
    ] as const) {
      const r = await psql(token, ['-c', `SELECT '${user} was here'`], user);
      assert.equal(r.code, 0, r.stderr);
    }
    const b = await sessionOf('agent-b');
    assert.deepEqual(b.chain, ['agent-a', 'agent-b']);

    // From alice's own session: the tree opens at her credential, the agents folded.
    await page.goto(`${gw.url}/chains/${alice.id}`);
    await page.getByTestId('root-subject').filter({ hasText: 'alice' }).waitFor();
    const nodeA = page.locator('li[data-node="agent-a"]');
    await nodeA.waitFor();
    assert.equal(await page.locator('li[data-node="agent-b"]').count(), 0, 'agent-b starts folded');
    await nodeA.getByRole('button', { name: 'expand agent-a' }).click();
    const nodeB = nodeA.locator('li[data-node="agent-b"]');
    await nodeB.waitFor();
    await nodeB.getByRole('button', { name: 'expand agent-b' }).click();
    const bSession = nodeB.getByRole('link', { name: b.id.slice(-8) });
    await bSession.waitFor();
    await nodeB.getByText("SELECT 'agent-b was here'").waitFor();
    await ui.screenshot('05-agent-chain');
    await bSession.click();
    await page.getByLabel('identity').getByText('agent-a → agent-b').waitFor();
  });

  it('ends a live session from its page (admin), with the reason reaching psql', async () => {
    const sleeping = psql(keys.alice, ['-c', 'SELECT pg_sleep(60)']);
    const s = await sessionOf('alice', 'active');
    await page.goto(`${gw.url}/sessions/${s.id}`);
    page.once('dialog', (d) => void d.accept('runaway query'));
    await page.getByRole('button', { name: 'End session' }).click();
    const r = await sleeping;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /terminated by carol: runaway query/);
    await page.locator('.title-row .badge', { hasText: 'killed' }).waitFor(SEEN_WITHIN);
  });

  it('replays a recorded terminal session with asciinema-player', async () => {
    const store = gw.openStore();
    const sessionId = timeOrderedId();
    try {
      await recordTerminalSample(store, sessionId);
    } finally {
      await store.close();
    }
    await page.goto(`${gw.url}/sessions/${sessionId}`);
    await page.getByRole('link', { name: 'Replay terminal' }).click();
    const player = page.getByTestId('player');
    // The recording's last line, drawn by the player's terminal once playback reaches it.
    await player.getByText('done').first().waitFor(SEEN_WITHIN);
    await player.getByText('warden demo ✓').first().waitFor();
    await ui.screenshot('06-replay');
  });

  it('shows connections without secrets and tests one against the real target', async () => {
    await nav('Connections');
    await page.locator('tr[data-connection="shop"]').getByRole('link', { name: 'shop' }).click();
    await page.getByRole('heading', { name: 'shop' }).waitFor();
    await page.getByRole('button', { name: 'Test connection' }).click();
    const probe = page.getByTestId('probe');
    await probe.waitFor(SEEN_WITHIN);
    assert.match(await probe.innerText(), /Reached 127\.0\.0\.1:5432 in \d+ ms — server \d+/);
    await ui.screenshot('07-connection');
  });

  it('shows the audit trail with its verification banner and exports it', async () => {
    const signed = await gw.api('POST', '/api/audit/checkpoint');
    assert.equal(signed.status, 200, signed.text);
    await nav('Audit');
    const banner = page.getByTestId('verify-banner');
    await banner.waitFor(SEEN_WITHIN);
    assert.match(
      await banner.innerText(),
      /Chain verified up to seq \d+ .*Last signed checkpoint: seq \d+ at /s,
    );
    await page.locator('td', { hasText: 'review.approved' }).first().waitFor();
    await ui.screenshot('08-audit');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export (JSON lines)' }).click(),
    ]);
    const path = await download.path();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.ok(lines.length > 5, `export holds ${lines.length} lines`);
    for (const line of lines) JSON.parse(line);
  });

  it('works in a narrow window: no page is wider than the phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of ['/sessions', `/sessions/${alice.id}`, '/reviews', '/connections', '/audit']) {
      await page.goto(`${gw.url}${path}`);
      // Live pages never go quiet on the network: wait for their content instead.
      await page.locator('main h1').first().waitFor();
      await page.locator('main table, main .card, main .muted').first().waitFor();
      const overflow = await page.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      assert.ok(overflow <= 1, `${path} is ${overflow}px wider than the window`);
    }
    await page.goto(`${gw.url}/sessions`);
    await page.locator(`tr[data-session="${alice.id}"]`).waitFor();
    // Each cell shows its column's heading in front of it: the row reads as a labelled card.
    const labels = await page.evaluate<string[]>(
      `[...document.querySelectorAll('tr[data-session="${alice.id}"] td')].map((td) => getComputedStyle(td, '::before').content)`,
    );
    assert.deepEqual(labels, ['"Started"', '"Caller"', '"Chain"', '"Connection"', '"Status"', '"Session"']);
    await ui.screenshot('09-sessions-narrow');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('returns to the sign-in page, saying why, when its token is revoked elsewhere', async () => {
    const jti = await page.evaluate<string>("JSON.parse(sessionStorage.getItem('warden.console.token')).jti");
    const revoked = await gw.api('DELETE', `/api/tokens/${jti}`);
    assert.equal(revoked.status, 200, revoked.text);
    await page.goto(`${gw.url}/sessions`);
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor(SEEN_WITHIN);
    await page.getByRole('alert').filter({ hasText: 'expired or was revoked' }).waitFor();
    await page.getByLabel('API key').fill(keys.carol);
    await page.getByRole('button', { name: 'Sign in with API key' }).click();
    await page.getByTestId('whoami').filter({ hasText: 'carol' }).waitFor();
  });

  it('signs out by revoking its token', async () => {
    // Code run in the page (the test's TypeScript has no DOM types).
    const token = await page.evaluate<string | undefined>(
      "JSON.parse(sessionStorage.getItem('warden.console.token') ?? '{}').token",
    );
    assert.ok(token);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
    const after = await gw.api('GET', '/api/whoami', { token });
    assert.equal(after.status, 401);
  });

  it('offers a plain user only what their role allows', async () => {
    await page.getByLabel('API key').fill(keys.alice);
    await page.getByRole('button', { name: 'Sign in with API key' }).click();
    await page.getByTestId('whoami').filter({ hasText: 'alice' }).waitFor();
    const links = await page.getByRole('navigation', { name: 'main' }).getByRole('link').allInnerTexts();
    assert.deepEqual(links, ['Sessions', 'Reviews', 'Connections']);
    // Her own sessions and those of agents acting for her; carol's API use is not a session here.
    const rows = page.locator('tr[data-session]');
    await rows.first().waitFor();
    for (const chain of await rows.locator('td.chain').allInnerTexts()) assert.match(chain, /^alice/);
    await page.goto(`${gw.url}/sessions/${alice.id}`);
    await page.getByLabel('identity').waitFor();
    await page.goto(`${gw.url}/connections/shop`);
    await page.getByRole('heading', { name: 'shop' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Test connection' }).count(), 0);
    await page.goto(`${gw.url}/audit`);
    await page.getByRole('alert').filter({ hasText: 'open to auditors' }).waitFor();
    assert.deepEqual(ui.pageErrors, []);
  });
});
