// What the store said a moment ago, kept for `ttlMs` so that a hot path (every login) does not
// read the same row again and again. Whoever writes that data through this process calls
// forget(); a write made elsewhere (another gateway sharing the store) is seen within `ttlMs`.

interface Entry<V> {
  value: V;
  until: number;
}

export class RecentReads<V> {
  /** Oldest first (insertion order), which is what eviction drops. */
  private readonly entries = new Map<string, Entry<V>>();
  /** Grows with every forget(): a read that began before one must not be kept. */
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Taken before a read: what keep() needs to know whether a write came meanwhile. */
  mark(): number {
    return this.generation;
  }

  get(key: string, now = Date.now()): V | undefined {
    if (!this.enabled) return undefined;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until > now) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  /**
   * Keeps `value` until `ttlMs` from now, or `notAfter` if sooner, unless a forget() came since
   * `mark` (the read may have seen the store before that write). True when kept.
   */
  keep(key: string, value: V, mark: number, now = Date.now(), notAfter = Number.POSITIVE_INFINITY): boolean {
    if (!this.enabled || mark !== this.generation) return false;
    const until = Math.min(now + this.ttlMs, notAfter);
    if (until <= now) return false;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.evict(now);
    this.entries.set(key, { value, until });
    return true;
  }

  /** The data changed here: nothing read before now is served again. */
  forget(): void {
    this.generation++;
    this.entries.clear();
  }

  /**
   * Drops entries from the oldest on, while they have expired or there is no room: entries share
   * one time to live, so the oldest expire first and this stops at the first live one.
   */
  private evict(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.until > now && this.entries.size < this.maxEntries) return;
      this.entries.delete(key);
    }
  }
}
