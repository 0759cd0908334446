// `warden subjects ls|disable|enable`: disabling a person or service account everywhere at once
// (its credentials refused, its tokens revoked, its live sessions ended).
import type { Command } from 'commander';
import type { DisabledSubjectView } from '../../store/disabled-subjects.js';
import { ApiClient } from '../client.js';
import { printJson, printTable } from '../output.js';

const path = (subject: string, action: string) => `/api/subjects/${encodeURIComponent(subject)}/${action}`;

export function subjectCommands(program: Command): void {
  const subjects = program.command('subjects').description('people and service accounts (disable, enable)');
  subjects
    .command('ls')
    .description('list disabled people and service accounts (auditors)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { disabled } = await new ApiClient().get<{ disabled: DisabledSubjectView[] }>(
        '/api/subjects/disabled',
      );
      if (o.json) return printJson(disabled);
      printTable(
        ['SUBJECT', 'DISABLED', 'BY', 'REASON'],
        disabled.map((d) => [d.subject, d.disabled_at, d.disabled_by, d.reason]),
      );
    });
  subjects
    .command('disable <subject>')
    .description(
      'disable a person or service account (admins): its credentials and every delegate acting for it are refused, its tokens revoked, its live sessions ended',
    )
    .requiredOption('--reason <text>', 'kept in the audit trail and shown to the refused caller')
    .action(async (subject: string, o: { reason: string }) => {
      const res = await new ApiClient().request<{ already_disabled: boolean; tokens_revoked: string[] }>(
        'POST',
        path(subject, 'disable'),
        { reason: o.reason },
      );
      process.stdout.write(
        `${res.already_disabled ? `${subject} was already disabled` : `disabled ${subject}`}; revoked ${res.tokens_revoked.length} token(s); its live sessions end within seconds\n`,
      );
    });
  subjects
    .command('enable <subject>')
    .description('enable a disabled person or service account again (revoked tokens stay revoked)')
    .action(async (subject: string) => {
      await new ApiClient().request('POST', path(subject, 'enable'), {});
      process.stdout.write(`enabled ${subject}\n`);
    });
}
