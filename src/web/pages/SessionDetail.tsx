// One session: who ran it and through which chain, then its statements as they happened.
// A live session streams new statements (server-sent events) and can be ended by an admin.
import { useEffect, useState } from 'react';
import { api, request, stream } from '../api.js';
import { Badge, duration, ErrorNote, Field, Link, Loading, shortId, Time } from '../components/ui.js';
import { useAction } from '../hooks.js';
import { hasRole, type Identity, type Session, type SessionEvent } from '../types.js';

export function SessionDetail({ id, who }: { id: string; who: Identity }) {
  const [session, setSession] = useState<Session | null>(null);
  const [events, setEvents] = useState<SessionEvent[]>([]);
  const [live, setLive] = useState<'connecting' | 'live' | 'retrying' | 'done'>('connecting');
  const [error, setError] = useState<unknown>(null);
  const [hasRecording, setHasRecording] = useState(false);

  useEffect(() => {
    const ctl = new AbortController();
    setSession(null);
    setEvents([]);
    setError(null);
    // The stream sends statements in seq order, each once: a repeat (after a reconnect's snapshot)
    // is at or below the last one held.
    const add = (e: SessionEvent) =>
      setEvents((prev) => ((prev.at(-1)?.seq ?? 0) >= e.seq ? prev : [...prev, e]));
    void stream(
      `/api/sessions/${encodeURIComponent(id)}/stream`,
      {
        onEvent: (event, data) => {
          if (event === 'snapshot') {
            const d = data as { session: Session; events: SessionEvent[] };
            setSession(d.session);
            setEvents(d.events);
          } else if (event === 'statement') add(data as SessionEvent);
          else if (event === 'session') setSession(data as Session);
          else if (event === 'end') setLive('done');
        },
        onState: (up, err) => {
          setLive(up ? 'live' : 'retrying');
          if (err && (err.status === 404 || err.status === 401 || err.status === 403)) setError(err);
        },
      },
      ctl.signal,
    ).then(() => setLive((l) => (l === 'live' ? 'done' : l)));
    // HEAD: whether a terminal recording exists, without downloading it.
    request(`/api/sessions/${encodeURIComponent(id)}/recording`, { method: 'HEAD', signal: ctl.signal })
      .then(() => setHasRecording(true))
      .catch(() => setHasRecording(false));
    return () => ctl.abort();
  }, [id]);

  if (error) return <ErrorNote error={error} title="This session cannot be shown" />;
  if (!session) return <Loading what="the session" />;
  return (
    <section>
      <div className="title-row">
        <h1>
          Session <span className="mono">{shortId(session.id)}</span>
        </h1>
        <Badge value={session.status} title={session.end_reason ?? undefined} />
        {session.status === 'active' ? (
          <span className={`live-dot ${live}`} data-testid="live-state">
            {live === 'live' ? 'live' : live === 'retrying' ? 'reconnecting…' : ''}
          </span>
        ) : null}
        <div className="spacer" />
        <Link to={`/chains/${session.id}`}>Agent chain</Link>
        {hasRecording ? <Link to={`/sessions/${session.id}/replay`}>Replay terminal</Link> : null}
        {session.status === 'active' && hasRole(who, 'admin') ? <KillButton session={session} /> : null}
      </div>
      <IdentityCard s={session} />
      <h2>
        Statements <span className="muted small">({events.length})</span>
      </h2>
      {events.length === 0 ? <p className="muted">Nothing recorded yet.</p> : null}
      <ol className="timeline">
        {events.map((e) => (
          <Statement key={e.seq} e={e} />
        ))}
      </ol>
    </section>
  );
}

function traceId(traceparent: string | null): string | null {
  return traceparent?.split('-')[1] ?? null;
}

function IdentityCard({ s }: { s: Session }) {
  return (
    <dl className="card identity" aria-label="identity">
      <Field label="Caller">{`${s.subject} (${s.kind})`}</Field>
      <Field label="Root subject">{s.root_subject}</Field>
      <Field label="Actor chain">{s.chain.length ? s.chain.join(' → ') : '—'}</Field>
      <Field label="Connection">{`${s.connection} (${s.protocol})`}</Field>
      <Field label="Token">
        <span className="mono">{s.token_id ?? '—'}</span>
      </Field>
      <Field label="Parent token">
        <span className="mono">{s.parent_token_id ?? '—'}</span>
      </Field>
      <Field label="Parent session">
        {s.parent_session_id ? (
          <Link to={`/sessions/${s.parent_session_id}`}>
            <span className="mono">{s.parent_session_id}</span>
          </Link>
        ) : (
          '—'
        )}
      </Field>
      <Field label="Client address">{s.client_addr ?? '—'}</Field>
      <Field label="Application">{s.application ?? '—'}</Field>
      <Field label="Trace id">
        <span className="mono">{traceId(s.traceparent) ?? '—'}</span>
      </Field>
      <Field label="Started">
        <Time at={s.started_at} />
      </Field>
      <Field label="Ended">{s.ended_at ? <Time at={s.ended_at} /> : '—'}</Field>
      <Field label="End reason">{s.end_reason ?? '—'}</Field>
      {s.orphaned_at ? (
        <Field label="Orphaned">
          <Time at={s.orphaned_at} />
        </Field>
      ) : null}
    </dl>
  );
}

function Statement({ e }: { e: SessionEvent }) {
  return (
    <li className={`statement ${e.decision}`} data-seq={e.seq}>
      <div className="meta">
        <span className="muted">#{e.seq}</span>
        <Badge value={e.decision} />
        <Time at={e.time} />
        <span>{duration(e.duration_ms)}</span>
        {e.rows !== null ? <span>{e.rows} rows</span> : null}
        {e.rules.length ? <span className="muted small">rules: {e.rules.join(', ')}</span> : null}
      </div>
      <pre className="sql">{e.text}</pre>
      {e.params?.length ? (
        <div className="small">
          Parameters:{' '}
          {e.params.map((p, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: parameters are positional ($1, $2, …)
            <code key={i} className="param">
              ${i + 1} = {p === null ? 'NULL' : p}
            </code>
          ))}
        </div>
      ) : null}
      {e.error ? <div className="error small">{e.error}</div> : null}
      {e.sample?.length ? <Sample rows={e.sample} /> : null}
    </li>
  );
}

function Sample({ rows }: { rows: Array<Array<string | null>> }) {
  return (
    <div className="table-wrap">
      <table className="sample" aria-label="result sample (masked)">
        <tbody>
          {rows.map((r, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: sample rows and columns are positional
            <tr key={i}>
              {r.map((v, j) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: columns are positional
                <td key={j}>{v === null ? <span className="muted">NULL</span> : v}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function KillButton({ session }: { session: Session }) {
  const action = useAction();
  const kill = () => {
    const reason = window.prompt(`End ${session.subject}'s session on ${session.connection}? Reason:`);
    if (reason === null) return;
    void action.run(() =>
      api(`/api/sessions/${encodeURIComponent(session.id)}/kill`, {
        method: 'POST',
        body: reason.trim() ? { reason: reason.trim() } : {},
      }),
    );
  };
  return (
    <>
      <button type="button" className="danger" disabled={action.busy} onClick={kill}>
        End session
      </button>
      <ErrorNote error={action.error} />
    </>
  );
}
