// Who is calling: the one Identity every part of Warden reasons about, however the caller
// authenticated, and the roles its groups map to.
import type { Config } from '../config/schema.js';

export const KINDS = ['human', 'service', 'agent'] as const;
export type IdentityKind = (typeof KINDS)[number];

export const ROLES = ['admin', 'auditor', 'approver', 'user'] as const;
export type Role = (typeof ROLES)[number];

export type CredentialKind = 'api_key' | 'oidc' | 'warden_token';

export interface Identity {
  subject: string;
  kind: IdentityKind;
  groups: string[];
  /** The identity at the root of a delegation chain (the subject itself for a direct caller). */
  rootSubject: string;
  /**
   * Actors between the root and this caller, outermost first; empty for a direct caller.
   * Ordered from the root outward: the root's first delegate first, this caller last
   * (root alice → agent-a → agent-b: chain [agent-a, agent-b] for agent-b). Its length is the
   * delegation depth.
   */
  chain: string[];
  via: CredentialKind;
  /** jti of a Warden token, id of an API key, or the OIDC token's jti when it has one. */
  tokenId: string | null;
  parentTokenId: string | null;
  /** The Warden session the token was minted in (a delegate's parent session), when known. */
  parentSessionId: string | null;
  /** OIDC issuer, or Warden's own issuer. */
  issuer: string;
  /** What the credential may reach; `*` is everything the caller's roles allow. */
  scope: string[];
  expiresAt: Date | null;
  roles: Role[];
}

/**
 * Groups that always carry a role, whatever the config maps: the bootstrap key uses them.
 * The `warden:` prefix is reserved for credentials Warden issues itself; external identity
 * providers cannot grant it (see `withoutReservedGroups`).
 */
export const BUILTIN_ROLE_GROUPS: Record<Exclude<Role, 'user'>, string> = {
  admin: 'warden:admin',
  auditor: 'warden:auditor',
  approver: 'warden:approver',
};

export const RESERVED_GROUP_PREFIX = 'warden:';

/** Drops reserved groups from what an external issuer claims. */
export function withoutReservedGroups(groups: string[]): string[] {
  return groups.filter((g) => !g.startsWith(RESERVED_GROUP_PREFIX));
}

export function rolesFor(groups: string[], roles: Config['identity']['roles']): Role[] {
  const out: Role[] = [];
  for (const role of ['admin', 'auditor', 'approver'] as const) {
    if (groups.includes(BUILTIN_ROLE_GROUPS[role]) || roles[role].some((g) => groups.includes(g)))
      out.push(role);
  }
  out.push('user');
  return out;
}

/** Takes anything with roles: the web console asks it of the API's identity view too. */
export function hasRole(identity: Pick<Identity, 'roles'>, role: Role): boolean {
  // Admins can do everything an auditor or approver can.
  return identity.roles.includes(role) || (role !== 'user' && identity.roles.includes('admin'));
}

/** Whether a requested scope entry is covered by one the caller holds (`*` and `prefix*` globs). */
export function scopeCovers(held: string[], requested: string): boolean {
  return held.some(
    (h) => h === '*' || h === requested || (h.endsWith('*') && requested.startsWith(h.slice(0, -1))),
  );
}

export function actorOf(identity: Identity, address?: string | null) {
  return {
    subject: identity.subject,
    kind: identity.kind,
    chain: identity.chain,
    root: identity.rootSubject,
    token_id: identity.tokenId,
    parent_token_id: identity.parentTokenId,
    ...(identity.parentSessionId ? { parent_session: identity.parentSessionId } : {}),
    address: address ?? null,
  };
}
