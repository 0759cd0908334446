// `warden login` and `warden logout`: sign a person in at an OIDC issuer Warden trusts, trade
// the provider's token for the person's own Warden token, and keep it in the login cache.
import type { Command } from 'commander';
import type { LoginConfigView } from '../../api/routes/login.js';
import { ApiClient, CliError } from '../client.js';
import { type CachedLogin, cachedLogin, removeLogin, saveLogin } from '../credentials.js';
import { deviceLogin } from '../login/device.js';
import { loopbackLogin } from '../login/loopback.js';
import { discover, type LoginClient } from '../login/oauth.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** GET /api/login/config: public, so it is asked without any credential. */
async function loginClients(baseUrl: string): Promise<LoginClient[]> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/api/login/config`, { signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new CliError(
      `cannot reach Warden at ${baseUrl}: ${cause?.code ?? (err as Error).message} (is \`warden serve\` running? set WARDEN_URL)`,
    );
  }
  if (!res.ok) throw new CliError(`${baseUrl}/api/login/config answered ${res.status} ${res.statusText}`);
  return ((await res.json()) as LoginConfigView).issuers;
}

function pick(clients: LoginClient[], issuer: string | undefined, baseUrl: string): LoginClient {
  const names = clients.map((c) => c.issuer).join(', ');
  if (clients.length === 0) {
    throw new CliError(
      `${baseUrl} offers no login: its config names no identity.oidc[].login client (use an API key via WARDEN_TOKEN instead)`,
    );
  }
  if (issuer) {
    const trim = (s: string) => s.replace(/\/+$/, '');
    const found = clients.find((c) => trim(c.issuer) === trim(issuer));
    if (!found) throw new CliError(`${baseUrl} offers no login at ${issuer}; it offers: ${names}`, 2);
    return found;
  }
  if (clients.length > 1)
    throw new CliError(`${baseUrl} offers several logins; choose one with --issuer: ${names}`, 2);
  return clients[0]!;
}

/** Revokes a cached login's token with itself; false when it has expired anyway. */
async function revoke(baseUrl: string, login: CachedLogin): Promise<boolean> {
  if (!(Date.parse(login.expires_at) > Date.now())) return false;
  await new ApiClient({ url: baseUrl, token: login.token }).request(
    'DELETE',
    `/api/tokens/${encodeURIComponent(login.jti)}`,
  );
  return true;
}

interface Whoami {
  subject: string;
  kind: string;
  groups: string[];
}

export function loginCommands(program: Command): void {
  program
    .command('login')
    .description(
      'sign in at an identity provider Warden trusts and keep your Warden token for WARDEN_URL in ~/.config/warden',
    )
    .option('--issuer <url>', 'which provider, when Warden offers several')
    .option('--device', 'sign in from another device (for machines without a browser)')
    .option('--no-browser', 'print the sign-in URL without trying to open a browser')
    .option('--ttl <duration>', 'lifetime of the Warden token, e.g. 8h (capped by identity.token_max_ttl)')
    .action(async (o: { issuer?: string; device?: boolean; browser: boolean; ttl?: string }) => {
      const baseUrl = new ApiClient().baseUrl;
      const client = pick(await loginClients(baseUrl), o.issuer, baseUrl);
      const meta = await discover(client.issuer);
      const tokens = o.device
        ? await deviceLogin(meta, client, say)
        : await loopbackLogin(meta, client, { openBrowser: o.browser, timeoutMs: 5 * 60_000, say });
      // With a resource indicator the access token is the one minted for Warden; without, only
      // the ID token names Warden's side of things (its audience is the login client).
      const presented = client.resource ? tokens.access_token : tokens.id_token;
      if (!presented) {
        throw new CliError(`${client.issuer} returned no ID token: login scopes must include openid`);
      }
      // POST /api/tokens with the person's own provider token: the Warden token is theirs, not
      // a delegate's, and is minted and audited like any other (token.issued).
      const trade = new ApiClient({ url: baseUrl, token: presented });
      let minted: { token: string; jti: string; expires_at: string };
      let me: Whoami;
      try {
        minted = await trade.request('POST', '/api/tokens', o.ttl ? { ttl: o.ttl } : {});
        me = await new ApiClient({ url: baseUrl, token: minted.token }).get<Whoami>('/api/whoami');
      } catch (err) {
        throw new CliError(`Warden refused the login: ${(err as Error).message}`);
      }
      const previous = cachedLogin(baseUrl);
      const path = saveLogin(baseUrl, {
        token: minted.token,
        jti: minted.jti,
        subject: me.subject,
        issuer: client.issuer,
        expires_at: minted.expires_at,
      });
      process.stdout.write(
        `logged in to ${baseUrl} as ${me.subject} (${me.kind}; groups ${me.groups.join(', ') || '-'}), ` +
          `token ${minted.jti} expires ${minted.expires_at}\ncredentials saved in ${path}\n`,
      );
      // The token this login replaces is in no one's hands any more: revoke it, best effort.
      if (previous && previous.jti !== minted.jti) await revoke(baseUrl, previous).catch(() => {});
      if (process.env.WARDEN_TOKEN)
        say('note: WARDEN_TOKEN is set, and commands use it rather than this login');
    });

  program
    .command('logout')
    .description('revoke the token `warden login` cached for WARDEN_URL and forget it')
    .action(async () => {
      const baseUrl = new ApiClient().baseUrl;
      const login = cachedLogin(baseUrl);
      if (!login) {
        process.stdout.write(`not logged in to ${baseUrl}\n`);
        return;
      }
      let note = `token ${login.jti} revoked`;
      try {
        if (!(await revoke(baseUrl, login))) note = `token ${login.jti} had expired`;
      } catch (err) {
        // Forgetting it locally still matters; say the token lives on until it expires.
        note = `token ${login.jti} not revoked (${(err as Error).message}); it expires ${login.expires_at}`;
      }
      removeLogin(baseUrl);
      process.stdout.write(`logged out of ${baseUrl} as ${login.subject}: ${note}\n`);
    });
}
