// Draws a delegation trace (`warden audit trace`) as a tree: the root identity, then each
// credential with its sessions (and their commands in time order) and the delegates below it.
import type { Trace, TraceNode, TraceSession } from '../audit/trace.js';
import { oneLine } from './output.js';

const clock = (iso: string | null): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '…');

function nodeLine(n: TraceNode): string {
  const who =
    n.chain.length > 0
      ? `${n.subject} (${n.holder_kind}; chain ${n.chain.join(' → ')})`
      : `${n.subject} (${n.holder_kind})`;
  const what = n.kind === 'api_key' ? `API key ${n.id}` : `token ${n.id}`;
  const facts = [
    n.kind === 'token' ? `scope ${n.scope.join(' ') || '-'}` : null,
    n.expires_at ? `expires ${clock(n.expires_at)}` : null,
    n.revoked_at ? `REVOKED ${clock(n.revoked_at)}` : null,
    n.minted_from ? `from ${n.minted_from}` : null,
    n.parent_session_id ? `minted in session ${n.parent_session_id}` : null,
  ].filter(Boolean);
  return `${what}  ${who}${facts.length > 0 ? `  [${facts.join(', ')}]` : ''}`;
}

function sessionLines(s: TraceSession): string[] {
  const end = s.ended_at ? `→ ${clock(s.ended_at)} ${s.status}` : `${s.status}`;
  const why = s.end_reason && s.status !== 'closed' ? ` (${oneLine(s.end_reason, 80)})` : '';
  const extra = [
    s.parent_session_id ? `parent ${s.parent_session_id}` : null,
    s.traceparent ? `trace ${s.traceparent.split('-')[1]}` : null,
  ].filter(Boolean);
  const out = [
    `session ${s.id}  ${s.connection} (${s.protocol})  ${clock(s.started_at)} ${end}${why}${extra.length > 0 ? `  [${extra.join(', ')}]` : ''}`,
  ];
  for (const c of s.commands) {
    const result = c.error ? ` ✗ ${oneLine(c.error, 60)}` : c.rows !== null ? ` (${c.rows} rows)` : '';
    out.push(`  ${clock(c.time)}  ${c.decision.padEnd(6)} ${oneLine(c.text, 100)}${result}`);
  }
  if (s.commands_truncated) out.push(`  … more commands: warden sessions show ${s.id}`);
  return out;
}

/** The trace as lines of text, box-drawn. */
export function renderTrace(t: Trace): string {
  const lines = [`${oneLine(t.root_subject, 100)} (root)`];
  const walk = (n: TraceNode, prefix: string, last: boolean) => {
    lines.push(`${prefix}${last ? '└─ ' : '├─ '}${nodeLine(n)}`);
    const inner = prefix + (last ? '   ' : '│  ');
    const items: Array<{ session?: TraceSession; node?: TraceNode }> = [
      ...n.sessions.map((session) => ({ session })),
      ...n.children.map((node) => ({ node })),
    ];
    items.forEach((item, i) => {
      const isLast = i === items.length - 1;
      if (item.node) {
        walk(item.node, inner, isLast);
      } else if (item.session) {
        const [head, ...rest] = sessionLines(item.session);
        lines.push(`${inner}${isLast ? '└─ ' : '├─ '}${head}`);
        for (const r of rest) lines.push(`${inner}${isLast ? '   ' : '│  '}${r}`);
      }
    });
  };
  walk(t.root, '', true);
  if (t.truncated) lines.push('(the trace is larger than shown: some credentials or sessions are left out)');
  return `${lines.join('\n')}\n`;
}
