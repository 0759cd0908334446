// The connections repository: targets with their sealed credentials. Secrets go in sealed
// (bound to the row id) and come out only through `credentials()`, for the gateway itself.
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type {
  ConnectionInput,
  ConnectionPatch,
  ConnectionView,
  Protocol,
  SessionOverrides,
  Target,
  TargetTls,
} from '../config/connection.js';
import { formatLimit, limitMs } from '../config/duration.js';
import { deepFreeze } from '../freeze.js';
import { RecentReads } from './recent-reads.js';
import type { Store } from './store.js';
import type { ConnectionsTable } from './tables.js';

/** Seals and opens secrets; implemented by crypto's Keyring (the store never sees the key). */
export interface Sealer {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
  readonly currentId: string;
}

/** A connection's target credentials in clear: only for the gateway's own use when it dials. */
export interface TargetCredentials {
  user: string | null;
  password: string | null;
}

/** A connection as a gateway dials it: one read of its row for the login and the dial. */
export interface GatewayConnection {
  view: ConnectionView;
  /** The target credentials, opened only when called (once the caller is let in). */
  credentials(): TargetCredentials;
}

export class ConflictError extends Error {
  override name = 'ConflictError';
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

export type ConnectionSource = 'api' | 'config';

const sealContext = (id: string) => `connection:${id}`;

function toView(row: Selectable<ConnectionsTable>): ConnectionView {
  const target: Target = {
    host: row.host,
    port: row.port,
    tls: JSON.parse(row.tls_json) as TargetTls,
    ...(row.database === null ? {} : { database: row.database }),
  };
  return {
    name: row.name,
    protocol: row.protocol as Protocol,
    target,
    access: row.access as 'open' | 'jit',
    policy_default: row.policy_default as 'allow' | 'deny' | null,
    pool: row.pool === 'session' ? 'session' : 'none',
    sessions: row.sessions_json === null ? null : overridesView(JSON.parse(row.sessions_json)),
    tags: JSON.parse(row.tags_json),
    description: row.description,
    credentials: { user: row.username, has_password: row.secret_sealed !== null },
    source: row.source as ConnectionSource,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** Limits as the API shows them: duration text, `off` for 0. */
function overridesView(o: SessionOverrides): NonNullable<ConnectionView['sessions']> {
  return {
    ...(o.idle_timeout !== undefined ? { idle_timeout: formatLimit(o.idle_timeout) } : {}),
    ...(o.max_duration !== undefined ? { max_duration: formatLimit(o.max_duration) } : {}),
    ...(o.end_with_parent !== undefined ? { end_with_parent: o.end_with_parent } : {}),
  };
}

/** The overrides a view shows, back in milliseconds. */
function overridesOf(c: ConnectionView): SessionOverrides | null {
  const v = c.sessions;
  if (!v) return null;
  const ms = (text: string | undefined) => (text === undefined ? undefined : limitMs(text));
  return {
    ...(v.idle_timeout !== undefined ? { idle_timeout: ms(v.idle_timeout) } : {}),
    ...(v.max_duration !== undefined ? { max_duration: ms(v.max_duration) } : {}),
    ...(v.end_with_parent !== undefined ? { end_with_parent: v.end_with_parent } : {}),
  };
}

/** Overrides as stored: null when none is set, so "no overrides" has one form. */
function overridesJson(o: SessionOverrides | null | undefined): string | null {
  if (!o || Object.values(o).every((v) => v === undefined)) return null;
  return JSON.stringify(o);
}

/** The fields a config entry sets, in a fixed order, for change detection. */
function comparable(
  c: Pick<ConnectionView, 'protocol' | 'target' | 'access' | 'tags' | 'description'> & {
    policy_default?: string | null | undefined;
    pool?: string | undefined;
  },
  sessions: SessionOverrides | null | undefined,
) {
  const t = c.target;
  return [
    c.protocol,
    t.host,
    t.port,
    t.database ?? null,
    t.tls.mode,
    t.tls.ca ?? null,
    t.tls.server_name ?? null,
    c.access,
    c.policy_default ?? null,
    c.pool ?? 'none',
    overridesJson(sessions),
    c.tags,
    c.description,
  ];
}

export interface ConnectionsOptions {
  /**
   * How long a connection read for a login serves the next logins to it (`identity.login_cache`;
   * default 0: read every time). A change made through this process applies at once; one made
   * through another gateway sharing the store, within this time.
   */
  recentMs?: number;
}

export class Connections {
  /** Connections read for logins in the last `recentMs`, by name. */
  private readonly recent: RecentReads<GatewayConnection>;

  constructor(
    private readonly store: Store,
    private readonly sealer: Sealer,
    opts: ConnectionsOptions = {},
  ) {
    this.recent = new RecentReads<GatewayConnection>(opts.recentMs ?? 0, 1_000);
  }

  private async rowNamed(name: string): Promise<Selectable<ConnectionsTable>> {
    const row = await this.findRow(name);
    if (!row) throw new NotFoundError(`connection "${name}" does not exist`);
    return row;
  }

  private findRow(name: string): Promise<Selectable<ConnectionsTable> | undefined> {
    return this.store.db.selectFrom('connections').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async list(): Promise<ConnectionView[]> {
    const rows = await this.store.db.selectFrom('connections').selectAll().orderBy('name').execute();
    return rows.map(toView);
  }

  async get(name: string): Promise<ConnectionView | undefined> {
    const row = await this.findRow(name);
    return row ? toView(row) : undefined;
  }

  async create(input: ConnectionInput, source: ConnectionSource): Promise<ConnectionView> {
    if (await this.get(input.name)) throw new ConflictError(`connection "${input.name}" already exists`);
    const id = randomUUID();
    const now = new Date().toISOString();
    const row: ConnectionsTable = {
      id,
      name: input.name,
      protocol: input.protocol,
      host: input.target.host,
      port: input.target.port,
      database: input.target.database ?? null,
      tls_json: JSON.stringify(input.target.tls),
      username: input.credentials.user ?? null,
      secret_sealed: input.credentials.password
        ? this.sealer.seal(input.credentials.password, sealContext(id))
        : null,
      access: input.access,
      policy_default: input.policy_default ?? null,
      pool: input.pool,
      sessions_json: overridesJson(input.sessions),
      tags_json: JSON.stringify(input.tags),
      description: input.description,
      source,
      created_at: now,
      updated_at: now,
    };
    await this.store.db.insertInto('connections').values(row).execute();
    // A row of this name removed through another gateway may still be kept here.
    this.recent.forget();
    return toView(row);
  }

  /** Applies a patch; returns the view before and after so callers can audit the change. */
  async update(
    name: string,
    patch: ConnectionPatch,
  ): Promise<{ before: ConnectionView; after: ConnectionView }> {
    const row = await this.rowNamed(name);
    const next: ConnectionsTable = { ...row, updated_at: new Date().toISOString() };
    if (patch.protocol) next.protocol = patch.protocol;
    if (patch.target) {
      next.host = patch.target.host;
      next.port = patch.target.port;
      next.database = patch.target.database ?? null;
      next.tls_json = JSON.stringify(patch.target.tls);
    }
    if (patch.access) next.access = patch.access;
    if (patch.policy_default !== undefined) next.policy_default = patch.policy_default;
    if (patch.pool !== undefined) next.pool = patch.pool;
    if (patch.sessions !== undefined) next.sessions_json = overridesJson(patch.sessions);
    if (patch.tags) next.tags_json = JSON.stringify(patch.tags);
    if (patch.description !== undefined) next.description = patch.description;
    if (patch.credentials?.user !== undefined) next.username = patch.credentials.user;
    if (patch.credentials?.password !== undefined) {
      next.secret_sealed =
        patch.credentials.password === null
          ? null
          : this.sealer.seal(patch.credentials.password, sealContext(row.id));
    }
    await this.store.db.updateTable('connections').set(next).where('id', '=', row.id).execute();
    this.recent.forget();
    return { before: toView(row), after: toView(next) };
  }

  async remove(name: string): Promise<ConnectionView> {
    const row = await this.rowNamed(name);
    await this.store.db.deleteFrom('connections').where('id', '=', row.id).execute();
    this.recent.forget();
    return toView(row);
  }

  /** The target credentials in clear, for the gateway's own use when it dials the target. */
  async credentials(name: string): Promise<TargetCredentials> {
    const row = await this.store.db
      .selectFrom('connections')
      .select(['id', 'username', 'secret_sealed'])
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) throw new NotFoundError(`connection "${name}" does not exist`);
    return this.opened(row);
  }

  /**
   * The connection a gateway is asked for, with its credentials (see GatewayConnection). Read for
   * a login and used again by the logins of the next `recentMs`; its view is frozen, being shared.
   */
  async forGateway(name: string): Promise<GatewayConnection | undefined> {
    const kept = this.recent.get(name);
    if (kept) return kept;
    const mark = this.recent.mark();
    const row = await this.findRow(name);
    if (!row) return undefined;
    const found: GatewayConnection = { view: deepFreeze(toView(row)), credentials: () => this.opened(row) };
    this.recent.keep(name, found, mark);
    return found;
  }

  private opened(row: Pick<ConnectionsTable, 'id' | 'username' | 'secret_sealed'>): TargetCredentials {
    return {
      user: row.username,
      password: row.secret_sealed ? this.sealer.open(row.secret_sealed, sealContext(row.id)) : null,
    };
  }

  /**
   * Makes the config file's connections the truth for every config-sourced row: creates,
   * updates and removes them. Rows created through the API are left alone unless a config
   * entry claims the same name, which is refused.
   */
  async syncFromConfig(
    entries: ConnectionInput[],
  ): Promise<{ created: string[]; updated: string[]; removed: string[] }> {
    const result = { created: [] as string[], updated: [] as string[], removed: [] as string[] };
    const existing = new Map((await this.list()).map((c) => [c.name, c]));
    for (const entry of entries) {
      const current = existing.get(entry.name);
      if (!current) {
        await this.create(entry, 'config');
        result.created.push(entry.name);
        continue;
      }
      if (current.source !== 'config') {
        throw new ConflictError(
          `connection "${entry.name}" in the config file already exists (created through the API)`,
        );
      }
      const creds = await this.credentials(entry.name);
      const same =
        JSON.stringify(comparable(current, overridesOf(current))) ===
          JSON.stringify(comparable(entry, entry.sessions)) &&
        creds.user === (entry.credentials.user ?? null) &&
        creds.password === (entry.credentials.password ?? null);
      if (!same) {
        await this.update(entry.name, {
          protocol: entry.protocol,
          target: entry.target,
          access: entry.access,
          policy_default: entry.policy_default ?? null,
          pool: entry.pool,
          sessions: entry.sessions ?? null,
          tags: entry.tags,
          description: entry.description,
          credentials: { user: entry.credentials.user ?? null, password: entry.credentials.password ?? null },
        });
        result.updated.push(entry.name);
      }
    }
    const wanted = new Set(entries.map((e) => e.name));
    for (const c of existing.values()) {
      if (c.source === 'config' && !wanted.has(c.name)) {
        await this.remove(c.name);
        result.removed.push(c.name);
      }
    }
    return result;
  }

  /** Re-seals every secret under the sealer's current key, in one transaction. */
  async resealAll(): Promise<{ resealed: number; total: number }> {
    const result = await this.store.db.transaction().execute(async (tx) => {
      const rows = await tx
        .selectFrom('connections')
        .select(['id', 'secret_sealed'])
        .where('secret_sealed', 'is not', null)
        .execute();
      let resealed = 0;
      for (const row of rows) {
        const sealed = row.secret_sealed!;
        if (sealed.split('.')[1] === this.sealer.currentId) continue;
        const clear = this.sealer.open(sealed, sealContext(row.id));
        await tx
          .updateTable('connections')
          .set({ secret_sealed: this.sealer.seal(clear, sealContext(row.id)) })
          .where('id', '=', row.id)
          .execute();
        resealed += 1;
      }
      return { resealed, total: rows.length };
    });
    this.recent.forget();
    return result;
  }
}
