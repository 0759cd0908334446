// The reviews inbox: held commands waiting for a decision, live. Approvers see what is theirs
// to decide, with the command, the facts it was judged on and the rules that held it.
import { useEffect, useState } from 'react';
import { api, stream } from '../api.js';
import { Badge, chainText, ErrorNote, Link, Loading, shortId, Time } from '../components/ui.js';
import { useAction } from '../hooks.js';
import type { Review } from '../types.js';

type Facts = Record<string, unknown> | null;

const AWAITING: string[] = ['pending', 'break-glass'];

export function ReviewsPage() {
  const [reviews, setReviews] = useState<Review[] | null>(null);
  const [state, setState] = useState<{ up: boolean; error?: unknown }>({ up: false });
  const [showAll, setShowAll] = useState(false);

  useEffect(() => {
    const ctl = new AbortController();
    setReviews(null);
    void stream(
      `/api/reviews/stream${showAll ? '?status=all' : ''}`,
      {
        onEvent: (event, data) => {
          if (event === 'snapshot') setReviews((data as { reviews: Review[] }).reviews);
          else if (event === 'review') {
            const r = data as Review;
            setReviews((prev) => {
              const rest = (prev ?? []).filter((p) => p.id !== r.id);
              // The inbox drops what was decided; the full list keeps it, updated. Break-glass runs
              // stay in the inbox: approvers review them after the fact (the server's AWAITING).
              if (!showAll && !AWAITING.includes(r.status)) return rest;
              return [r, ...rest].sort((a, b) => b.created_at.localeCompare(a.created_at));
            });
          }
        },
        onState: (up, error) => setState({ up, error }),
      },
      ctl.signal,
    );
    return () => ctl.abort();
  }, [showAll]);

  return (
    <section>
      <div className="title-row">
        <h1>Reviews</h1>
        <span className={`live-dot ${state.up ? 'live' : 'retrying'}`}>
          {state.up ? 'live' : 'connecting…'}
        </span>
        <div className="spacer" />
        <label className="inline">
          <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} /> include
          decided
        </label>
      </div>
      {!state.up && state.error ? <ErrorNote error={state.error} title="The inbox is not live" /> : null}
      {reviews === null ? <Loading what="reviews" /> : null}
      {reviews?.length === 0 ? <p className="muted">Nothing is waiting for a decision.</p> : null}
      <ul className="reviews">
        {reviews?.map((r) => (
          <ReviewCard key={r.id} r={r} />
        ))}
      </ul>
    </section>
  );
}

function ReviewCard({ r }: { r: Review }) {
  const [facts, setFacts] = useState<Facts | undefined>(undefined);
  const [factsError, setFactsError] = useState<unknown>(null);
  const [reason, setReason] = useState('');
  const action = useAction();

  useEffect(() => {
    api<{ facts: Facts }>(`/api/reviews/${encodeURIComponent(r.id)}`)
      .then((d) => setFacts(d.facts))
      .catch(setFactsError);
  }, [r.id]);

  // The server says whether this caller may decide (approver groups, never the requester's chain).
  const mayDecide = r.may_decide;
  const decide = (verdict: 'approve' | 'deny') =>
    action.run(() =>
      api(`/api/reviews/${encodeURIComponent(r.id)}/${verdict}`, {
        method: 'POST',
        body: reason.trim() ? { reason: reason.trim() } : {},
      }),
    );

  return (
    <li className="card review" data-review={r.id}>
      <div className="meta">
        <Badge value={r.status} />
        <strong>{r.requester.subject}</strong>
        {r.requester.chain.length ? (
          <span className="muted small">{chainText(r.requester.root, r.requester.chain)}</span>
        ) : null}
        <span>on {r.connection}</span>
        <span className="muted small">
          asked <Time at={r.created_at} />, expires <Time at={r.expires_at} />
        </span>
        <Link to={`/sessions/${r.session_id}`}>session {shortId(r.session_id)}</Link>
      </div>
      <pre className="sql">{r.command}</pre>
      <div className="small">
        Held by rule <strong>{r.rule}</strong>
        {r.rules.length > 1 ? ` (matching: ${r.rules.join(', ')})` : ''} · {r.approvals.length}/
        {r.approvals_required} approvals
        {r.approver_groups.length ? ` from ${r.approver_groups.join(', ')}` : ''}
      </div>
      {r.message ? <div className="small">{r.message}</div> : null}
      {facts ? <FactList facts={facts} /> : null}
      <ErrorNote error={factsError} title="The command's facts could not be read" />
      {r.approvals.length ? (
        <ul className="small">
          {r.approvals.map((a) => (
            <li key={`${a.subject}:${a.at}`}>
              approved by {a.subject} <Time at={a.at} />
              {a.reason ? `: ${a.reason}` : ''}
            </li>
          ))}
        </ul>
      ) : null}
      {r.decided_by ? (
        <div className="small">
          {r.status} by {r.decided_by}
          {r.reason ? `: ${r.reason}` : ''}
        </div>
      ) : null}
      {mayDecide ? (
        <div className="decide">
          <input
            aria-label="reason"
            placeholder="reason (shown to the requester and in the audit trail)"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
          <button type="button" className="primary" disabled={action.busy} onClick={() => decide('approve')}>
            Approve
          </button>
          <button type="button" className="danger" disabled={action.busy} onClick={() => decide('deny')}>
            Deny
          </button>
        </div>
      ) : null}
      <ErrorNote error={action.error} />
    </li>
  );
}

interface TableRef {
  schema: string | null;
  name: string;
}
interface StatementFacts {
  kind: string;
  object?: string;
  tables_read?: TableRef[];
  tables_written?: TableRef[];
  functions?: string[];
  where_absent?: boolean;
  program?: boolean;
  file_access?: boolean;
  binary_output?: boolean;
  opaque?: boolean;
}

const FLAGS: Array<[keyof StatementFacts, string]> = [
  ['where_absent', 'no WHERE clause'],
  ['program', 'runs a server program'],
  ['file_access', 'reads or writes server files'],
  ['binary_output', 'binary COPY out'],
  ['opaque', 'runs SQL the parser cannot see'],
];

const tables = (refs: TableRef[] | undefined) =>
  (refs ?? []).map((t) => (t.schema ? `${t.schema}.${t.name}` : t.name)).join(', ');

/** What the analyzer read from the command, per statement, in words an approver can check. */
function FactList({ facts }: { facts: Record<string, unknown> }) {
  const statements = Array.isArray(facts.statements) ? (facts.statements as StatementFacts[]) : [];
  return (
    <ul className="facts small" aria-label="facts">
      {statements.map((st, i) => {
        const flags = FLAGS.filter(([k]) => st[k] === true).map(([, label]) => label);
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: statements are positional in the command
          <li key={i}>
            <strong>{st.object ? `${st.kind} ${st.object}` : st.kind}</strong>
            {st.tables_read?.length ? ` · reads ${tables(st.tables_read)}` : ''}
            {st.tables_written?.length ? ` · writes ${tables(st.tables_written)}` : ''}
            {st.functions?.length ? ` · calls ${st.functions.join(', ')}` : ''}
            {flags.map((f) => (
              <span key={f} className="badge warn">
                {f}
              </span>
            ))}
          </li>
        );
      })}
      {typeof facts.dialect === 'string' ? <li className="muted">{facts.dialect}</li> : null}
    </ul>
  );
}
