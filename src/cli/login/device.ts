// The device authorization grant (RFC 8628) for machines without a browser: show a code and a
// URL to open anywhere, then poll the token endpoint at the pace the provider asks for.
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from '../client.js';
import {
  type LoginClient,
  OAuthError,
  type ProviderMetadata,
  type ProviderTokens,
  postForm,
  tokenRequest,
} from './oauth.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

export async function deviceLogin(
  meta: ProviderMetadata,
  client: LoginClient,
  say: (line: string) => void,
): Promise<ProviderTokens> {
  if (!meta.device_authorization_endpoint) {
    throw new CliError(
      `${client.issuer} does not offer the device flow: run \`warden login\` without --device`,
    );
  }
  const auth = (await postForm(meta.device_authorization_endpoint, {
    client_id: client.client_id,
    scope: client.scopes,
    resource: client.resource,
  })) as Partial<DeviceAuthorization>;
  if (!auth.device_code || !auth.user_code || !auth.verification_uri || !auth.expires_in) {
    throw new CliError(`${meta.device_authorization_endpoint} returned an incomplete device authorization`);
  }
  say(
    `To sign in to ${client.issuer}, open ${auth.verification_uri} and enter the code:\n\n  ${auth.user_code}\n`,
  );
  if (auth.verification_uri_complete) say(`(or open ${auth.verification_uri_complete})`);
  say('Waiting for the sign-in to finish …');

  // RFC 8628 §3.2: without an interval the client waits 5 s between polls.
  let interval = (auth.interval ?? 5) * 1000;
  const deadline = Date.now() + auth.expires_in * 1000;
  for (;;) {
    await sleep(interval);
    if (Date.now() > deadline) break;
    try {
      return await tokenRequest(meta, {
        grant_type: DEVICE_GRANT,
        device_code: auth.device_code,
        client_id: client.client_id,
        resource: client.resource,
      });
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      if (err.error === 'authorization_pending') continue;
      // §3.5: every slow_down adds 5 s to the interval for the rest of this login.
      if (err.error === 'slow_down') {
        interval += 5000;
        continue;
      }
      if (err.error === 'expired_token') break;
      if (err.error === 'access_denied') {
        throw new CliError(
          `the sign-in was refused at ${client.issuer}${err.description ? ` (${err.description})` : ''}`,
        );
      }
      throw err;
    }
  }
  throw new CliError('the code expired before the sign-in finished: run `warden login --device` again');
}
