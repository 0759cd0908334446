// `warden sessions ls|show`: recorded sessions (your own, or everyone's for auditors).
import type { Command } from 'commander';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { ApiClient, query } from '../client.js';
import { printJson, printTable } from '../output.js';

export function sessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('recorded sessions');
  sessions
    .command('ls')
    .description('list sessions, newest first (your own unless you are an auditor)')
    .option('--subject <subject>')
    .option('--connection <name>')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { subject?: string; connection?: string; limit: string; json?: boolean }) => {
      const { sessions: rows } = await new ApiClient().get<{ sessions: SessionView[] }>(
        `/api/sessions${query({ subject: o.subject, connection: o.connection, limit: o.limit })}`,
      );
      if (o.json) return printJson(rows);
      printTable(
        ['ID', 'SUBJECT', 'ROOT', 'CONNECTION', 'PROTOCOL', 'STATUS', 'STARTED', 'ENDED', 'END REASON'],
        rows.map((s) => [
          s.id,
          s.subject,
          s.root_subject,
          s.connection,
          s.protocol,
          // An orphan allowed to run on is still active, but says so.
          s.orphaned_at && s.status === 'active' ? 'active (orphaned)' : s.status,
          s.started_at,
          s.ended_at,
          s.end_reason,
        ]),
      );
    });
  sessions
    .command('show <id>')
    .description('show one session, then its recorded statements')
    .option('--json', 'print JSON (the session, with its events)')
    .action(async (id: string, o: { json?: boolean }) => {
      const api = new ApiClient();
      const path = `/api/sessions/${encodeURIComponent(id)}`;
      const session = await api.get<SessionView>(path);
      const { events } = await api.get<{ events: SessionEvent[] }>(`${path}/events`);
      if (o.json) return printJson({ ...session, events });
      printJson(session);
      printTable(
        ['SEQ', 'TIME', 'DURATION_MS', 'DECISION', 'ROWS', 'TEXT'],
        events.map((e) => [
          String(e.seq),
          e.time,
          e.duration_ms === null ? null : String(e.duration_ms),
          e.error ? `${e.decision} (${e.error})` : e.decision,
          e.rows === null ? null : String(e.rows),
          e.text.replace(/\s+/g, ' '),
        ]),
      );
    });
  sessions
    .command('kill <id>')
    .description('end a live session (admins): the client gets a protocol-native message')
    .option('--reason <text>', 'shown to the client and kept in the audit trail')
    .action(async (id: string, o: { reason?: string }) => {
      const res = await new ApiClient().request<{ id: string; result: string }>(
        'POST',
        `/api/sessions/${encodeURIComponent(id)}/kill`,
        o.reason ? { reason: o.reason } : {},
      );
      process.stdout.write(
        res.result === 'killed'
          ? `killed session ${res.id}\n`
          : `asked the gateway carrying session ${res.id} to end it\n`,
      );
    });
}
