// Connections: what people can reach through Warden, never with their secrets. Admins can ask
// Warden to reach a target with its held credentials ("test connection").
import { useState } from 'react';
import { api } from '../api.js';
import { Badge, type Column, DataTable, ErrorNote, Field, Link, Loading, Time } from '../components/ui.js';
import { useAction, useApi } from '../hooks.js';
import { type Connection, hasRole, type Identity } from '../types.js';

const CONNECTION_COLUMNS: Array<Column<Connection>> = [
  { label: 'Name', cell: (c) => <Link to={`/connections/${encodeURIComponent(c.name)}`}>{c.name}</Link> },
  { label: 'Protocol', cell: (c) => c.protocol },
  {
    label: 'Target',
    className: 'mono',
    cell: (c) => `${c.target.host}:${c.target.port}${c.target.database ? `/${c.target.database}` : ''}`,
  },
  { label: 'Access', cell: (c) => c.access },
  { label: 'Tags', cell: (c) => c.tags.join(', ') || '—' },
];

export function ConnectionsPage() {
  const list = useApi<{ connections: Connection[] }>('/api/connections');
  return (
    <section>
      <h1>Connections</h1>
      <ErrorNote error={list.error} title="Connections could not be loaded" />
      {list.loading && !list.data ? <Loading what="connections" /> : null}
      {list.data?.connections.length === 0 ? <p className="muted">No connections are defined.</p> : null}
      {list.data?.connections.length ? (
        <DataTable
          rows={list.data.connections}
          columns={CONNECTION_COLUMNS}
          rowKey={(c) => c.name}
          rowData={(c) => ({ connection: c.name })}
        />
      ) : null}
    </section>
  );
}

interface ProbeResult {
  name: string;
  ok: boolean;
  latency_ms: number;
  server_version?: string;
  error?: string;
}

export function ConnectionDetail({ name, who }: { name: string; who: Identity }) {
  const conn = useApi<Connection>(`/api/connections/${encodeURIComponent(name)}`);
  const [probe, setProbe] = useState<ProbeResult | null>(null);
  const action = useAction();
  if (conn.error) return <ErrorNote error={conn.error} title={`Connection ${name}`} />;
  if (!conn.data) return <Loading what="the connection" />;
  const c = conn.data;

  const test = () =>
    action.run(async () => {
      setProbe(null);
      setProbe(
        await api<ProbeResult>(`/api/connections/${encodeURIComponent(name)}/test`, {
          method: 'POST',
          body: {},
        }),
      );
    });

  return (
    <section>
      <div className="title-row">
        <h1>{c.name}</h1>
        <div className="spacer" />
        <Link to={`/sessions?connection=${encodeURIComponent(c.name)}`}>Sessions</Link>
        {hasRole(who, 'admin') ? (
          <button type="button" className="primary" disabled={action.busy} onClick={test}>
            {action.busy ? 'Testing…' : 'Test connection'}
          </button>
        ) : null}
      </div>
      {probe ? (
        <div className={`card probe ${probe.ok ? 'ok' : 'bad'}`} role="status" data-testid="probe">
          <Badge value={probe.ok ? 'success' : 'failure'} />{' '}
          {probe.ok
            ? `Reached ${c.target.host}:${c.target.port} in ${probe.latency_ms} ms${probe.server_version ? ` — server ${probe.server_version}` : ''}`
            : `Failed after ${probe.latency_ms} ms: ${probe.error}`}
        </div>
      ) : null}
      <ErrorNote error={action.error} title="The test could not run" />
      <dl className="card identity">
        <Field label="Protocol">{c.protocol}</Field>
        <Field label="Target">
          {`${c.target.host}:${c.target.port}${c.target.database ? ` / ${c.target.database}` : ''}`}
        </Field>
        <Field label="TLS to target">
          {c.target.tls.mode + (c.target.tls.server_name ? ` (${c.target.tls.server_name})` : '')}
        </Field>
        <Field label="Credentials">
          {`${c.credentials.user ?? '—'} · ${c.credentials.has_password ? 'secret held by Warden' : 'no secret'}`}
        </Field>
        <Field label="Access">{c.access === 'jit' ? 'just-in-time (a grant is needed)' : 'open'}</Field>
        <Field label="Policy default">{c.policy_default ?? 'global default'}</Field>
        <Field label="Pooling">{c.pool}</Field>
        <Field label="Session limits">
          {c.sessions
            ? Object.entries(c.sessions)
                .map(([k, v]) => `${k} ${String(v)}`)
                .join(', ')
            : 'global'}
        </Field>
        <Field label="Tags">{c.tags.join(', ') || '—'}</Field>
        <Field label="Description">{c.description || '—'}</Field>
        <Field label="Defined in">{c.source === 'config' ? 'the config file' : 'the API'}</Field>
        <Field label="Updated">
          <Time at={c.updated_at} />
        </Field>
      </dl>
    </section>
  );
}
