// Credentials verified a moment ago, so that a caller who connects again and again (a pool, a CI
// job, an agent, `pgbench -C`) is not verified from scratch each time: no store read for an API key,
// no signature check and revocation walk for a token. An entry lives `ttlMs` at most, never past
// the credential's own expiry, and a revocation made through this gateway drops them all at once.
// A revocation made through another gateway sharing the store is seen here within `ttlMs`.
import { createHash } from 'node:crypto';
import type { Identity } from './identity.js';

interface Entry {
  identity: Identity;
  until: number;
}

export class VerifiedCredentials {
  /** By the credential's SHA-256: the secret itself is not kept. Oldest first (insertion order). */
  private readonly entries = new Map<string, Entry>();
  /** Grows with every revocation: a verification that began before one must not be kept. */
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** Where a verification starts: what `keep` needs to know whether a revocation came meanwhile. */
  mark(): number {
    return this.generation;
  }

  /** The identity `credential` was verified as, while that stands. */
  get(credential: string, now = Date.now()): Identity | undefined {
    if (!this.enabled) return undefined;
    const key = keyOf(credential);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until > now) return entry.identity;
    this.entries.delete(key);
    return undefined;
  }

  /**
   * Keeps what `credential` was just verified as, unless a revocation came since `mark` (the
   * verification may have read the store before it). The identity is frozen: every session the
   * credential opens shares it.
   */
  keep(credential: string, identity: Identity, mark: number, now = Date.now()): Identity {
    if (!this.enabled || mark !== this.generation) return identity;
    const expires = identity.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
    const until = Math.min(now + this.ttlMs, expires);
    if (until <= now) return identity;
    const key = keyOf(credential);
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.evict(now);
    const kept = freezeIdentity(identity);
    this.entries.set(key, { identity: kept, until });
    return kept;
  }

  /** A credential was revoked here: nothing verified before now is served again. */
  forget(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops expired entries; when none has, the oldest one. */
  private evict(now: number): void {
    for (const [key, entry] of this.entries) if (entry.until <= now) this.entries.delete(key);
    if (this.entries.size < this.maxEntries) return;
    const oldest = this.entries.keys().next();
    if (!oldest.done) this.entries.delete(oldest.value);
  }
}

const keyOf = (credential: string): string => createHash('sha256').update(credential).digest('base64');

function freezeIdentity(identity: Identity): Identity {
  Object.freeze(identity.groups);
  Object.freeze(identity.chain);
  Object.freeze(identity.scope);
  Object.freeze(identity.roles);
  return Object.freeze(identity);
}

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
