// Warden's own short-lived tokens: Ed25519-signed JWTs whose jti is recorded in the store,
// so any one of them (and, through parent_jti, its descendants) can be revoked.
import { randomUUID } from 'node:crypto';
import { decodeJwt, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { Selectable } from 'kysely';
import type { Config } from '../config/schema.js';
import type { SigningKey } from '../crypto/signing.js';
import type { Store } from '../store/store.js';
import type { TokensTable } from '../store/tables.js';
import { AuthError } from './errors.js';
import { type Identity, type IdentityKind, KINDS, rolesFor } from './identity.js';
import { mapJoseError } from './oidc.js';
import { RevocationSignal } from './revocation-signal.js';

export const WARDEN_AUDIENCE = 'warden';

/**
 * The jti of a token given whole where its jti is expected (undefined when `ref` is not a JWT
 * with a jti). Unverified on purpose: it only finds which row is meant.
 */
export function jtiOfToken(ref: string): string | undefined {
  if (ref.split('.').length !== 3) return undefined;
  try {
    const { jti } = decodeJwt(ref);
    return typeof jti === 'string' ? jti : undefined;
  } catch {
    return undefined;
  }
}

export interface MintedToken {
  token: string;
  jti: string;
  expiresAt: Date;
}

export interface TokenView {
  jti: string;
  parent_jti: string | null;
  subject: string;
  kind: string;
  groups: string[];
  scope: string[];
  chain: string[];
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
  issued_via: string;
  /** The identity at the root of the token's chain. */
  root_subject: string;
  parent_session_id: string | null;
}

/** Who a delegated token is for: the next actor in its chain (the last entry of `chain`). */
export interface DelegatedHolder {
  subject: string;
  kind: IdentityKind;
  groups: string[];
  chain: string[];
}

/** RFC 8693 `act` for a chain ordered from the root outward: the current actor outermost. */
function actClaim(chain: string[]): ActClaim | undefined {
  let act: ActClaim | undefined;
  for (const sub of chain) act = act ? { sub, act } : { sub };
  return act;
}

interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/** The current actor named by an `act` claim (its outermost `sub`), if it has one. */
function actorOfAct(act: unknown): string | undefined {
  if (typeof act !== 'object' || act === null) return undefined;
  const sub = (act as { sub?: unknown }).sub;
  return typeof sub === 'string' && sub.length > 0 ? sub : undefined;
}

export class WardenTokens {
  /** Fired once a revocation (of a token and, in turn, of the tokens minted from it) is written. */
  readonly revocations = new RevocationSignal();

  constructor(
    private readonly store: Store,
    private readonly key: SigningKey,
    private readonly cfg: Config['identity'],
  ) {}

  get issuer(): string {
    return this.cfg.issuer;
  }

  /**
   * Mints a token for `caller`, never wider or longer-lived than the credential it presented.
   * Throws a RangeError naming the limit when the request exceeds it.
   */
  async mint(
    caller: Identity,
    req: { ttlMs?: number; scope?: string[]; parentSessionId?: string | null },
  ): Promise<MintedToken> {
    const ttl = req.ttlMs ?? this.cfg.token_ttl;
    if (ttl <= 0 || ttl > this.cfg.token_max_ttl) {
      throw new RangeError(`ttl must be between 1s and ${Math.round(this.cfg.token_max_ttl / 1000)}s`);
    }
    const now = Date.now();
    let expiresAt = new Date(now + ttl);
    if (caller.expiresAt && caller.expiresAt < expiresAt) expiresAt = caller.expiresAt;
    if (expiresAt.getTime() <= now) throw new RangeError('the presented credential has already expired');
    return this.issue(caller, {
      holder: caller,
      scope: req.scope ?? caller.scope,
      expiresAt,
      parentJti: caller.via === 'warden_token' ? caller.tokenId : null,
      parentSessionId: req.parentSessionId ?? null,
    });
  }

  /**
   * Mints a token for a delegate of `parent` (RFC 8693 token exchange): `sub` stays the root,
   * `act` nests the chain. The caller has already checked scope, lifetime and depth.
   */
  async mintDelegated(
    parent: Identity,
    delegate: DelegatedHolder,
    req: { scope: string[]; expiresAt: Date; parentSessionId?: string | null },
  ): Promise<MintedToken> {
    return this.issue(parent, {
      holder: { ...delegate, rootSubject: parent.rootSubject },
      scope: req.scope,
      expiresAt: req.expiresAt,
      parentJti: parent.via === 'warden_token' ? parent.tokenId : null,
      parentSessionId: req.parentSessionId ?? null,
    });
  }

  private async issue(
    from: Identity,
    t: {
      holder: Pick<Identity, 'subject' | 'kind' | 'groups' | 'rootSubject' | 'chain'>;
      scope: string[];
      expiresAt: Date;
      parentJti: string | null;
      parentSessionId: string | null;
    },
  ): Promise<MintedToken> {
    const now = Date.now();
    const { holder } = t;
    const jti = randomUUID();
    const claims: JWTPayload = { kind: holder.kind, groups: holder.groups, scope: t.scope.join(' ') };
    // A delegated holder is named by `act`, the root by `sub` (RFC 8693 §4.1).
    const act = actClaim(holder.chain);
    if (act) claims.act = act;
    const exp = Math.floor(t.expiresAt.getTime() / 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: this.key.kid, typ: 'JWT' })
      .setIssuer(this.cfg.issuer)
      .setAudience(WARDEN_AUDIENCE)
      .setSubject(act ? holder.rootSubject : holder.subject)
      .setJti(jti)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .sign(this.key.privateKey);
    await this.store.db
      .insertInto('tokens')
      .values({
        jti,
        parent_jti: t.parentJti,
        subject: holder.subject,
        kind: holder.kind,
        groups_json: JSON.stringify(holder.groups),
        scope_json: JSON.stringify(t.scope),
        chain_json: JSON.stringify(holder.chain),
        issued_at: new Date(now).toISOString(),
        expires_at: new Date(exp * 1000).toISOString(),
        revoked_at: null,
        issued_via: `${from.via}:${from.via === 'oidc' ? from.issuer : (from.tokenId ?? '')}`,
        root_subject: holder.rootSubject,
        parent_session_id: t.parentSessionId,
      })
      .execute();
    return { token, jti, expiresAt: new Date(exp * 1000) };
  }

  async verify(token: string): Promise<Identity> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        issuer: this.cfg.issuer,
        audience: WARDEN_AUDIENCE,
        algorithms: ['EdDSA'],
        clockTolerance: Math.round(this.cfg.clock_skew / 1000),
        requiredClaims: ['exp', 'jti', 'sub'],
      }));
    } catch (err) {
      throw mapJoseError(err, this.cfg.issuer);
    }
    const row = await this.store.db
      .selectFrom('tokens')
      .select(['revoked_at', 'parent_jti', 'chain_json', 'issued_via', 'parent_session_id'])
      .where('jti', '=', payload.jti as string)
      .executeTakeFirst();
    // A correctly signed token the store never recorded was not minted by this deployment's API.
    if (!row) throw new AuthError('unknown_key', 'token is not known to this Warden', this.cfg.issuer);
    if (row.revoked_at) throw new AuthError('revoked', 'token was revoked', this.cfg.issuer);
    const dead = await this.deadAncestor(row);
    if (dead) throw new AuthError('revoked', dead, this.cfg.issuer);
    const kind = KINDS.includes(payload.kind as IdentityKind) ? (payload.kind as IdentityKind) : 'service';
    const groups = Array.isArray(payload.groups)
      ? payload.groups.filter((g): g is string => typeof g === 'string')
      : [];
    const chain: string[] = JSON.parse(row.chain_json);
    const holder = actorOfAct(payload.act);
    const subject = holder ?? (payload.sub as string);
    // `root` is how tokens minted before `act` named the root of their chain.
    const rootSubject = holder
      ? (payload.sub as string)
      : typeof payload.root === 'string'
        ? payload.root
        : subject;
    return {
      subject,
      kind,
      groups,
      rootSubject,
      chain,
      via: 'warden_token',
      tokenId: payload.jti as string,
      parentTokenId: row.parent_jti,
      parentSessionId: row.parent_session_id,
      issuer: this.cfg.issuer,
      scope: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
      expiresAt: payload.exp ? new Date(payload.exp * 1000) : null,
      // A delegate acts for its root with a user's rights only: admin, auditor and approver
      // roles are never handed down a chain, whatever groups it carries.
      roles: chain.length > 0 ? ['user'] : rolesFor(groups, this.cfg.roles),
    };
  }

  /**
   * Why token `jti` may no longer be used, if it may not: it, a token it was minted from, or the
   * API key at its root was revoked (undefined while it stands). What live sessions are re-checked with.
   */
  async revocation(jti: string): Promise<string | undefined> {
    const row = await this.store.db
      .selectFrom('tokens')
      .select(['revoked_at', 'parent_jti', 'issued_via'])
      .where('jti', '=', jti)
      .executeTakeFirst();
    if (!row) return 'token is not known to this Warden';
    if (row.revoked_at) return 'token was revoked';
    return this.deadAncestor(row);
  }

  /** The tokens `jti` was minted from, its parent first (empty for a token minted from a credential). */
  async ancestors(jti: string): Promise<TokenView[]> {
    const out: TokenView[] = [];
    let current = await this.get(jti);
    while (current?.parent_jti && out.length <= 64) {
      current = await this.get(current.parent_jti);
      if (current) out.push(current);
    }
    return out;
  }

  /**
   * Why a token's lineage no longer stands, if it does not: a token it was minted from, or
   * the API key at its root, was revoked. Checked on every use, so a child minted while its
   * parent was being revoked (and missed by the cascade) dies with it all the same.
   */
  private async deadAncestor(row: {
    parent_jti: string | null;
    issued_via: string;
  }): Promise<string | undefined> {
    let current = row;
    for (let depth = 0; current.parent_jti !== null; depth++) {
      if (depth > 64) return 'token lineage is too deep';
      const parent = await this.store.db
        .selectFrom('tokens')
        .select(['revoked_at', 'parent_jti', 'issued_via'])
        .where('jti', '=', current.parent_jti)
        .executeTakeFirst();
      if (!parent || parent.revoked_at) return 'a token this one was minted from was revoked';
      current = parent;
    }
    if (current.issued_via.startsWith('api_key:')) {
      const key = await this.store.db
        .selectFrom('api_keys')
        .select(['revoked_at'])
        .where('id', '=', current.issued_via.slice('api_key:'.length))
        .executeTakeFirst();
      if (!key || key.revoked_at) return 'the API key this token was minted from was revoked';
    }
    return undefined;
  }

  /** Revokes every token minted directly from a credential (e.g. `api_key:<id>`) and their descendants. */
  async revokeMintedFrom(issuedVia: string): Promise<string[]> {
    const roots = await this.store.db
      .selectFrom('tokens')
      .select('jti')
      .where('issued_via', '=', issuedVia)
      .execute();
    const revoked: string[] = [];
    for (const r of roots) revoked.push(...(await this.revoke(r.jti)));
    return revoked;
  }

  /** Revokes every live token held by `subject` or rooted at it, and their descendants (a subject disabled). */
  async revokeSubject(subject: string): Promise<string[]> {
    // Tokens minted straight from the subject's API keys are its own, whatever their holder.
    const keys = await this.store.db
      .selectFrom('api_keys')
      .select('id')
      .where('name', '=', subject)
      .execute();
    const minted = keys.map((k) => `api_key:${k.id}`);
    const rows = await this.store.db
      .selectFrom('tokens')
      .select('jti')
      .where((eb) =>
        eb.or([
          eb('subject', '=', subject),
          eb('root_subject', '=', subject),
          ...(minted.length > 0 ? [eb('issued_via', 'in', minted)] : []),
        ]),
      )
      .where('revoked_at', 'is', null)
      .execute();
    const revoked: string[] = [];
    for (const r of rows) revoked.push(...(await this.revoke(r.jti)));
    return revoked;
  }

  /** Revokes a token and every token minted from it, returning the jtis newly revoked. */
  async revoke(jti: string): Promise<string[]> {
    const now = new Date().toISOString();
    const revoked: string[] = [];
    let frontier = [jti];
    const seen = new Set<string>();
    while (frontier.length > 0) {
      const batch = frontier.filter((j) => !seen.has(j));
      for (const j of batch) seen.add(j);
      if (batch.length === 0) break;
      const live = await this.store.db
        .selectFrom('tokens')
        .select('jti')
        .where('jti', 'in', batch)
        .where('revoked_at', 'is', null)
        .execute();
      if (live.length > 0) {
        await this.store.db
          .updateTable('tokens')
          .set({ revoked_at: now })
          .where(
            'jti',
            'in',
            live.map((r) => r.jti),
          )
          .execute();
        revoked.push(...live.map((r) => r.jti));
      }
      const children = await this.store.db
        .selectFrom('tokens')
        .select('jti')
        .where('parent_jti', 'in', batch)
        .execute();
      frontier = children.map((c) => c.jti);
    }
    // Also when nothing was left to revoke here: another gateway may have written it, and this
    // one may still hold the token as verified.
    this.revocations.fire();
    return revoked;
  }

  async get(jti: string): Promise<TokenView | undefined> {
    const row = await this.store.db
      .selectFrom('tokens')
      .selectAll()
      .where('jti', '=', jti)
      .executeTakeFirst();
    return row ? tokenView(row) : undefined;
  }

  async list(filter: { subject?: string; includeInactive?: boolean }): Promise<TokenView[]> {
    let q = this.store.db.selectFrom('tokens').selectAll().orderBy('issued_at', 'desc').limit(1000);
    if (filter.subject) q = q.where('subject', '=', filter.subject);
    if (!filter.includeInactive) {
      q = q.where('revoked_at', 'is', null).where('expires_at', '>', new Date().toISOString());
    }
    return (await q.execute()).map(tokenView);
  }
}

function tokenView(row: Selectable<TokensTable>): TokenView {
  return {
    jti: row.jti,
    parent_jti: row.parent_jti,
    subject: row.subject,
    kind: row.kind,
    groups: JSON.parse(row.groups_json),
    scope: JSON.parse(row.scope_json),
    chain: JSON.parse(row.chain_json),
    issued_at: row.issued_at,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    issued_via: row.issued_via,
    root_subject: row.root_subject ?? row.subject,
    parent_session_id: row.parent_session_id,
  };
}
