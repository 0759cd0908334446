// Revocations this gateway writes, told to whoever keeps what a revoked credential could still
// open: the cache of verified credentials listens to the API keys' and the Warden tokens' signals.

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
