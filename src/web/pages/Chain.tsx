// An agent chain: the delegation tree from the root identity's credential through every
// agent it handed work to, each node with its sessions. Opens on the path to what was asked.
import { useState } from 'react';
import { Badge, ErrorNote, Link, Loading, shortId, Time } from '../components/ui.js';
import { useApi } from '../hooks.js';
import type { Trace, TraceNode } from '../types.js';

/** Whether `node` or one below it is the credential or holds the session that was asked for. */
function leadsTo(node: TraceNode, id: string): boolean {
  if (node.id === id || node.sessions.some((s) => s.id === id)) return true;
  return node.children.some((c) => leadsTo(c, id));
}

export function ChainPage({ id }: { id: string }) {
  const trace = useApi<Trace>(`/api/audit/trace/${encodeURIComponent(id)}`);
  if (trace.error) return <ErrorNote error={trace.error} title="This chain cannot be shown" />;
  if (!trace.data) return <Loading what="the agent chain" />;
  const t = trace.data;
  return (
    <section>
      <h1>
        Agent chain of <span data-testid="root-subject">{t.root_subject}</span>
      </h1>
      <p className="muted small">
        From the root credential through every delegate. Asked for {t.from.kind}{' '}
        <span className="mono">{shortId(t.from.id)}</span>.
        {t.truncated ? ' The tree is larger than shown (bounded at 500 credentials, 1,000 sessions).' : ''}
      </p>
      <ul className="tree root">
        <Node node={t.root} target={t.from.id} depth={0} />
      </ul>
    </section>
  );
}

function Node({ node, target, depth }: { node: TraceNode; target: string; depth: number }) {
  const [open, setOpen] = useState(depth === 0 || leadsTo(node, target));
  const count = node.children.length + node.sessions.length;
  return (
    <li data-node={node.subject} className="node">
      <div className="node-head">
        <button
          type="button"
          className="toggle"
          aria-expanded={count ? open : undefined}
          aria-label={`${open ? 'collapse' : 'expand'} ${node.subject}`}
          disabled={count === 0}
          onClick={() => setOpen(!open)}
        >
          {count === 0 ? '·' : open ? '▾' : '▸'}
        </button>
        <strong>{node.subject}</strong>
        <span className="muted small">{node.holder_kind}</span>
        <span className="muted small">
          {node.kind === 'api_key' ? 'API key' : 'token'} <span className="mono">{shortId(node.id)}</span>
        </span>
        {node.minted_from ? <span className="muted small">from {node.minted_from}</span> : null}
        {node.revoked_at ? <Badge value="revoked" /> : null}
        <span className="muted small">
          scope {node.scope.join(', ') || '—'} · issued <Time at={node.issued_at} />
          {node.expires_at ? (
            <>
              {' '}
              · expires <Time at={node.expires_at} />
            </>
          ) : null}
        </span>
        <span className="muted small">
          {node.sessions.length} session{node.sessions.length === 1 ? '' : 's'}, {node.children.length}{' '}
          delegate
          {node.children.length === 1 ? '' : 's'}
        </span>
      </div>
      {open ? (
        <div className="node-body">
          {node.sessions.length ? (
            <ul className="node-sessions">
              {node.sessions.map((s) => (
                <li key={s.id} className={s.id === target ? 'target' : ''}>
                  <Link to={`/sessions/${s.id}`}>
                    <span className="mono">{shortId(s.id)}</span>
                  </Link>{' '}
                  {s.connection} <Badge value={s.status} /> <Time at={s.started_at} />
                  <span className="muted small"> {s.commands.length} commands</span>
                  {s.commands.length ? (
                    <ol className="small commands">
                      {s.commands.slice(0, 5).map((c) => (
                        <li key={c.seq}>
                          <Badge value={c.decision} /> <code>{c.text}</code>
                        </li>
                      ))}
                      {s.commands.length > 5 ? (
                        <li className="muted">… {s.commands.length - 5} more</li>
                      ) : null}
                    </ol>
                  ) : null}
                </li>
              ))}
            </ul>
          ) : null}
          {node.children.length ? (
            <ul className="tree">
              {node.children.map((c) => (
                <Node key={c.id} node={c} target={target} depth={depth + 1} />
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </li>
  );
}
