// `warden sessions ls|show`: recorded sessions (your own, or everyone's for auditors).
import type { Command } from 'commander';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { ApiClient, query } from '../client.js';
import { oneLine, printJson, printTable } from '../output.js';

interface ListOptions {
  subject?: string;
  root?: string;
  agent?: string;
  connection?: string;
  protocol?: string;
  status?: string;
  since?: string;
  until?: string;
  flagged?: string;
  search?: string;
  cursor?: string;
  limit: string;
  json?: boolean;
}

export function sessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('recorded sessions');
  sessions
    .command('ls')
    .description('list sessions, newest first (your own unless you are an auditor)')
    .option('--subject <subject>', 'sessions this subject ran')
    .option('--root <subject>', 'sessions under a delegation chain rooted at this subject')
    .option('--agent <name>', 'sessions with this name in their actor chain (exact)')
    .option('--connection <name>')
    .option('--protocol <protocol>')
    .option('--status <status>', 'active, closed, killed, lost …')
    .option('--since <time>', 'started at or after: an ISO time or an age like 15m')
    .option('--until <time>', 'started at or before: an ISO time or an age like 15m')
    .option('--flagged <kind>', 'only sessions with a denied or held statement: denied | held')
    .option('--search <text>', 'every word must occur in a recorded statement (any case)')
    .option('--cursor <cursor>', 'the next page: the cursor a previous listing printed')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (o: ListOptions) => {
      const { sessions: rows, next } = await new ApiClient().get<{
        sessions: SessionView[];
        next: string | null;
      }>(
        `/api/sessions${query({
          subject: o.subject,
          root: o.root,
          agent: o.agent,
          connection: o.connection,
          protocol: o.protocol,
          status: o.status,
          since: o.since,
          until: o.until,
          flagged: o.flagged,
          q: o.search,
          cursor: o.cursor,
          limit: o.limit,
        })}`,
      );
      // On stderr, so stdout stays the listing (JSON or table) a script parses.
      if (next) process.stderr.write(`more: warden sessions ls --cursor ${next} (same filters)\n`);
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
          oneLine(e.text, Number.POSITIVE_INFINITY),
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
