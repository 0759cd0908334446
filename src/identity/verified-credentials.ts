// Credentials verified a moment ago, so that a caller who connects again and again (a pool, a CI
// job, an agent, `pgbench -C`) is not verified from scratch each time: no store read for an API key,
// no signature check and revocation walk for a token. An entry lives `ttlMs` at most, never past
// the credential's own expiry, and a revocation made through this gateway drops them all at once.
// A revocation made through another gateway sharing the store is seen here within `ttlMs`.
import { hash } from 'node:crypto';
import { deepFreeze } from '../freeze.js';
import { RecentReads } from '../store/recent-reads.js';
import type { Identity } from './identity.js';

export class VerifiedCredentials {
  /** By the credential's SHA-256: the secret itself is not kept. */
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

  /** The identity `credential` was verified as, while that stands. */
  get(credential: string, now = Date.now()): Identity | undefined {
    return this.reads.enabled ? this.reads.get(keyOf(credential), now) : undefined;
  }

  /**
   * Keeps what `credential` was just verified as, unless a revocation came since `mark` (the
   * verification may have read the store before it). The identity kept is frozen: every session
   * the credential opens shares it.
   */
  keep(credential: string, identity: Identity, mark: number, now = Date.now()): Identity {
    if (!this.reads.enabled) return identity;
    const frozen = deepFreeze(identity);
    const expires = identity.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
    this.reads.keep(keyOf(credential), frozen, mark, now, expires);
    return frozen;
  }

  /** A credential was revoked here: nothing verified before now is served again. */
  forget(): void {
    this.reads.forget();
  }
}

const keyOf = (credential: string): string => hash('sha256', credential, 'base64');

/** Told of every revocation its owner writes, once it is written: a cache of verifications listens. */
export class RevocationSignal {
  private readonly listeners = new Set<() => void>();

  listen(fn: () => void): void {
    this.listeners.add(fn);
  }

  fire(): void {
    for (const fn of this.listeners) fn();
  }
}
