// Table names for the table OIDs a RowDescription carries, and function names for the OID a
// FunctionCall names, asked of the target's catalog on a connection of its own (opened on first
// need, one per session), so rules naming tables and functions can apply.
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

/** `schema.name` of a function OID, each part quoted where SQL needs it; null when none has it. */
export type FunctionResolver = (oid: number) => Promise<string | null>;

export interface Catalog {
  resolve: TableResolver;
  resolveFunction: FunctionResolver;
  close(): Promise<void>;
}

const QUERY = `select c.oid::int8 as oid, n.nspname as schema, c.relname as name
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.oid = any($1::oid[])`;

const FUNCTION_QUERY = `select quote_ident(n.nspname) || '.' || quote_ident(p.proname) as name
  from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  where p.oid = $1::oid`;

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
  const connected = async (): Promise<pg.Client> => {
    client ??= connect();
    try {
      return await client;
    } catch (err) {
      client = null;
      throw err;
    }
  };
  /** Function names found, per session: libpq calls the same few large-object functions again and again. */
  const functions = new Map<number, string>();
  return {
    async resolve(oids) {
      const c = await connected();
      const res = await c.query<{ oid: string; schema: string; name: string }>(QUERY, [oids]);
      return new Map(res.rows.map((r) => [Number(r.oid), `${r.schema}.${r.name}`]));
    },
    async resolveFunction(oid) {
      const known = functions.get(oid);
      if (known !== undefined) return known;
      const c = await connected();
      const res = await c.query<{ name: string }>(FUNCTION_QUERY, [oid]);
      const name = res.rows[0]?.name ?? null;
      // Unknown OIDs are not remembered: the function may be created later in the session.
      if (name !== null && functions.size < 10_000) functions.set(oid, name);
      return name;
    },
    async close() {
      const c = client;
      client = null;
      if (c) await c.then((x) => x.end()).catch(() => undefined);
    },
  };
}
