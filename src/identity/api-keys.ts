// API keys for services and agents: `wdn_<id>_<secret>`. The id finds the row; only the
// SHA-256 of the 256-bit secret is stored, so a leaked database yields no usable key.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../crypto/canonical.js';
import type { Store } from '../store/store.js';
import type { ApiKeysTable } from '../store/tables.js';
import { AuthError } from './errors.js';
import { type Identity, type IdentityKind, rolesFor } from './identity.js';
import { RevocationSignal } from './revocation-signal.js';

const PREFIX = 'wdn_';
const KEY_RE = /^wdn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ApiKeyView {
  id: string;
  name: string;
  kind: IdentityKind;
  groups: string[];
  created_at: string;
  created_by: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** The id part of a full API key, so a key pasted where its id is expected still works. */
export function apiKeyIdOf(value: string): string | undefined {
  return KEY_RE.exec(value)?.[1];
}

export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith(PREFIX);
}

const hashSecret = (secret: string): string => sha256Hex(secret);

function view(row: ApiKeysTable): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as IdentityKind,
    groups: JSON.parse(row.groups_json),
    created_at: row.created_at,
    created_by: row.created_by,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    last_used_at: row.last_used_at,
  };
}

export class ApiKeys {
  /** Fired once a revocation is written. */
  readonly revocations = new RevocationSignal();

  constructor(
    private readonly store: Store,
    private readonly roles: Config['identity']['roles'],
  ) {}

  /** Creates a key and returns it in full; this is the only time the secret exists outside the caller. */
  async create(input: {
    name: string;
    kind: IdentityKind;
    groups: string[];
    createdBy: string;
    expiresAt: Date | null;
  }): Promise<{ key: string; view: ApiKeyView }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const row: ApiKeysTable = {
      id,
      name: input.name,
      kind: input.kind,
      groups_json: JSON.stringify(input.groups),
      secret_hash: hashSecret(secret),
      created_at: new Date().toISOString(),
      created_by: input.createdBy,
      expires_at: input.expiresAt?.toISOString() ?? null,
      revoked_at: null,
      last_used_at: null,
    };
    await this.store.db.insertInto('api_keys').values(row).execute();
    return { key: `${PREFIX}${id}_${secret}`, view: view(row) };
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyView[]> {
    let q = this.store.db.selectFrom('api_keys').selectAll().orderBy('created_at', 'asc');
    if (!opts.includeRevoked) q = q.where('revoked_at', 'is', null);
    return (await q.execute()).map(view);
  }

  async get(idOrName: string): Promise<ApiKeyView | undefined> {
    const row = await this.store.db
      .selectFrom('api_keys')
      .selectAll()
      .where((eb) =>
        eb.or([eb('id', '=', idOrName), eb.and([eb('name', '=', idOrName), eb('revoked_at', 'is', null)])]),
      )
      .executeTakeFirst();
    return row ? view(row) : undefined;
  }

  async revoke(id: string): Promise<ApiKeyView | undefined> {
    const now = new Date().toISOString();
    await this.store.db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    this.revocations.fire();
    return this.get(id);
  }

  /** Why API key `id` may no longer be used (revoked or expired), or undefined while it stands. */
  async revocation(id: string, now = new Date()): Promise<string | undefined> {
    const row = await this.store.db
      .selectFrom('api_keys')
      .select(['name', 'revoked_at', 'expires_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return 'API key does not exist';
    if (row.revoked_at) return `API key ${row.name} was revoked`;
    if (row.expires_at && new Date(row.expires_at) <= now) return `API key ${row.name} has expired`;
    return undefined;
  }

  async authenticate(credential: string): Promise<Identity> {
    const m = KEY_RE.exec(credential);
    if (!m) throw new AuthError('malformed', 'malformed API key');
    const [, id, secret] = m as unknown as [string, string, string];
    const row = await this.store.db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    const expected = Buffer.from(row?.secret_hash ?? hashSecret('no such key'), 'hex');
    const given = Buffer.from(hashSecret(secret), 'hex');
    if (!row || !timingSafeEqual(expected, given)) throw new AuthError('unknown_key', 'unknown API key');
    if (row.revoked_at) throw new AuthError('revoked', `API key ${row.name} was revoked`);
    const now = new Date();
    if (row.expires_at && new Date(row.expires_at) <= now)
      throw new AuthError('expired', `API key ${row.name} has expired`);
    if (!row.last_used_at || now.getTime() - new Date(row.last_used_at).getTime() > 60_000) {
      // Best effort and off the request path: a failed timestamp update must not refuse the caller.
      this.store.db
        .updateTable('api_keys')
        .set({ last_used_at: now.toISOString() })
        .where('id', '=', id)
        .execute()
        .catch(() => undefined);
    }
    const groups: string[] = JSON.parse(row.groups_json);
    return {
      subject: row.name,
      kind: row.kind as IdentityKind,
      groups,
      rootSubject: row.name,
      chain: [],
      via: 'api_key',
      tokenId: row.id,
      parentTokenId: null,
      parentSessionId: null,
      issuer: 'warden',
      scope: ['*'],
      expiresAt: row.expires_at ? new Date(row.expires_at) : null,
      roles: rolesFor(groups, this.roles),
    };
  }
}
