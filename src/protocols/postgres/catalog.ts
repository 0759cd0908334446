// Table names for the table OIDs a RowDescription carries, asked of the target's catalog on a
// connection of its own (opened on first need, one per session), so rules naming tables can apply.
import pg from 'pg';
import type { TableResolver } from './result-rewrite.js';

export interface CatalogTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  tls: { mode: 'disable' | 'require' | 'verify-full'; ca?: string; server_name?: string };
  applicationName: string;
}

export interface Catalog {
  resolve: TableResolver;
  close(): Promise<void>;
}

const QUERY = `select c.oid::int8 as oid, n.nspname as schema, c.relname as name
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.oid = any($1::oid[])`;

export function openCatalog(t: CatalogTarget): Catalog {
  let client: Promise<pg.Client> | null = null;
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({
      host: t.host,
      port: t.port,
      database: t.database,
      user: t.user,
      ...(t.password !== undefined ? { password: t.password } : {}),
      application_name: t.applicationName,
      connectionTimeoutMillis: 10_000,
      ssl:
        t.tls.mode === 'disable'
          ? false
          : t.tls.mode === 'require'
            ? { rejectUnauthorized: false }
            : {
                rejectUnauthorized: true,
                servername: t.tls.server_name ?? t.host,
                ...(t.tls.ca ? { ca: t.tls.ca } : {}),
              },
    });
    // A catalog connection that breaks is opened again on the next lookup.
    c.on('error', () => {
      client = null;
    });
    await c.connect();
    return c;
  };
  return {
    async resolve(oids) {
      client ??= connect();
      let c: pg.Client;
      try {
        c = await client;
      } catch (err) {
        client = null;
        throw err;
      }
      const res = await c.query<{ oid: string; schema: string; name: string }>(QUERY, [oids]);
      return new Map(res.rows.map((r) => [Number(r.oid), `${r.schema}.${r.name}`]));
    },
    async close() {
      const c = client;
      client = null;
      if (c) await c.then((x) => x.end()).catch(() => undefined);
    },
  };
}
