import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair } from 'jose';
import pg from 'pg';
import type { SessionView } from '../store/sessions.js';
import { startLogin } from '../testing/cli-login.js';
import { type Gateway, startGateway } from '../testing/gateway.js';
import { type OidcProvider, RESOURCE, startOidcProvider } from '../testing/oidc-provider.js';
import { ADMIN_URL, createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia } from '../testing/run.js';

const ALICE = 'alice@example.com';
/** Generous: gateways re-check live sessions every second; this only bounds one that never ends. */
const ENDS_WITHIN_MS = 10_000;

/**
 * The end-to-end chain: a person signs in through a real OpenID provider, hands agent A
 * (which has its own API key) a delegated token, A hands sub-agent B a narrower one, and each
 * runs queries through the PostgreSQL gateway with real clients.
 */
describe('a three-level agent chain from a person signed in with OIDC, through the PostgreSQL gateway', () => {
  let provider: OidcProvider;
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let home: string;
  let agentKeyFile: string;
  const clients: pg.Client[] = [];

  /** The CLI as alice, with the login `warden login` cached (no WARDEN_TOKEN). */
  const asAlice = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    gw.cli(args, { token: null, env: { XDG_CONFIG_HOME: home, ...env } });
  /** The CLI with a credential in WARDEN_TOKEN (an agent's token). */
  const asAgent = (token: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    gw.cli(args, { token, env: { XDG_CONFIG_HOME: join(home, 'nobody'), ...env } });

  const connect = async (password: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, database: 'shop', user: 'x', password });
    clients.push(c);
    const ended = new Promise<pg.DatabaseError>((resolve) =>
      c.on('error', (e) => resolve(e as pg.DatabaseError)),
    );
    await c.connect();
    return { c, ended };
  };
  /** The one active session of `subject` (as an auditor sees it), once it is there. */
  const activeSessionOf = async (subject: string): Promise<SessionView> => {
    for (let i = 0; i < 100; i++) {
      const res = await gw.api('GET', `/api/sessions?subject=${encodeURIComponent(subject)}&status=active`);
      const [s] = (res.body as { sessions: SessionView[] }).sessions;
      if (s) return s;
      await sleep(100);
    }
    throw new Error(`no active session of ${subject}`);
  };

  before(async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    provider = await startOidcProvider({
      keys: [{ ...(await exportJWK(privateKey)), kid: 'corp-1', alg: 'RS256', use: 'sig' }],
      clients: [],
      login: { clientId: 'warden-cli', users: [{ subject: ALICE, groups: ['dev'] }] },
    });
    db = await createThrowawayDb();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name, 'shop'), pgConnection(db.name, 'billing')],
        identity: {
          oidc: [
            {
              issuer: provider.issuer,
              audience: 'warden',
              algorithms: ['RS256'],
              login: { client_id: 'warden-cli', resource: RESOURCE },
            },
          ],
        },
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    home = join(gw.store.dataDir, 'alice-home');
    mkdirSync(home);
    const created = await gw.cli([
      'keys',
      'create',
      '--name',
      'agent-a',
      '--kind',
      'agent',
      '--groups',
      'bots',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const agentKey = gw.credential(created.stdout.trim());
    agentKeyFile = join(gw.store.dataDir, 'agent-a.key');
    writeFileSync(agentKeyFile, agentKey, { mode: 0o600 });
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await gw?.close();
    await db?.drop();
    await provider?.stop();
  });

  it('records B under the person at the root, keeps B within A, ends B when A’s token is revoked, and traces it all', async () => {
    // 1. Alice signs in through the provider (authorization code + PKCE on a loopback).
    const login = startLogin(['--no-browser', '--issuer', provider.issuer], {
      WARDEN_URL: gw.url,
      WARDEN_TOKEN: '',
      XDG_CONFIG_HOME: home,
      DISPLAY: '',
      WAYLAND_DISPLAY: '',
    });
    const [, url] = await login.prompt(/^ {2}(http\S+)$/m);
    const callback = await provider.signIn(url!, ALICE);
    assert.equal((await fetch(callback)).status, 200);
    const signedIn = await login.done;
    assert.equal(signedIn.code, 0, signedIn.stderr);
    const cached = JSON.parse(readFileSync(join(home, 'warden', 'credentials.json'), 'utf8')) as {
      logins: Record<string, { token: string }>;
    };
    const aliceToken = gw.credential(Object.values(cached.logins)[0]!.token);
    const whoami = await asAlice(['whoami', '--json']);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.equal(JSON.parse(whoami.stdout).subject, ALICE);

    // 2. Alice works in her own session, and from it hands agent A (proving itself with its key) a token.
    const alice = await connect(aliceToken);
    const aliceSession = await activeSessionOf(ALICE);
    const toA = await asAlice([
      'token',
      'delegate',
      '--to',
      'agent-a',
      '--actor-token-file',
      agentKeyFile,
      '--connections',
      'shop',
      '--ttl',
      '4m', // within alice's sign-in, which the provider gives 5 minutes
      '--parent-session',
      aliceSession.id,
    ]);
    assert.equal(toA.code, 0, toA.stderr);
    const tokenA = gw.credential(toA.stdout.trim());

    // 3. A works, and from its session hands B a token (WARDEN_SESSION names the session).
    const a = await connect(tokenA);
    await a.c.query("select 'agent-a was here' as note");
    const sessionA = await activeSessionOf('agent-a');
    const toB = await asAgent(tokenA, ['token', 'delegate', '--to', 'agent-b', '--ttl', '2m'], {
      WARDEN_SESSION: sessionA.id,
    });
    assert.equal(toB.code, 0, toB.stderr);
    const tokenB = gw.credential(toB.stdout.trim());

    // 4. B cannot widen what it holds: another connection, or a life longer than A's token.
    const wider = await asAgent(tokenB, ['token', 'delegate', '--to', 'agent-c', '--connections', 'billing']);
    assert.notEqual(wider.code, 0);
    assert.match(wider.stderr, /invalid_scope: scope billing is wider/);
    const longer = await asAgent(tokenB, ['token', 'delegate', '--to', 'agent-c', '--ttl', '1h']);
    assert.notEqual(longer.code, 0);
    assert.match(
      longer.stderr,
      /invalid_request: the requested lifetime ends after the subject token expires/,
    );
    const billing = await psqlVia({ port, password: tokenB, database: 'billing' }, ['-c', 'select 1']);
    assert.notEqual(billing.code, 0);
    assert.match(billing.stderr, /does not cover connection "billing"/);

    // 5. B runs psql: its statements are recorded under alice, with the chain [agent-a, agent-b].
    const psqlB = psqlVia({ port, password: tokenB, database: 'shop' }, [
      '-c',
      "select 'agent-b was here' as note",
      '-c',
      'select pg_sleep(60)',
    ]);
    const sessionB = await activeSessionOf('agent-b');
    assert.equal(sessionB.root_subject, ALICE);
    assert.deepEqual(sessionB.chain, ['agent-a', 'agent-b']);
    assert.equal(sessionB.parent_session_id, sessionA.id);
    assert.equal(sessionA.parent_session_id, aliceSession.id);
    assert.equal(sessionB.kind, 'agent');
    const opened = await gw.waitForAudit('session.opened', (r) => r.payload.session === sessionB.id);
    assert.equal(opened.actor.root, ALICE);
    assert.deepEqual(opened.actor.chain, ['agent-a', 'agent-b']);
    await gw.waitForAudit('command.allowed', (r) => r.payload.session === sessionB.id);
    // The database's own view names the person and the chain behind B's backend (B's statement
    // was let through, so its backend is there; PostgreSQL keeps 63 bytes of the name).
    const label = `psql [warden s=${sessionB.id.slice(0, 8)} ${ALICE} via agent-a>agent-b]`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      const seen = await admin.query<{ application_name: string }>(
        'select application_name from pg_stat_activity where application_name like $1',
        [`psql [warden s=${sessionB.id.slice(0, 8)} %`],
      );
      assert.deepEqual(
        seen.rows.map((r) => r.application_name),
        [Buffer.from(label).subarray(0, 63).toString()],
      );
    } finally {
      await admin.end();
    }

    // 6. Alice revokes A's token: B's live psql ends with a PostgreSQL FATAL, and so does A's session.
    const jtiA = JSON.parse(Buffer.from(tokenA.split('.')[1]!, 'base64url').toString()).jti as string;
    const since = Date.now();
    const revoked = await asAlice(['token', 'revoke', jtiA]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const b = await Promise.race([
      psqlB,
      sleep(ENDS_WITHIN_MS).then(() => assert.fail('B’s psql session was not ended')),
    ]);
    const tookMs = Date.now() - since;
    assert.notEqual(b.code, 0);
    // Revoking A's token revoked B's with it (the cascade), so B's own token is the reason.
    assert.match(b.stderr, /FATAL: {2}session ended: token was revoked \(warden\)/);
    assert.match(b.stdout, /agent-b was here/);
    const errA = await Promise.race([a.ended, sleep(ENDS_WITHIN_MS).then(() => undefined)]);
    assert.equal(errA?.code, '57P01');
    await gw.waitForAudit('session.revoked', (r) => r.payload.session === sessionB.id);
    // Alice's own session is not under A's token: it goes on.
    assert.deepEqual((await alice.c.query('select 1 as n')).rows, [{ n: 1 }]);
    process.stderr.write(`# B's psql ended ${tookMs} ms after the revocation\n`);

    // 7. The trace shows the whole tree from alice down, with each agent's sessions and commands.
    let tree = '';
    for (let i = 0; i < 50 && !tree.includes("select 'agent-b was here'"); i++) {
      if (i > 0) await sleep(100);
      const traced = await gw.cli(['audit', 'trace', sessionB.id]);
      assert.equal(traced.code, 0, traced.stderr);
      tree = traced.stdout;
    }
    const at = (needle: string) => {
      const i = tree.indexOf(needle);
      assert.ok(i >= 0, `${needle} not in the trace:\n${tree}`);
      return i;
    };
    assert.ok(at(`${ALICE} (root)`) < at(`${ALICE} (human)`));
    assert.ok(at(`from oidc:${provider.issuer}`) > 0);
    assert.ok(at(`${ALICE} (human)`) < at('agent-a (agent; chain agent-a)'));
    assert.ok(at("select 'agent-a was here'") > at('agent-a (agent; chain agent-a)'));
    assert.ok(at('agent-a (agent; chain agent-a)') < at('agent-b (agent; chain agent-a → agent-b)'));
    assert.ok(at('agent-b (agent; chain agent-a → agent-b)') < at("select 'agent-b was here'"));
    assert.ok(at(`minted in session ${sessionA.id}`) > 0);
    assert.match(tree, /REVOKED/);
    // Alice may trace her own agents without being an auditor.
    const own = await asAlice(['audit', 'trace', sessionB.id, '--json']);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(JSON.parse(own.stdout).root_subject, ALICE);

    // 8. The audit chain verifies afterwards.
    const verified = await gw.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /^OK: /);
    assert.deepEqual(await gw.leaks(), []);
  });
});
