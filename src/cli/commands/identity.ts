// `warden whoami`, `warden keys …` and `warden token …` (delegate included): identities and credentials.
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { ApiKeyView } from '../../identity/api-keys.js';
import { apiKeyIdOf, looksLikeApiKey } from '../../identity/api-keys.js';
import { PARENT_SESSION_HEADER } from '../../identity/parent-session.js';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../identity/token-exchange.js';
import { jtiOfToken, type TokenView } from '../../identity/warden-tokens.js';
import { ApiClient, CliError, query } from '../client.js';
import { credentialsPath } from '../credentials.js';
import { commaList } from '../options.js';
import { printJson, printTable } from '../output.js';
import { rotateSeal } from './local.js';

interface Whoami {
  subject: string;
  kind: string;
  groups: string[];
  roles: string[];
  root_subject: string;
  chain: string[];
  via: string;
  token_id: string | null;
  issuer: string;
  scope: string[];
  expires_at: string | null;
}

/** A token's jti, whether given as the jti or as the token itself (which then stays local). */
function jtiOf(ref: string): string {
  const jti = jtiOfToken(ref);
  if (jti) return jti;
  if (ref.split('.').length === 3) {
    throw new CliError('that looks like a token but has no jti; pass the jti (see `warden token ls`)', 2);
  }
  return ref;
}

interface Exchanged {
  access_token: string;
  issued_token_type: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

/** POST /oauth/token, whose errors come in OAuth's shape rather than the rest of the API's. */
async function exchangeToken(
  baseUrl: string,
  form: URLSearchParams,
  parentSession: string | undefined,
): Promise<Exchanged> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(parentSession ? { [PARENT_SESSION_HEADER]: parentSession } : {}),
        // The trace a calling process runs in (the TRACEPARENT environment convention), for the audit record.
        ...(process.env.TRACEPARENT ? { traceparent: process.env.TRACEPARENT } : {}),
      },
      body: form.toString(),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new CliError(`cannot reach Warden at ${baseUrl}: ${cause?.code ?? (err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as Partial<Exchanged> & {
    error?: string;
    error_description?: string;
    // The API's own error shape, for failures outside the exchange (a store that is down).
    message?: string;
  };
  if (!res.ok || !body.access_token) {
    const why = body.error
      ? `${body.error}: ${body.error_description ?? ''}`
      : `${res.status} ${res.statusText}`;
    throw new CliError(`token exchange refused: ${why}`);
  }
  return body as Exchanged;
}

export function identityCommands(program: Command): void {
  program
    .command('whoami')
    .description('show the identity behind WARDEN_TOKEN, or behind your `warden login`')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const client = new ApiClient();
      const me = await client.get<Whoami>('/api/whoami');
      if (o.json) return printJson(me);
      const chain = me.chain.length > 0 ? `${me.root_subject} → ${me.chain.join(' → ')}` : '(direct)';
      for (const [k, v] of [
        ['subject', `${me.subject} (${me.kind})`],
        ['groups', me.groups.join(', ') || '-'],
        ['roles', me.roles.join(', ')],
        ['chain', chain],
        ['via', `${me.via}${me.token_id ? ` ${me.token_id}` : ''}`],
        ['issuer', me.issuer],
        ['expires', me.expires_at ?? 'never'],
        [
          'from',
          client.credential().source === 'login' ? `warden login (${credentialsPath()})` : 'WARDEN_TOKEN',
        ],
      ]) {
        process.stdout.write(`${`${k}:`.padEnd(10)}${v}\n`);
      }
    });

  const keys = program.command('keys').description('API keys for services and agents, and the sealing key');
  keys
    .command('create')
    .description('create an API key; the key is printed once, on stdout, and only its hash is stored')
    .requiredOption('--name <name>', 'name of the service or agent')
    .option('--groups <groups>', 'groups (comma-separated, repeatable)', commaList, [])
    .addOption(new Option('--kind <kind>', 'identity kind').choices(['service', 'agent']).default('service'))
    .option('--expires <duration>', 'lifetime, e.g. 90d (default: no expiry)')
    .option('--json', 'print JSON (key included)')
    .action(async (o: { name: string; groups: string[]; kind: string; expires?: string; json?: boolean }) => {
      const res = await new ApiClient().request<{ key: string; api_key: ApiKeyView }>('POST', '/api/keys', {
        name: o.name,
        kind: o.kind,
        groups: o.groups,
        ...(o.expires ? { expires_in: o.expires } : {}),
      });
      if (o.json) return printJson(res);
      process.stderr.write(
        `created API key ${res.api_key.name} (id ${res.api_key.id}, ${res.api_key.kind}` +
          `${res.api_key.expires_at ? `, expires ${res.api_key.expires_at}` : ''}); it is shown only now:\n`,
      );
      process.stdout.write(`${res.key}\n`);
    });
  keys
    .command('ls')
    .description('list API keys')
    .option('--all', 'include revoked keys')
    .option('--json', 'print JSON')
    .action(async (o: { all?: boolean; json?: boolean }) => {
      const { keys: rows } = await new ApiClient().get<{ keys: ApiKeyView[] }>(
        `/api/keys${query({ all: o.all })}`,
      );
      if (o.json) return printJson(rows);
      printTable(
        ['ID', 'NAME', 'KIND', 'GROUPS', 'CREATED', 'EXPIRES', 'REVOKED', 'LAST USED'],
        rows.map((k) => [
          k.id,
          k.name,
          k.kind,
          k.groups.join(','),
          k.created_at,
          k.expires_at,
          k.revoked_at,
          k.last_used_at,
        ]),
      );
    });
  keys
    .command('revoke <id-or-name>')
    .description('revoke an API key')
    .action(async (id: string) => {
      // A whole key pasted here is reduced to its id: the secret never travels in a URL.
      const ref = apiKeyIdOf(id) ?? id;
      const k = await new ApiClient().request<ApiKeyView>('DELETE', `/api/keys/${encodeURIComponent(ref)}`);
      process.stdout.write(`revoked API key ${k.name} (${k.id})\n`);
    });
  keys
    .command('rotate-seal')
    .description('re-seal every stored secret under a new sealing key (runs locally, next to the key file)')
    .option('-c, --config <file>', 'YAML config file')
    .action(async (o: { config?: string }) => rotateSeal(o));

  const token = program.command('token').description("Warden's short-lived tokens");
  token
    .command('create')
    .description('mint a short-lived token for the current credential and print it')
    .option(
      '--ttl <duration>',
      'lifetime, e.g. 15m (capped by identity.token_max_ttl and the current credential)',
    )
    .option('--scope <entries>', 'narrow the scope (comma-separated)', commaList, [])
    .option('--json', 'print JSON')
    .action(async (o: { ttl?: string; scope: string[]; json?: boolean }) => {
      const res = await new ApiClient().request<{ token: string; jti: string; expires_at: string }>(
        'POST',
        '/api/tokens',
        {
          ...(o.ttl ? { ttl: o.ttl } : {}),
          ...(o.scope.length > 0 ? { scope: o.scope } : {}),
        },
      );
      if (o.json) return printJson(res);
      process.stderr.write(`token ${res.jti}, expires ${res.expires_at}:\n`);
      process.stdout.write(`${res.token}\n`);
    });
  token
    .command('delegate')
    .description(
      'exchange WARDEN_TOKEN (or your login) for a narrower, shorter-lived token held by a child (RFC 8693); prints the token',
    )
    .requiredOption('--to <child-name>', "the child's name (its identity in every record)")
    .option(
      '--actor-token-file <file>',
      "the child's own credential (e.g. its API key), proving it is <child-name>",
    )
    .option(
      '--connections <names>',
      'connections the child may reach (comma-separated, `prefix*` allowed)',
      commaList,
      [],
    )
    .option(
      '--ttl <duration>',
      "lifetime, e.g. 10m (never past WARDEN_TOKEN's expiry; default identity.token_ttl)",
    )
    .option('--env', 'print WARDEN_TOKEN=… for a child process environment')
    .option(
      '--parent-session <id>',
      'the Warden session this delegation happens in (default: $WARDEN_SESSION); the child is traced under it',
    )
    .option('--json', 'print the OAuth response as JSON')
    .action(
      async (o: {
        to: string;
        actorTokenFile?: string;
        connections: string[];
        ttl?: string;
        parentSession?: string;
        env?: boolean;
        json?: boolean;
      }) => {
        const client = new ApiClient();
        const subject = client.credential().token;
        const form = new URLSearchParams({
          grant_type: TOKEN_EXCHANGE_GRANT,
          subject_token: subject,
          subject_token_type: looksLikeApiKey(subject) ? ACCESS_TOKEN_TYPE : JWT_TOKEN_TYPE,
          requested_token_type: JWT_TOKEN_TYPE,
        });
        if (o.actorTokenFile) {
          let actorToken: string;
          try {
            actorToken = readFileSync(o.actorTokenFile, 'utf8').trim();
          } catch (err) {
            throw new CliError(`cannot read --actor-token-file: ${(err as Error).message}`, 2);
          }
          form.set('actor_token', actorToken);
          form.set('actor_token_type', looksLikeApiKey(actorToken) ? ACCESS_TOKEN_TYPE : JWT_TOKEN_TYPE);
        }
        form.set('actor', o.to);
        if (o.connections.length > 0) form.set('scope', o.connections.join(' '));
        if (o.ttl) form.set('ttl', o.ttl);
        const parentSession = o.parentSession ?? (process.env.WARDEN_SESSION || undefined);
        const res = await exchangeToken(client.baseUrl, form, parentSession);
        if (o.json) return printJson(res);
        const exp = new Date(Date.now() + res.expires_in * 1000).toISOString();
        process.stderr.write(`token for ${o.to} (scope ${res.scope || '-'}), expires ${exp}:\n`);
        process.stdout.write(o.env ? `WARDEN_TOKEN=${res.access_token}\n` : `${res.access_token}\n`);
      },
    );
  token
    .command('ls')
    .description('list live tokens (your own; admins: --subject)')
    .option('--subject <subject>', 'whose tokens (admins)')
    .option('--all', 'include expired and revoked tokens')
    .option('--json', 'print JSON')
    .action(async (o: { subject?: string; all?: boolean; json?: boolean }) => {
      const { tokens } = await new ApiClient().get<{ tokens: TokenView[] }>(
        `/api/tokens${query({ subject: o.subject, all: o.all })}`,
      );
      if (o.json) return printJson(tokens);
      printTable(
        ['JTI', 'SUBJECT', 'KIND', 'ROOT', 'PARENT', 'PARENT SESSION', 'ISSUED', 'EXPIRES', 'REVOKED'],
        tokens.map((t) => [
          t.jti,
          t.subject,
          t.kind,
          t.root_subject,
          t.parent_jti,
          t.parent_session_id,
          t.issued_at,
          t.expires_at,
          t.revoked_at,
        ]),
      );
    });
  token
    .command('revoke <jti-or-token>')
    .description('revoke a token and every token minted from it')
    .action(async (jti: string) => {
      const res = await new ApiClient().request<{ revoked: string[] }>(
        'DELETE',
        `/api/tokens/${encodeURIComponent(jtiOf(jti))}`,
      );
      process.stdout.write(
        `revoked ${res.revoked.length} token(s): ${res.revoked.join(', ') || '(already revoked)'}\n`,
      );
    });
}
