import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import type { Page } from 'playwright-core';
import { type ConsoleBrowser, openBrowser, SEEN_WITHIN } from '../testing/browser.js';
import { freePort, type Gateway, startGateway } from '../testing/gateway.js';
import { type OidcProvider, RESOURCE, startOidcProvider } from '../testing/oidc-provider.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@partner.example';
const CLIENT_ID = 'warden-cli';
/** The second provider's client: no resource, so Warden is handed the ID token (aud = this id). */
const PARTNER_CLIENT_ID = 'warden-partner';
/** Where the console keeps its Warden token. */
const TOKEN_KEY = 'warden.console.token';

/**
 * "Sign in with the configured OIDC provider" end to end: Debian's Chromium, driven by
 * playwright-core, against a real Warden and a real OpenID provider (oidc-provider) that knows the
 * console as a public client (authorization code + PKCE, redeemed from the page).
 */
describe('signing in to the web console through a real OpenID provider, in Chromium', () => {
  let provider: OidcProvider;
  let partner: OidcProvider;
  let gw: Gateway;
  let ui: ConsoleBrowser;
  let page: Page;

  /** Code run in the page (the test's TypeScript has no DOM types). */
  const storage = () => page.evaluate<Record<string, string>>('({ ...sessionStorage })');
  const signInButton = (p = provider) =>
    page.getByRole('button', { name: `Sign in with 127.0.0.1:${p.port}` });
  /** A new visitor: no provider session (cookies) and nothing in this tab's storage. */
  const freshVisit = async (path: string) => {
    await ui.context.clearCookies();
    await page.goto(gw.url);
    await page.evaluate('sessionStorage.clear()');
    await page.goto(`${gw.url}${path}`);
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
  };
  /** The provider's answer to the page's code redemption (POST /token, from the console's origin). */
  const tokenResponseOf = (p: OidcProvider) =>
    page.waitForResponse(
      (r) => r.url() === `${p.issuer}/token` && r.request().method() === 'POST',
      SEEN_WITHIN,
    );
  /** The credential the page hands Warden to mint its own token. */
  const presentedToWarden = async () => {
    const req = await page.waitForRequest(
      (r) => r.url() === `${gw.url}/api/tokens` && r.method() === 'POST',
      SEEN_WITHIN,
    );
    return req.headers().authorization;
  };
  const tokenCalls = () => provider.requests().filter((p) => p === '/token').length;
  const atProvider = (url: URL) => url.origin === provider.issuer || url.origin === partner.issuer;
  /** Signs in at the provider's own pages: who the person is, then what the console may have. */
  const signInAtProvider = async (subject: string, screenshot?: string) => {
    await page.waitForURL(atProvider, SEEN_WITHIN);
    await page.getByLabel('User name').fill(subject);
    if (screenshot) await ui.screenshot(screenshot);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
  };

  before(async () => {
    // The provider registers the console's callback, so the gateway's address is chosen first.
    const apiPort = await freePort();
    const callback = `http://127.0.0.1:${apiPort}/signin/callback`;
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    provider = await startOidcProvider({
      keys: [{ ...(await exportJWK(privateKey)), kid: 'corp-1', alg: 'RS256', use: 'sig' }],
      clients: [],
      login: { clientId: CLIENT_ID, users: [{ subject: ALICE, groups: ['dev'] }], redirectUris: [callback] },
    });
    const partnerKey = (await generateKeyPair('RS256', { extractable: true })).privateKey;
    partner = await startOidcProvider({
      keys: [{ ...(await exportJWK(partnerKey)), kid: 'partner-1', alg: 'RS256', use: 'sig' }],
      clients: [],
      login: {
        clientId: PARTNER_CLIENT_ID,
        users: [{ subject: BOB, groups: ['dev'] }],
        redirectUris: [callback],
      },
    });
    gw = await startGateway('sqlite', {
      config: {
        api: { port: apiPort },
        identity: {
          oidc: [
            {
              issuer: provider.issuer,
              audience: 'warden',
              algorithms: ['RS256'],
              login: { client_id: CLIENT_ID, resource: RESOURCE },
            },
            {
              issuer: partner.issuer,
              audience: PARTNER_CLIENT_ID,
              algorithms: ['RS256'],
              login: { client_id: PARTNER_CLIENT_ID },
            },
          ],
        },
      },
    });
    // Back from the provider's page restores the console as it was left, as it does for people.
    ui = await openBrowser({ backForwardCache: true });
    page = ui.page;
  });
  after(async () => {
    await ui?.close();
    await gw?.close();
    await provider?.stop();
    await partner?.stop();
  });

  it('brings alice back signed in to the page she asked for, keeping only a Warden token', async () => {
    const res = await page.goto(`${gw.url}/connections`);
    // The page may call its own origin and the login issuers', nothing else.
    const csp = (await res?.allHeaders())?.['content-security-policy'] ?? '';
    assert.match(csp, new RegExp(`connect-src 'self' ${provider.issuer} ${partner.issuer};`));
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
    await ui.screenshot('oidc-01-sign-in');

    const authorize = page.waitForRequest((r) => new URL(r.url()).searchParams.has('code_challenge'));
    await signInButton().click();
    const asked = new URL((await authorize).url()).searchParams;
    assert.equal(asked.get('client_id'), CLIENT_ID);
    assert.equal(asked.get('redirect_uri'), `${gw.url}/signin/callback`);
    assert.equal(asked.get('code_challenge_method'), 'S256');
    assert.ok(asked.get('state') && asked.get('nonce'), 'the request carries a state and a nonce');

    const redeemed = tokenResponseOf(provider);
    const presented = presentedToWarden();
    await signInAtProvider(ALICE, 'oidc-02-provider-login');

    // The page redeemed the code itself, across origins: the provider allowed the console's.
    const tokenResponse = await redeemed;
    assert.equal(tokenResponse.status(), 200);
    assert.equal(tokenResponse.headers()['access-control-allow-origin'], gw.url);
    const issued = (await tokenResponse.json()) as Record<string, string>;
    assert.ok(issued.access_token && issued.id_token);
    // The issuer names a resource: Warden is handed the access token minted for it.
    assert.equal(await presented, `Bearer ${issued.access_token}`);

    await page.waitForURL(`${gw.url}/connections`, SEEN_WITHIN);
    await page.getByTestId('whoami').filter({ hasText: ALICE }).waitFor(SEEN_WITHIN);
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    await ui.screenshot('oidc-03-signed-in');

    const kept = await storage();
    assert.deepEqual(
      Object.keys(kept),
      [TOKEN_KEY],
      'only the Warden token stays, not the sign-in under way',
    );
    const everything = `${JSON.stringify(kept)}${await page.evaluate<string>('JSON.stringify(localStorage)')}`;
    for (const [name, value] of Object.entries(issued)) {
      if (/token$/.test(name)) assert.ok(!everything.includes(value), `the provider's ${name} is not kept`);
    }
    const token = gw.credential((JSON.parse(kept[TOKEN_KEY]!) as { token: string }).token);
    const me = await gw.api('GET', '/api/whoami', { token });
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(
      { subject: (me.body as { subject: string }).subject, via: (me.body as { via: string }).via },
      { subject: ALICE, via: 'warden_token' },
    );
    assert.deepEqual(ui.pageErrors, []);
  });

  it('signs in with the ID token at an issuer whose login names no resource', async () => {
    await freshVisit('/reviews');
    await signInButton(partner).click();
    const redeemed = tokenResponseOf(partner);
    const presented = presentedToWarden();
    await signInAtProvider(BOB);
    const issued = (await (await redeemed).json()) as Record<string, string>;
    assert.ok(issued.id_token);
    assert.equal(await presented, `Bearer ${issued.id_token}`);
    await page.waitForURL(`${gw.url}/reviews`, SEEN_WITHIN);
    await page.getByTestId('whoami').filter({ hasText: BOB }).waitFor(SEEN_WITHIN);
    const kept = await storage();
    const token = gw.credential((JSON.parse(kept[TOKEN_KEY]!) as { token: string }).token);
    const me = (await gw.api('GET', '/api/whoami', { token })).body as Record<string, unknown>;
    assert.deepEqual([me.subject, me.via], [BOB, 'warden_token']);
    const minted = await gw.waitForAudit('token.issued', (r) => r.actor.subject === BOB);
    assert.equal(minted.payload.via, 'oidc');
  });

  it('returns to the start page, not to another host, when the page asked for was `//host/…`', async () => {
    // A path a browser would read as another origin: it must never be where sign-in leads.
    await freshVisit('//evil.example/x');
    await signInButton().click();
    await signInAtProvider(ALICE);
    await page.waitForURL(`${gw.url}/sessions`, SEEN_WITHIN);
    await page.getByTestId('whoami').filter({ hasText: ALICE }).waitFor(SEEN_WITHIN);
  });

  it('lets the person come back from the provider with the Back button and choose again', async () => {
    await freshVisit('/sessions');
    await page.evaluate("addEventListener('pageshow', (e) => { window.restored = e.persisted; })");
    await signInButton().click();
    await page.waitForURL(atProvider, SEEN_WITHIN);
    // A page restored from the cache fires no load event: wait only for the navigation itself.
    await page.goBack({ waitUntil: 'commit' });
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
    assert.equal(await page.evaluate('window.restored'), true, 'restored from the back/forward cache');
    assert.ok(await signInButton().isEnabled(), 'the buttons wait for a new choice');
    assert.ok(await signInButton(partner).isEnabled());
  });

  it('names the origin the provider must allow when the page cannot reach its token endpoint', async () => {
    await freshVisit('/sessions');
    // What a browser reports for a refused cross-origin call: a bare network error.
    await page.route(`${provider.issuer}/token`, (r) => r.abort('failed'));
    try {
      await signInButton().click();
      await signInAtProvider(ALICE);
      await page.getByRole('heading', { name: 'Sign-in failed' }).waitFor(SEEN_WITHIN);
    } finally {
      await page.unroute(`${provider.issuer}/token`);
    }
    const note = await page.getByRole('alert').innerText();
    assert.ok(note.includes(`must allow ${gw.url} (CORS) for client ${CLIENT_ID}`), note);
    await ui.screenshot('oidc-06-token-endpoint-unreachable');
    assert.deepEqual(await storage(), {});
  });

  it('refuses an answer whose state is not the one this tab sent, and stays signed out', async () => {
    await freshVisit('/sessions');
    const redeemedBefore = tokenCalls();
    await signInButton().click();
    await page.waitForURL(atProvider, SEEN_WITHIN);
    // A link someone else made: a code and a state that this tab never asked for.
    await page.goto(`${gw.url}/signin/callback?code=forged-code&state=forged-state`);
    await page.getByRole('heading', { name: 'Sign-in failed' }).waitFor(SEEN_WITHIN);
    await page.getByText('the sign-in answer does not match this tab (state)').waitFor();
    await ui.screenshot('oidc-04-wrong-state');
    assert.deepEqual(await storage(), {}, 'no token, and the sign-in under way is dropped');
    assert.equal(tokenCalls(), redeemedBefore, 'the forged code was never sent to the provider');
    await page.getByRole('button', { name: 'Back to sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
  });

  it('says so when the person declines at the provider, and offers to sign in again where they were going', async () => {
    await freshVisit('/audit');
    await signInButton().click();
    await page.waitForURL(atProvider, SEEN_WITHIN);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('heading', { name: 'Sign-in failed' }).waitFor(SEEN_WITHIN);
    assert.match(page.url(), /error=access_denied/);
    await page.getByText('the identity provider refused: the person declined to sign in').waitFor();
    await ui.screenshot('oidc-05-declined');
    assert.deepEqual(await storage(), {});
    await page.getByRole('button', { name: 'Back to sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in to Warden' }).waitFor();
    assert.equal(page.url(), `${gw.url}/audit`);
  });
});
