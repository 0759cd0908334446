// `warden access request|ls|show|grant|deny|revoke|cancel`: just-in-time access to connections
// with `access: jit`, asked for by a caller and decided by approvers.
import type { Command } from 'commander';
import { formatDuration } from '../../config/duration.js';
import type { GrantView } from '../../store/grants.js';
import { ApiClient, query } from '../client.js';
import { oneLine, printJson, printTable } from '../output.js';

const path = (id: string, action = '') =>
  `/api/access/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;

/** One line saying where a request stands now. */
function stateLine(g: GrantView): string {
  if (g.status === 'granted')
    return `access grant ${g.id}: ${g.subject} may connect to ${g.connection} until ${g.expires_at}\n`;
  if (g.status === 'pending') {
    return `access request ${g.id}: pending; an approver grants it with "warden access grant ${g.id}"\n`;
  }
  return `access request ${g.id}: ${g.status}\n`;
}

export function accessCommands(program: Command): void {
  const access = program
    .command('access')
    .description('just-in-time access to connections: requests, grants, revocations');
  access
    .command('request <connection>')
    .description('ask for access to a just-in-time connection, for a while')
    .requiredOption('--for <duration>', 'how long (e.g. 30m, 2h)')
    .requiredOption('--reason <text>', 'why: shown to approvers and kept in the audit trail')
    .action(async (connection: string, o: { for: string; reason: string }) => {
      const g = await new ApiClient().request<GrantView>('POST', '/api/access/requests', {
        connection,
        for: o.for,
        reason: o.reason,
      });
      process.stdout.write(stateLine(g));
    });
  access
    .command('ls')
    .description('list access requests and grants, newest first')
    .option('--pending', 'only requests waiting for an approver')
    .option('--status <status>', 'pending, granted, denied, expired, revoked or cancelled (comma-separated)')
    .option('--connection <name>')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        pending?: boolean;
        status?: string;
        connection?: string;
        limit: string;
        json?: boolean;
      }) => {
        const { grants } = await new ApiClient().get<{ grants: GrantView[] }>(
          `/api/access${query({ status: o.pending ? 'pending' : o.status, connection: o.connection, limit: o.limit })}`,
        );
        if (o.json) return printJson(grants);
        printTable(
          ['ID', 'STATUS', 'CONNECTION', 'SUBJECT', 'FOR', 'EXPIRES', 'DECIDED BY', 'REASON'],
          grants.map((g) => [
            g.id,
            g.status,
            g.connection,
            g.subject,
            formatDuration(g.duration_ms),
            g.expires_at,
            g.revoked_by ?? g.decided_by,
            oneLine(g.reason, 60),
          ]),
        );
      },
    );
  access
    .command('show <id>')
    .description('show one access request or grant')
    .action(async (id: string) => printJson(await new ApiClient().get<GrantView>(path(id))));
  access
    .command('grant <id>')
    .description('grant a pending request from now on (approvers; never your own)')
    .option('--reason <text>')
    .option('--for <duration>', 'grant less time than was asked for')
    .action(async (id: string, o: { reason?: string; for?: string }) => {
      const g = await new ApiClient().request<GrantView>('POST', path(id, 'grant'), {
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.for ? { for: o.for } : {}),
      });
      process.stdout.write(stateLine(g));
    });
  const verdicts = {
    deny: 'deny a pending request (approvers; never your own)',
    revoke: 'revoke a grant: new connections are refused, live sessions end after the grace period',
    cancel: 'withdraw your own pending request',
  } as const;
  for (const [verdict, description] of Object.entries(verdicts)) {
    const command = access.command(`${verdict} <id>`).description(description);
    if (verdict !== 'cancel')
      command.option('--reason <text>', 'kept with the request and in the audit trail');
    command.action(async (id: string, o: { reason?: string }) => {
      const g = await new ApiClient().request<GrantView>(
        'POST',
        path(id, verdict),
        o.reason ? { reason: o.reason } : {},
      );
      process.stdout.write(stateLine(g));
    });
  }
}
