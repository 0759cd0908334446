// Sessions: filters and full-text search kept in the address (so a view can be shared),
// server-side pages newest first, and the first page refreshed while it is on screen.
import { type FormEvent, useState } from 'react';
import { query } from '../api.js';
import {
  Badge,
  type Column,
  chainText,
  DataTable,
  ErrorNote,
  Link,
  Loading,
  shortId,
  Time,
} from '../components/ui.js';
import { useApi, useInterval } from '../hooks.js';
import { navigate } from '../router.js';
import type { Session } from '../types.js';

const FILTERS = [
  'q',
  'subject',
  'root',
  'agent',
  'connection',
  'protocol',
  'status',
  'since',
  'until',
  'flagged',
] as const;
type Filter = (typeof FILTERS)[number];

const REFRESH_MS = 2000;
/** How a session can be: running, or how it ended (src/gateway/session.ts, gateway liveness). */
const SESSION_STATUSES = ['active', 'closed', 'killed', 'failed', 'timed_out', 'orphaned', 'lost'];

export function SessionsPage({ params }: { params: URLSearchParams }) {
  const current = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ''])) as Record<Filter, string>;
  const cursor = params.get('cursor') ?? '';
  const path = `/api/sessions${query({ ...current, cursor, limit: 50 })}`;
  const list = useApi<{ sessions: Session[]; next: string | null }>(path);
  // Only the newest page moves by itself; an older page stays still while it is read.
  useInterval(list.reload, cursor ? null : REFRESH_MS);

  const [draft, setDraft] = useState(current);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    navigate(`/sessions${query(draft)}`);
  };
  const clear = () => {
    setDraft(Object.fromEntries(FILTERS.map((f) => [f, ''])) as Record<Filter, string>);
    navigate('/sessions');
  };
  const field = (name: Filter, label: string, placeholder = '') => (
    <label>
      {label}
      <input
        name={name}
        value={draft[name]}
        placeholder={placeholder}
        onChange={(e) => setDraft({ ...draft, [name]: e.target.value })}
      />
    </label>
  );

  return (
    <section>
      <h1>Sessions</h1>
      <form className="filters" onSubmit={apply} aria-label="session filters">
        <label className="grow">
          Search commands
          <input
            name="q"
            type="search"
            value={draft.q}
            placeholder="words in recorded statements"
            onChange={(e) => setDraft({ ...draft, q: e.target.value })}
          />
        </label>
        {field('subject', 'Caller')}
        {field('root', 'Root subject')}
        {field('agent', 'Agent')}
        {field('connection', 'Connection')}
        {field('protocol', 'Protocol', 'postgres')}
        <label>
          Status
          <select value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.target.value })}>
            <option value="">any</option>
            {SESSION_STATUSES.map((st) => (
              <option key={st} value={st}>
                {st}
              </option>
            ))}
          </select>
        </label>
        {field('since', 'Since', '1h, 7d or a date')}
        {field('until', 'Until')}
        <label>
          Flagged
          <select value={draft.flagged} onChange={(e) => setDraft({ ...draft, flagged: e.target.value })}>
            <option value="">—</option>
            <option value="denied">has denied commands</option>
            <option value="held">has held commands</option>
          </select>
        </label>
        <div className="actions">
          <button type="submit" className="primary">
            Apply
          </button>
          <button type="button" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
      <ErrorNote error={list.error} title="Sessions could not be loaded" />
      {list.loading && !list.data ? <Loading what="sessions" /> : null}
      {list.data ? <SessionTable sessions={list.data.sessions} /> : null}
      <div className="pager">
        {cursor ? (
          <button type="button" onClick={() => navigate(`/sessions${query(current)}`)}>
            Newest
          </button>
        ) : (
          <span className="muted small">Newest first · refreshed every {REFRESH_MS / 1000} s</span>
        )}
        {list.data?.next ? (
          <button
            type="button"
            onClick={() => navigate(`/sessions${query({ ...current, cursor: list.data?.next })}`)}
          >
            Older
          </button>
        ) : null}
      </div>
    </section>
  );
}

const SESSION_COLUMNS: Array<Column<Session>> = [
  { label: 'Started', cell: (s) => <Time at={s.started_at} /> },
  {
    label: 'Caller',
    cell: (s) => (
      <>
        <Link to={`/sessions/${s.id}`}>{s.subject}</Link>
        {s.root_subject !== s.subject ? <span className="muted small"> for {s.root_subject}</span> : null}
      </>
    ),
  },
  { label: 'Chain', className: 'chain', cell: (s) => chainText(s.root_subject, s.chain) },
  {
    label: 'Connection',
    cell: (s) => (
      <>
        {s.connection} <span className="muted small">{s.protocol}</span>
      </>
    ),
  },
  { label: 'Status', cell: (s) => <Badge value={s.status} title={s.end_reason ?? undefined} /> },
  { label: 'Session', className: 'mono', cell: (s) => <Link to={`/sessions/${s.id}`}>{shortId(s.id)}</Link> },
];

function SessionTable({ sessions }: { sessions: Session[] }) {
  if (sessions.length === 0) return <p className="muted">No sessions match.</p>;
  return (
    <DataTable
      className="sessions"
      rows={sessions}
      columns={SESSION_COLUMNS}
      rowKey={(s) => s.id}
      rowData={(s) => ({ session: s.id })}
    />
  );
}
