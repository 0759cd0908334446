// Small building blocks every page uses: links that navigate without a reload, error and
// loading states, badges for decisions and statuses, and times people can read.
import type { MouseEvent, ReactNode } from 'react';
import { ApiError } from '../api.js';
import { navigate } from '../router.js';

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    // Let the browser handle new-tab and modified clicks.
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={click} className={className}>
      {children}
    </a>
  );
}

export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error as Error;
  const code = error instanceof ApiError ? ` (${error.status || 'network'} ${error.code})` : '';
  return (
    <div className="error" role="alert">
      {title ? <strong>{title}: </strong> : null}
      {e.message}
      <span className="muted">{code}</span>
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}

const TONES: Record<string, string> = {
  allow: 'ok',
  approved: 'ok',
  success: 'ok',
  active: 'live',
  closed: 'neutral',
  failed: 'bad',
  timed_out: 'warn',
  orphaned: 'warn',
  revoked: 'bad',
  deny: 'bad',
  denied: 'bad',
  failure: 'bad',
  review: 'warn',
  pending: 'warn',
  held: 'warn',
  lost: 'bad',
  killed: 'bad',
  expired: 'neutral',
  cancelled: 'neutral',
};

export function Badge({ value, title }: { value: string; title?: string }) {
  return (
    <span className={`badge ${TONES[value] ?? 'neutral'}`} title={title}>
      {value}
    </span>
  );
}

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  const d = new Date(at);
  return (
    <time dateTime={at} title={d.toISOString()}>
      {d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })}
    </time>
  );
}

/** Session ids are time-ordered (ids of one minute share their head): the tail tells them apart. */
export function shortId(id: string | null | undefined): string {
  if (!id) return '—';
  return id.length > 12 ? `…${id.slice(-8)}` : id;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** One labelled value of a description list (an identity card, a connection's settings). */
export function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/** Who acted for whom: the root identity, then each delegate (`alice → agent-a → agent-b`). */
export function chainText(root: string | undefined, chain: string[]): string {
  return [root, ...chain.filter((c) => c !== root)].filter(Boolean).join(' → ');
}

/** A column of a DataTable: its heading, what a row shows in it, and the cell's class. */
export interface Column<T> {
  label: string;
  cell: (row: T) => ReactNode;
  className?: string;
}

/**
 * A table whose cells carry their column's heading (`data-label`), so a narrow window can show
 * each row as a labelled card; `rowData` names the row for tests and links (`data-<name>`).
 */
export function DataTable<T>({
  rows,
  columns,
  rowKey,
  rowData,
  className,
}: {
  rows: readonly T[];
  columns: ReadonlyArray<Column<T>>;
  rowKey: (row: T) => string | number;
  rowData?: (row: T) => Record<string, string | number>;
  className?: string;
}) {
  return (
    <div className="table-wrap">
      <table className={className}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label}>{c.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr
              key={rowKey(row)}
              {...Object.fromEntries(Object.entries(rowData?.(row) ?? {}).map(([k, v]) => [`data-${k}`, v]))}
            >
              {columns.map((c) => (
                <td key={c.label} data-label={c.label} className={c.className}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
