// The audit trail: newest records first with filters, a banner saying how far the hash chain
// verifies and when it was last signed, and an export for offline verification.
import { type FormEvent, useState } from 'react';
import { query, request } from '../api.js';
import { Badge, type Column, chainText, DataTable, ErrorNote, Loading, Time } from '../components/ui.js';
import { useAction, useApi } from '../hooks.js';
import { navigate } from '../router.js';
import type { AuditRecord, VerifyReport } from '../types.js';

const FILTERS = ['type', 'subject', 'since', 'until'] as const;
type Filter = (typeof FILTERS)[number];
const PAGE = 100;

const AUDIT_COLUMNS: Array<Column<AuditRecord>> = [
  { label: 'Seq', cell: (r) => r.seq },
  { label: 'Time', cell: (r) => <Time at={r.time} /> },
  { label: 'Type', className: 'mono', cell: (r) => r.type },
  {
    label: 'Actor',
    cell: (r) => (
      <>
        {r.actor.subject}
        {r.actor.chain.length ? (
          <span className="muted small"> ({chainText(r.actor.root, r.actor.chain)})</span>
        ) : null}
      </>
    ),
  },
  { label: 'Target', className: 'mono', cell: (r) => r.target ?? '—' },
  { label: 'Outcome', cell: (r) => <Badge value={r.outcome} /> },
  { label: 'Details', className: 'payload', cell: (r) => <code>{JSON.stringify(r.payload)}</code> },
];

export function AuditPage({ params }: { params: URLSearchParams }) {
  const current = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ''])) as Record<Filter, string>;
  const before = params.get('before_seq') ?? '';
  const page = useApi<{ records: AuditRecord[]; last_seq: number }>(
    `/api/audit${query({ ...current, before_seq: before, tail: 'true', limit: PAGE })}`,
  );
  const [draft, setDraft] = useState(current);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    navigate(`/audit${query(draft)}`);
  };
  const records = page.data ? [...page.data.records].reverse() : [];
  const oldest = records.at(-1)?.seq;

  return (
    <section>
      <div className="title-row">
        <h1>Audit</h1>
        <div className="spacer" />
        <ExportButton since={current.since} until={current.until} />
      </div>
      <VerifyBanner />
      <form className="filters" onSubmit={apply} aria-label="audit filters">
        {FILTERS.map((f) => (
          <label key={f}>
            {f === 'type' ? 'Type (session.* for a prefix)' : f[0]?.toUpperCase() + f.slice(1)}
            <input name={f} value={draft[f]} onChange={(e) => setDraft({ ...draft, [f]: e.target.value })} />
          </label>
        ))}
        <div className="actions">
          <button type="submit" className="primary">
            Apply
          </button>
        </div>
      </form>
      <ErrorNote error={page.error} title="The trail could not be loaded" />
      {page.loading && !page.data ? <Loading what="audit records" /> : null}
      {page.data && records.length === 0 ? <p className="muted">No records match.</p> : null}
      {records.length ? (
        <DataTable
          className="audit"
          rows={records}
          columns={AUDIT_COLUMNS}
          rowKey={(r) => r.seq}
          rowData={(r) => ({ seq: r.seq })}
        />
      ) : null}
      <div className="pager">
        {before ? (
          <button type="button" onClick={() => navigate(`/audit${query(current)}`)}>
            Newest
          </button>
        ) : null}
        {oldest !== undefined && records.length === PAGE ? (
          <button
            type="button"
            onClick={() => navigate(`/audit${query({ ...current, before_seq: oldest })}`)}
          >
            Older
          </button>
        ) : null}
      </div>
    </section>
  );
}

function VerifyBanner() {
  const v = useApi<VerifyReport>('/api/audit/verify');
  if (v.error) return <ErrorNote error={v.error} title="The trail could not be verified" />;
  if (!v.data) return <Loading what="the verification" />;
  const r = v.data;
  if (!r.ok && r.problem) {
    return (
      <div className="banner bad" role="alert" data-testid="verify-banner">
        Audit trail broken at seq {r.problem.seq} ({r.problem.kind}): {r.problem.message}
      </div>
    );
  }
  return (
    <div className="banner ok" role="status" data-testid="verify-banner">
      Chain verified up to seq {r.last_seq ?? 0} ({r.records} records
      {r.from_genesis ? ' from the first' : ''}).{' '}
      {r.last_checkpoint ? (
        <>
          Last signed checkpoint: seq {r.last_checkpoint.seq} at <Time at={r.last_checkpoint.time} />
          {r.unsigned_tail ? `; ${r.unsigned_tail} newer records not yet signed.` : '.'}
        </>
      ) : (
        'No signed checkpoint yet.'
      )}
      <button type="button" className="link" onClick={v.reload}>
        Verify again
      </button>
    </div>
  );
}

function ExportButton({ since, until }: { since: string; until: string }) {
  const action = useAction();
  const download = () =>
    action.run(async () => {
      // Fetched with the bearer token (a plain link could not carry it), then saved from memory.
      const res = await request(`/api/audit/export${query({ since, until })}`);
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = `warden-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
  return (
    <>
      <button type="button" disabled={action.busy} onClick={download}>
        {action.busy ? 'Exporting…' : 'Export (JSON lines)'}
      </button>
      <ErrorNote error={action.error} />
    </>
  );
}
