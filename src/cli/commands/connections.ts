// `warden connections add|ls|show|test|rm`: manage targets through the API. Passwords are read
// from stdin or an environment variable, never from argv (where `ps` would show them).
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { type ConnectionView, PROTOCOLS, TLS_MODES } from '../../config/connection.js';
import { ApiClient, CliError } from '../client.js';
import { commaList } from '../options.js';
import { printJson, printTable } from '../output.js';

/** What POST /api/connections/:name/test answers. */
type ConnectionTest = { name: string; latency_ms: number } & (
  | { ok: true; server_version: string }
  | { ok: false; error: string }
);

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

interface AddOptions {
  protocol: string;
  host: string;
  port: string;
  database?: string;
  user?: string;
  passwordStdin?: boolean;
  passwordEnv?: string;
  tls?: string;
  ca?: string;
  tag: string[];
  access?: string;
  policyDefault?: 'allow' | 'deny';
  pool?: 'none' | 'session';
  idleTimeout?: string;
  maxDuration?: string;
  endWithParent?: 'true' | 'false';
  description?: string;
  json?: boolean;
}

export function connectionCommands(program: Command): void {
  const cmd = program
    .command('connections')
    .alias('conn')
    .description('manage connections (targets Warden reaches)');

  cmd
    .command('add <name>')
    .description('create a connection; its password is sealed by the gateway and never shown again')
    .addOption(new Option('--protocol <protocol>', 'wire protocol').choices(PROTOCOLS).makeOptionMandatory())
    .requiredOption('--host <host>', 'target host')
    .requiredOption('--port <port>', 'target port')
    .option('--database <name>', 'database (for database protocols)')
    .option('--user <user>', 'user Warden logs in as')
    .option('--password-stdin', 'read the target password from standard input')
    .option('--password-env <var>', 'read the target password from this environment variable')
    .addOption(new Option('--tls <mode>', 'TLS to the target').choices(TLS_MODES))
    .option('--ca <file>', 'CA bundle (PEM) for --tls verify-full')
    .option('--tag <tag>', 'tag (repeat or comma-separate)', commaList, [])
    .addOption(new Option('--access <mode>', 'open, or jit (needs an access grant)').choices(['open', 'jit']))
    .addOption(
      new Option(
        '--policy-default <action>',
        'what happens to commands no rule decides (default: the global policy.default)',
      ).choices(['allow', 'deny']),
    )
    .addOption(
      new Option(
        '--pool <mode>',
        'session: reuse server connections across sessions, reset with DISCARD ALL (PostgreSQL)',
      ).choices(['none', 'session']),
    )
    .option(
      '--idle-timeout <duration>',
      'end sessions idle this long, e.g. 15m, or off (default: sessions.idle_timeout)',
    )
    .option(
      '--max-duration <duration>',
      'end sessions this old, e.g. 8h, or off (default: sessions.max_duration)',
    )
    .addOption(
      new Option(
        '--end-with-parent <bool>',
        'end a session when the session its token was minted in ends (default: sessions.end_with_parent)',
      ).choices(['true', 'false']),
    )
    .option('--description <text>', 'free text')
    .option('--json', 'print the created connection as JSON')
    .action(async (name: string, o: AddOptions) => {
      const port = Number(o.port);
      if (!Number.isInteger(port)) throw new CliError(`--port: expected a number, got "${o.port}"`, 2);
      if (o.passwordStdin && o.passwordEnv)
        throw new CliError('use one of --password-stdin and --password-env', 2);
      let password: string | undefined;
      if (o.passwordStdin) password = await readStdin();
      if (o.passwordEnv) {
        password = process.env[o.passwordEnv];
        if (!password) throw new CliError(`--password-env: ${o.passwordEnv} is not set`, 2);
      }
      const body = {
        name,
        protocol: o.protocol,
        target: {
          host: o.host,
          port,
          ...(o.database ? { database: o.database } : {}),
          tls: { mode: o.tls ?? 'disable', ...(o.ca ? { ca: readFileSync(o.ca, 'utf8') } : {}) },
        },
        access: o.access ?? 'open',
        ...(o.policyDefault ? { policy_default: o.policyDefault } : {}),
        ...(o.pool ? { pool: o.pool } : {}),
        ...(o.idleTimeout || o.maxDuration || o.endWithParent
          ? {
              sessions: {
                ...(o.idleTimeout ? { idle_timeout: o.idleTimeout } : {}),
                ...(o.maxDuration ? { max_duration: o.maxDuration } : {}),
                ...(o.endWithParent ? { end_with_parent: o.endWithParent === 'true' } : {}),
              },
            }
          : {}),
        tags: o.tag,
        description: o.description ?? '',
        credentials: { ...(o.user ? { user: o.user } : {}), ...(password ? { password } : {}) },
      };
      const created = await new ApiClient().request<ConnectionView>('POST', '/api/connections', body);
      if (o.json) printJson(created);
      else
        process.stdout.write(
          `created connection ${created.name} (${created.protocol} ${created.target.host}:${created.target.port})\n`,
        );
    });

  cmd
    .command('ls')
    .description('list connections')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { connections } = await new ApiClient().get<{ connections: ConnectionView[] }>(
        '/api/connections',
      );
      if (o.json) return printJson(connections);
      printTable(
        ['NAME', 'PROTOCOL', 'TARGET', 'USER', 'SECRET', 'ACCESS', 'TAGS', 'SOURCE'],
        connections.map((c) => [
          c.name,
          c.protocol,
          `${c.target.host}:${c.target.port}${c.target.database ? `/${c.target.database}` : ''}`,
          c.credentials.user,
          c.credentials.has_password ? 'sealed' : 'none',
          c.access,
          c.tags.join(','),
          c.source,
        ]),
      );
    });

  cmd
    .command('show <name>')
    .description('show one connection (never its secret)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const c = await new ApiClient().get<ConnectionView>(`/api/connections/${encodeURIComponent(name)}`);
      if (o.json) return printJson(c);
      const rows: Array<[string, string]> = [
        ['name', c.name],
        ['protocol', c.protocol],
        ['target', `${c.target.host}:${c.target.port}`],
        ['database', c.target.database ?? '-'],
        ['tls', c.target.tls.mode],
        ['user', c.credentials.user ?? '-'],
        ['password', c.credentials.has_password ? '(sealed)' : '(none)'],
        ['access', c.access],
        ['policy', `${c.policy_default ?? 'global default'}`],
        ['pool', c.pool],
        ['sessions', sessionLimitsText(c.sessions)],
        ['tags', c.tags.join(', ') || '-'],
        ['description', c.description || '-'],
        ['source', c.source],
        ['created', c.created_at],
        ['updated', c.updated_at],
      ];
      for (const [k, v] of rows) process.stdout.write(`${`${k}:`.padEnd(13)}${v}\n`);
    });

  cmd
    .command('test <name>')
    .description("log in to the connection's target as a session would; exit 1 if that fails")
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const r = await new ApiClient().request<ConnectionTest>(
        'POST',
        `/api/connections/${encodeURIComponent(name)}/test`,
      );
      if (o.json) {
        printJson(r);
        if (!r.ok) process.exitCode = 1;
        return;
      }
      if (!r.ok) throw new CliError(`connection ${r.name} failed after ${r.latency_ms} ms: ${r.error}`);
      process.stdout.write(
        `ok: connection ${r.name} answered in ${r.latency_ms} ms, server version ${r.server_version}\n`,
      );
    });

  cmd
    .command('rm <name>')
    .description('remove a connection')
    .action(async (name: string) => {
      await new ApiClient().request('DELETE', `/api/connections/${encodeURIComponent(name)}`);
      process.stdout.write(`removed connection ${name}\n`);
    });
}

/** A connection's session limit overrides in one line, e.g. `idle_timeout 15m, end_with_parent false`. */
function sessionLimitsText(s: ConnectionView['sessions']): string {
  const parts = Object.entries(s ?? {}).map(([k, v]) => `${k} ${String(v)}`);
  return parts.length > 0 ? parts.join(', ') : 'global limits';
}
