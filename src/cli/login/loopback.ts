// Authorization code + PKCE with a loopback redirect (RFC 8252): a one-shot listener on
// 127.0.0.1 receives the provider's redirect, checks `state`, and the code is traded for tokens.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { CliError } from '../client.js';
import {
  type LoginClient,
  OAuthError,
  type ProviderMetadata,
  type ProviderTokens,
  pkce,
  randomValue,
  tokenRequest,
} from './oauth.js';

export interface LoopbackOptions {
  /** Try to open a browser on the authorization URL (it is printed either way). */
  openBrowser: boolean;
  /** How long to wait for the browser to come back. */
  timeoutMs: number;
  say(line: string): void;
}

function page(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><title>Warden</title><p>${text}</p>`);
}

/** Opens `url` with the desktop's opener, if this machine has a desktop; false when it did not try. */
function openBrowser(url: string): boolean {
  let cmd: string;
  let args: string[];
  if (process.platform === 'darwin') [cmd, args] = ['open', [url]];
  else if (process.platform === 'win32') [cmd, args] = ['rundll32', ['url.dll,FileProtocolHandler', url]];
  else if (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) [cmd, args] = ['xdg-open', [url]];
  else return false;
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
  // No opener installed: the printed URL is still there.
  child.on('error', () => {});
  child.unref();
  return true;
}

export async function loopbackLogin(
  meta: ProviderMetadata,
  client: LoginClient,
  opts: LoopbackOptions,
): Promise<ProviderTokens> {
  if (!meta.authorization_endpoint) {
    throw new CliError(`${client.issuer} has no authorization endpoint: use \`warden login --device\``);
  }
  const methods = meta.code_challenge_methods_supported;
  if (methods && !methods.includes('S256')) {
    throw new CliError(`${client.issuer} does not support PKCE with S256, which Warden's login requires`);
  }
  const { verifier, challenge } = pkce();
  const state = randomValue();
  const nonce = randomValue();

  let settle: { resolve(code: string): void; reject(err: Error): void } | undefined;
  const code = new Promise<string>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback') return page(res, 404, 'Not found.');
    const q = url.searchParams;
    // Anyone on this machine can reach the port: a redirect that does not carry this login's
    // state is refused and the login keeps waiting for the real one.
    if (q.get('state') !== state) {
      opts.say('refused a redirect to the callback whose state does not match this login');
      return page(res, 400, 'Refused: this response does not belong to the sign-in in progress.');
    }
    const error = q.get('error');
    if (error) {
      page(res, 400, 'The sign-in was refused; see the terminal.');
      return settle?.reject(new OAuthError(error, q.get('error_description') ?? undefined));
    }
    const got = q.get('code');
    if (!got) return page(res, 400, 'Refused: the response carries no code.');
    // Warden has not seen the token yet: the terminal tells whether the login succeeded.
    page(res, 200, 'Sign-in received. You can close this tab; the terminal shows the result.');
    settle?.resolve(got);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  const timer = setTimeout(
    () =>
      settle?.reject(
        new CliError(`no sign-in within ${Math.round(opts.timeoutMs / 1000)}s: run \`warden login\` again`),
      ),
    opts.timeoutMs,
  );
  try {
    const authorize = new URL(meta.authorization_endpoint);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: client.scopes,
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...(client.resource ? { resource: client.resource } : {}),
    })) {
      authorize.searchParams.set(k, v);
    }
    const opened = opts.openBrowser && openBrowser(authorize.href);
    opts.say(
      `${opened ? 'Your browser was opened to sign in' : 'Open this URL in a browser to sign in'} to ${client.issuer}:\n\n  ${authorize.href}\n`,
    );
    opts.say(`Waiting for the browser to return to ${redirectUri} …`);
    const tokens = await tokenRequest(meta, {
      grant_type: 'authorization_code',
      code: await code,
      redirect_uri: redirectUri,
      client_id: client.client_id,
      code_verifier: verifier,
      resource: client.resource,
    });
    // The ID token came straight from the token endpoint; its nonce ties it to this login.
    if (tokens.id_token && decodeJwt(tokens.id_token).nonce !== nonce) {
      throw new CliError('the ID token does not carry this login’s nonce: refusing it');
    }
    return tokens;
  } finally {
    clearTimeout(timer);
    server.close();
    server.closeAllConnections();
  }
}
