// Credentials verified a moment ago, so that a caller who connects again and again (a pool, a CI
// job, an agent, `pgbench -C`) is not verified from scratch each time: no store read for an API key,
// no signature check and revocation walk for a token. An entry lives `ttlMs` at most, never past
// the credential's own expiry, and a revocation made through this gateway drops them all at once.
// A revocation made through another gateway sharing the store is seen here within `ttlMs`.
import { sha256Hex } from '../crypto/canonical.js';
import { deepFreeze } from '../freeze.js';
import { RecentReads } from '../store/recent-reads.js';
import type { Identity } from './identity.js';

export class VerifiedCredentials {
  /** By the credential's SHA-256 (`key`). */
  private readonly reads: RecentReads<Identity>;

  constructor(ttlMs: number, maxEntries = 10_000) {
    this.reads = new RecentReads(ttlMs, maxEntries);
  }

  get size(): number {
    return this.reads.size;
  }

  /** Where a verification starts: what `keep` needs to know whether a revocation came meanwhile. */
  mark(): number {
    return this.reads.mark();
  }

  /**
   * What `credential` is kept under (its SHA-256: the secret itself is not kept), or null while the
   * cache is off; computed once per login, for `get` and then `keep`.
   */
  key(credential: string): string | null {
    return this.reads.enabled ? sha256Hex(credential) : null;
  }

  /** The identity the credential of `key` was verified as, while that stands. */
  get(key: string, now = Date.now()): Identity | undefined {
    return this.reads.get(key, now);
  }

  /**
   * Keeps what the credential of `key` was just verified as, unless a revocation came since `mark`
   * (the verification may have read the store before it). The identity kept is frozen: every
   * session the credential opens shares it.
   */
  keep(key: string, identity: Identity, mark: number, now = Date.now()): Identity {
    const frozen = deepFreeze(identity);
    const expires = identity.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
    this.reads.keep(key, frozen, mark, now, expires);
    return frozen;
  }

  /** A credential was revoked here: nothing verified before now is served again. */
  forget(): void {
    this.reads.forget();
  }
}
