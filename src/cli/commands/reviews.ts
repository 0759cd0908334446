// `warden reviews ls|show|approve|deny|watch`: commands held for approval, deciding on them, and
// following them live.
import type { Command } from 'commander';
import type { PreapprovalView } from '../../store/preapprovals.js';
import type { ReviewView } from '../../store/reviews.js';
import { ApiClient, CliError, query } from '../client.js';
import { oneLine, printJson, printTable } from '../output.js';

const approvalsOf = (r: ReviewView): string => `${r.approvals.length}/${r.approvals_required}`;

/** When the review last changed: its decision, else its latest approval, else its creation. */
const changedAt = (r: ReviewView): string => r.decided_at ?? r.approvals.at(-1)?.at ?? r.created_at;

/** One line per review state: time, id, status, approvals, requester, command. */
function watchLine(r: ReviewView): string {
  const command = oneLine(r.command, 120);
  return `${changedAt(r)}  ${r.id}  ${r.status.padEnd(9)}  ${approvalsOf(r)}  ${r.requester.subject}  ${command}\n`;
}

export function reviewCommands(program: Command): void {
  const reviews = program.command('reviews').description('commands held for approval');
  reviews
    .command('ls')
    .description('list reviews, newest first')
    .option(
      '--pending',
      'only those waiting for approvers (pending, and break-glass ones to review after the fact)',
    )
    .option('--status <status>', 'pending, approved, denied, expired or cancelled')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { pending?: boolean; status?: string; limit: string; json?: boolean }) => {
      const status = o.pending ? 'pending,break-glass' : o.status;
      const { reviews: rows } = await new ApiClient().get<{ reviews: ReviewView[] }>(
        `/api/reviews${query({ status, limit: o.limit })}`,
      );
      if (o.json) return printJson(rows);
      printTable(
        ['ID', 'STATUS', 'APPROVALS', 'REQUESTER', 'ROOT', 'CONNECTION', 'RULE', 'CREATED', 'COMMAND'],
        rows.map((r) => [
          r.id,
          r.status,
          approvalsOf(r),
          r.requester.subject,
          r.requester.root,
          r.connection,
          r.rule,
          r.created_at,
          oneLine(r.command, 80),
        ]),
      );
    });
  reviews
    .command('show <id>')
    .description('show one review: the command, who asked, the rule, approvals so far')
    .action(async (id: string) => {
      printJson(await new ApiClient().get<ReviewView>(`/api/reviews/${encodeURIComponent(id)}`));
    });
  for (const verdict of ['approve', 'deny'] as const) {
    const command = reviews
      .command(`${verdict} <id>`)
      .description(
        verdict === 'approve'
          ? 'approve a held command: it runs once the rule has its number of approvals'
          : 'deny a held command: its client gets an error naming you and your reason',
      )
      .option('--reason <text>', 'kept in the review and the audit trail; shown to the client on deny');
    if (verdict === 'approve') {
      command.option(
        '--break-glass',
        'your own command: run it now (needs --reason); approvers review it after the fact',
      );
    }
    command.action(async (id: string, o: { reason?: string; breakGlass?: boolean }) => {
      if (o.breakGlass && !o.reason) throw new CliError('--break-glass needs --reason', 2);
      const action = o.breakGlass ? 'break-glass' : verdict;
      const r = await new ApiClient().request<ReviewView>(
        'POST',
        `/api/reviews/${encodeURIComponent(id)}/${action}`,
        o.reason ? { reason: o.reason } : {},
      );
      const state = r.status === 'pending' ? `pending, ${approvalsOf(r)} approvals` : r.status;
      process.stdout.write(`review ${r.id}: ${state}\n`);
    });
  }
  reviews
    .command('watch')
    .description('print a line each time a review you may see is created or changes, until Ctrl-C')
    .option('--all', 'start with every review (newest 200), not only the pending ones')
    .action(async (o: { all?: boolean }) => {
      const path = `/api/reviews/stream${query({ status: o.all ? 'all' : undefined })}`;
      for await (const e of new ApiClient().events(path)) {
        if (e.event === 'snapshot') {
          // Newest first from the API; printed oldest first, as the changes that follow.
          const { reviews: rows } = JSON.parse(e.data) as { reviews: ReviewView[] };
          for (const r of rows.reverse()) process.stdout.write(watchLine(r));
        } else if (e.event === 'review') {
          process.stdout.write(watchLine(JSON.parse(e.data) as ReviewView));
        }
      }
      throw new CliError('the review stream ended (the gateway stopped?): run `warden reviews watch` again');
    });
  reviews
    .command('preapprove <id>')
    .description("pre-approve a review's statement shape on its connection: later runs stop asking")
    .option('--for <duration>', 'how long (e.g. 8h, 7d)', '8h')
    .option('--group <group>', "everyone in this group (default: the review's requester and its agents)")
    .option('--reason <text>')
    .action(async (id: string, o: { for: string; group?: string; reason?: string }) => {
      const p = await new ApiClient().request<PreapprovalView>(
        'POST',
        `/api/reviews/${encodeURIComponent(id)}/preapprove`,
        { for: o.for, ...(o.group ? { group: o.group } : {}), ...(o.reason ? { reason: o.reason } : {}) },
      );
      process.stdout.write(
        `pre-approval ${p.id}: ${p.subject ?? `group ${p.group}`} may run this on ${p.connection} until ${p.expires_at}\n`,
      );
    });

  const pre = program.command('preapprovals').description('statement shapes approved ahead of time');
  pre
    .command('ls')
    .description('list pre-approvals in force')
    .option('--all', 'also expired and revoked ones')
    .option('--json', 'print JSON')
    .action(async (o: { all?: boolean; json?: boolean }) => {
      const { preapprovals: rows } = await new ApiClient().get<{ preapprovals: PreapprovalView[] }>(
        `/api/preapprovals${query({ all: o.all ? 'true' : undefined })}`,
      );
      if (o.json) return printJson(rows);
      printTable(
        ['ID', 'CONNECTION', 'FOR', 'BY', 'EXPIRES', 'REVOKED', 'STATEMENT'],
        rows.map((p) => [
          p.id,
          p.connection,
          p.subject ?? `group:${p.group}`,
          p.created_by,
          p.expires_at,
          p.revoked_at,
          oneLine(p.fingerprint, 80),
        ]),
      );
    });
  pre
    .command('revoke <id>')
    .description('revoke a pre-approval: the statements it covered ask again')
    .action(async (id: string) => {
      const p = await new ApiClient().request<PreapprovalView>(
        'POST',
        `/api/preapprovals/${encodeURIComponent(id)}/revoke`,
        {},
      );
      process.stdout.write(`pre-approval ${p.id}: revoked at ${p.revoked_at}\n`);
    });
}
