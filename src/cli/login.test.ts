import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { startLogin } from '../testing/cli-login.js';
import { type OidcProvider, RESOURCE, startOidcProvider } from '../testing/oidc-provider.js';
import { api, type CliResult, runCli, startWarden, type WardenProcess } from '../testing/warden-process.js';

interface Whoami {
  subject: string;
  kind: string;
  groups: string[];
  via: string;
  issuer: string;
  expires_at: string | null;
}

interface AuditRecord {
  type: string;
  actor: { subject: string };
  target: string | null;
  outcome: string;
  payload: Record<string, unknown>;
}

async function providerKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

describe('warden login against a real OpenID provider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-login-'));
  const dataDir = join(dir, 'data');
  /** Signs people in through the access token it mints for Warden's resource. */
  let corp: OidcProvider;
  /** Signs people in through the ID token (no resource indicator). */
  let partner: OidcProvider;
  /** Trusted by Warden, but mints its access tokens for another API: every login is refused. */
  let billing: OidcProvider;
  /** A device-flow provider whose codes live 2 s, for a sign-in nobody finishes. */
  let kiosk: OidcProvider;
  let warden: WardenProcess;
  let adminKey: string;
  let homes = 0;

  /** A fresh XDG_CONFIG_HOME, so every test starts logged out. */
  const freshHome = () => {
    const home = join(dir, `home-${++homes}`);
    mkdirSync(home);
    return home;
  };
  const cliEnv = (home: string): NodeJS.ProcessEnv => ({
    WARDEN_URL: warden.url,
    WARDEN_TOKEN: '',
    XDG_CONFIG_HOME: home,
    DISPLAY: '',
    WAYLAND_DISPLAY: '',
  });
  const credentialsOf = (home: string) => join(home, 'warden', 'credentials.json');

  /** The audit record of `type` that `match` picks; refusals are written asynchronously, so this waits a little. */
  async function audited(type: string, match: (r: AuditRecord) => boolean): Promise<AuditRecord> {
    for (let i = 0; ; i++) {
      const res = await api(warden.url, 'GET', `/api/audit?type=${type}&tail=true`, { token: adminKey });
      const found = (res.body as { records: AuditRecord[] }).records.find(match);
      if (found) return found;
      if (i === 50) assert.fail(`no matching ${type} record: ${res.text}`);
      await sleep(100);
    }
  }

  /** The browser flow as a person would go through it; returns the CLI's result. */
  async function browserLogin(home: string, at = corp, subject = 'alice@example.com'): Promise<CliResult> {
    const run = startLogin(['--no-browser', '--issuer', at.issuer], cliEnv(home));
    const [, url] = await run.prompt(/^ {2}(http\S+)$/m);
    const callback = await at.signIn(url!, subject);
    const res = await fetch(callback);
    assert.equal(res.status, 200, await res.text());
    return run.done;
  }

  before(async () => {
    corp = await startOidcProvider({
      keys: [await providerKey('corp-1')],
      clients: [],
      login: {
        clientId: 'warden-cli',
        users: [{ subject: 'alice@example.com', groups: ['platform', 'dev'], email: 'alice@example.com' }],
      },
    });
    partner = await startOidcProvider({
      keys: [await providerKey('partner-1')],
      clients: [],
      login: { clientId: 'partner-cli', users: [{ subject: 'bob', groups: ['contractors'] }] },
      device: { interval: 1 },
    });
    kiosk = await startOidcProvider({
      keys: [await providerKey('kiosk-1')],
      clients: [],
      login: { clientId: 'kiosk-cli', users: [] },
      device: { interval: 1, ttl: 2 },
    });
    billing = await startOidcProvider({
      keys: [await providerKey('billing-1')],
      clients: [],
      audience: 'billing',
      login: { clientId: 'billing-cli', users: [{ subject: 'carol', groups: ['finance'] }] },
    });
    warden = await startWarden({
      dir,
      config: {
        data_dir: dataDir,
        identity: {
          oidc: [
            {
              issuer: corp.issuer,
              audience: 'warden',
              algorithms: ['RS256'],
              login: { client_id: 'warden-cli', resource: RESOURCE },
            },
            // The ID token's audience is the login client, so the issuer's audience names it.
            {
              issuer: partner.issuer,
              audience: ['warden', 'partner-cli'],
              login: { client_id: 'partner-cli' },
            },
            {
              issuer: billing.issuer,
              audience: 'warden',
              login: { client_id: 'billing-cli', resource: RESOURCE },
            },
            { issuer: kiosk.issuer, audience: ['warden', 'kiosk-cli'], login: { client_id: 'kiosk-cli' } },
          ],
          roles: { admin: ['platform'] },
        },
      },
    });
    adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  });

  after(async () => {
    await warden?.stop();
    await corp?.stop();
    await partner?.stop();
    await billing?.stop();
    await kiosk?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes which issuers offer login, with public client ids only', async () => {
    const res = await api(warden.url, 'GET', '/api/login/config');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      issuers: [
        { issuer: corp.issuer, client_id: 'warden-cli', scopes: 'openid profile email', resource: RESOURCE },
        { issuer: partner.issuer, client_id: 'partner-cli', scopes: 'openid profile email' },
        {
          issuer: billing.issuer,
          client_id: 'billing-cli',
          scopes: 'openid profile email',
          resource: RESOURCE,
        },
        { issuer: kiosk.issuer, client_id: 'kiosk-cli', scopes: 'openid profile email' },
      ],
    });
  });

  it('signs a person in through the browser flow and caches their own Warden token with mode 0600', async () => {
    const home = freshHome();
    const res = await browserLogin(home);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /^logged in to \S+ as alice@example\.com \(human; groups platform, dev\), token \S+ expires /,
    );

    const file = credentialsOf(home);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, 'warden')).mode & 0o777, 0o700);
    const cached = JSON.parse(readFileSync(file, 'utf8')) as {
      logins: Record<string, { token: string; jti: string; subject: string }>;
    };
    const login = cached.logins[warden.url]!;
    assert.equal(login.subject, 'alice@example.com');
    assert.ok(
      !res.stdout.includes(login.token) && !res.stderr.includes(login.token),
      'the token is never printed',
    );

    // The cached token is the person's own Warden token, minted and audited like any other.
    const me = (await api(warden.url, 'GET', '/api/whoami', { token: login.token })).body as Whoami;
    assert.deepEqual(
      [me.subject, me.kind, me.via, me.groups],
      ['alice@example.com', 'human', 'warden_token', ['platform', 'dev']],
    );
    const issued = await audited('token.issued', (r) => r.target === `token:${login.jti}`);
    assert.deepEqual(
      [issued.actor.subject, issued.outcome, issued.payload.via],
      ['alice@example.com', 'success', 'oidc'],
    );
  });

  it('shows subject, groups, chain and expiry of the cached login in whoami', async () => {
    const home = freshHome();
    assert.equal((await browserLogin(home)).code, 0);
    const res = await runCli(['whoami'], { env: cliEnv(home) });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^subject: +alice@example\.com \(human\)$/m);
    assert.match(res.stdout, /^groups: +platform, dev$/m);
    assert.match(res.stdout, /^roles: +admin, user$/m);
    assert.match(res.stdout, /^chain: +\(direct\)$/m);
    assert.match(res.stdout, /^via: +warden_token \S+$/m);
    assert.match(res.stdout, /^expires: +\d{4}-\d\d-\d\dT\S+Z$/m);
    assert.match(res.stdout, /^from: +warden login \(.*credentials\.json\)$/m);
  });

  it('refuses a redirect to the loopback whose state is not the login in progress, and waits for the real one', async () => {
    const home = freshHome();
    const run = startLogin(['--no-browser', '--issuer', corp.issuer], cliEnv(home));
    const [, url] = await run.prompt(/^ {2}(http\S+)$/m);
    const callback = new URL(await corp.signIn(url!, 'alice@example.com'));
    const forged = new URL(callback);
    forged.searchParams.set('state', 'attacker-chosen');
    const refused = await fetch(forged);
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /does not belong to the sign-in in progress/);
    await run.prompt(/refused a redirect to the callback whose state does not match/);

    assert.equal((await fetch(callback)).status, 200);
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
  });

  it('signs a person in with the device flow through the ID token', async () => {
    const home = freshHome();
    const run = startLogin(['--device', '--issuer', partner.issuer], cliEnv(home));
    const [, code] = await run.prompt(/enter the code:\n\n {2}(\S+)\n/);
    const page = await partner.approveDevice(code!, 'bob');
    assert.match(page.body, /signed in; return to your device/);
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /as bob \(human; groups contractors\)/);
    const me = JSON.parse((await runCli(['whoami', '--json'], { env: cliEnv(home) })).stdout) as Whoami;
    assert.deepEqual([me.subject, me.groups, me.issuer], ['bob', ['contractors'], 'warden']);
  });

  it('polls 5 s slower after the provider answers slow_down', async () => {
    const polls = () => partner.requests().filter((p) => p === '/token').length;
    const before = polls();
    partner.slowDown(1);
    const run = startLogin(['--device', '--issuer', partner.issuer], cliEnv(freshHome()));
    const [, code] = await run.prompt(/enter the code:\n\n {2}(\S+)\n/);
    while (polls() === before) await sleep(20);
    const slowedAt = Date.now();
    await partner.approveDevice(code!, 'bob');
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
    // The announced 1 s plus 5 s: one poll answered slow_down, the next one the tokens.
    assert.ok(Date.now() - slowedAt >= 5_500, `finished ${Date.now() - slowedAt} ms after slow_down`);
    assert.equal(polls() - before, 2);
  });

  it('says the code expired when nobody signs in in time', async () => {
    const run = startLogin(['--device', '--issuer', kiosk.issuer], cliEnv(freshHome()));
    const res = await run.done;
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /^warden: the code expired before the sign-in finished: run `warden login --device` again$/m,
    );
  });

  it('says the sign-in was refused when the person aborts it on the device page', async () => {
    const home = freshHome();
    const run = startLogin(['--device', '--issuer', partner.issuer], cliEnv(home));
    const [, code] = await run.prompt(/enter the code:\n\n {2}(\S+)\n/);
    const page = await partner.approveDevice(code!, 'bob', { abort: true });
    assert.match(page.body, /device sign-in failed: the interaction was aborted/);
    const res = await run.done;
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /^warden: the sign-in was refused at http:\/\/127\.0\.0\.1:\d+ \(End-User aborted interaction\)$/m,
    );
  });

  it('says Warden refused the login, caches nothing and audits the refusal', async () => {
    const home = freshHome();
    const res = await browserLogin(home, billing, 'carol');
    assert.equal(res.code, 1);
    assert.equal(
      res.stderr.split('\n').at(-2),
      'warden: Warden refused the login: 401 unauthenticated: token is not meant for Warden (audience)',
    );
    assert.throws(() => statSync(credentialsOf(home)), { code: 'ENOENT' });
    const refused = await audited('auth.refused', (r) => r.payload.issuer === billing.issuer);
    assert.deepEqual(
      [refused.target, refused.outcome, refused.payload.reason],
      ['POST /api/tokens', 'denied', 'wrong_audience'],
    );
  });

  it('asks which issuer when several offer login', async () => {
    const res = await runCli(['login', '--no-browser'], { env: cliEnv(freshHome()) });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /offers several logins; choose one with --issuer: /);
  });

  it('asks to run warden login when the cached login has expired', async () => {
    const home = freshHome();
    mkdirSync(join(home, 'warden'), { mode: 0o700 });
    const expired = {
      token: 'x.y.z',
      jti: 'tok_old',
      subject: 'alice@example.com',
      issuer: corp.issuer,
      expires_at: '2020-01-01T00:00:00.000Z',
    };
    writeFileSync(credentialsOf(home), JSON.stringify({ version: 1, logins: { [warden.url]: expired } }), {
      mode: 0o600,
    });
    const res = await runCli(['connections', 'ls'], { env: cliEnv(home) });
    assert.equal(res.code, 1);
    assert.equal(
      res.stderr,
      `warden: your login to ${warden.url} as alice@example.com expired at 2020-01-01T00:00:00.000Z: run \`warden login\`\n`,
    );
  });

  it('asks to run warden login when Warden no longer takes the cached token', async () => {
    const home = freshHome();
    assert.equal((await browserLogin(home)).code, 0);
    const { jti } = (
      JSON.parse(readFileSync(credentialsOf(home), 'utf8')) as { logins: Record<string, { jti: string }> }
    ).logins[warden.url]!;
    assert.equal((await api(warden.url, 'DELETE', `/api/tokens/${jti}`, { token: adminKey })).status, 200);
    const res = await runCli(['whoami'], { env: cliEnv(home) });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^warden: 401 \S+: .*revoked.*: run `warden login`$/m);
  });

  it('revokes the token a new login replaces', async () => {
    const home = freshHome();
    const tokenIn = () =>
      (JSON.parse(readFileSync(credentialsOf(home), 'utf8')) as { logins: Record<string, { token: string }> })
        .logins[warden.url]!.token;
    assert.equal((await browserLogin(home)).code, 0);
    const first = tokenIn();
    assert.equal((await browserLogin(home)).code, 0);
    assert.notEqual(tokenIn(), first);
    assert.equal((await api(warden.url, 'GET', '/api/whoami', { token: first })).status, 401);
    assert.equal((await api(warden.url, 'GET', '/api/whoami', { token: tokenIn() })).status, 200);
  });

  it('lets WARDEN_TOKEN win over the cached login', async () => {
    const home = freshHome();
    assert.equal((await browserLogin(home)).code, 0);
    const res = await runCli(['whoami', '--json'], { env: { ...cliEnv(home), WARDEN_TOKEN: adminKey } });
    assert.equal(res.code, 0, res.stderr);
    const me = JSON.parse(res.stdout) as Whoami;
    assert.deepEqual([me.subject, me.via], ['bootstrap-admin', 'api_key']);
  });

  it('logs out: revokes the cached token and forgets it', async () => {
    const home = freshHome();
    assert.equal((await browserLogin(home)).code, 0);
    const token = (
      JSON.parse(readFileSync(credentialsOf(home), 'utf8')) as { logins: Record<string, { token: string }> }
    ).logins[warden.url]!.token;
    const res = await runCli(['logout'], { env: cliEnv(home) });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^logged out of \S+ as alice@example\.com: token \S+ revoked$/m);
    assert.throws(() => statSync(credentialsOf(home)), { code: 'ENOENT' });
    assert.equal((await api(warden.url, 'GET', '/api/whoami', { token })).status, 401);

    const again = await runCli(['whoami'], { env: cliEnv(home) });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no credential: .*run `warden login`/);
  });
});
