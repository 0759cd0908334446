// A bounded map that lets its least recently used entries go: the SQL facts caches and the SCRAM
// keys kept for target logins.

/** An entry of the LRU's recency list. */
interface Entry<V> {
  readonly key: string;
  value: V;
  /** Used less recently (null: the least recently used entry). */
  older: Entry<V> | null;
  /** Used more recently (null: the most recently used entry). */
  newer: Entry<V> | null;
}

/**
 * Bounded by entry count and by the summed length of the keys; the least recently used goes
 * first. Recency is a linked list beside the Map: finding the oldest as the Map's first key costs
 * a walk over every key deleted since the Map last compacted (about 5 µs an insertion at 10,000
 * entries, when every statement text is new), while unlinking a list end costs nothing.
 */
export class Lru<V> {
  private readonly map = new Map<string, Entry<V>>();
  private oldest: Entry<V> | null = null;
  private newest: Entry<V> | null = null;
  private chars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxChars = Number.POSITIVE_INFINITY,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    this.touch(entry);
    return entry.value;
  }

  set(key: string, value: V): void {
    // One huge text must not flush everything else, so it is simply not kept.
    if (key.length > this.maxChars) return;
    const known = this.map.get(key);
    if (known !== undefined) {
      known.value = value;
      this.touch(known);
      return;
    }
    const entry: Entry<V> = { key, value, older: this.newest, newer: null };
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
    this.map.set(key, entry);
    this.chars += key.length;
    while (this.oldest && (this.map.size > this.maxEntries || this.chars > this.maxChars)) {
      const gone = this.oldest;
      this.unlink(gone);
      this.map.delete(gone.key);
      this.chars -= gone.key.length;
    }
  }

  /** Makes `entry` the most recently used. */
  private touch(entry: Entry<V>): void {
    if (entry === this.newest) return;
    this.unlink(entry);
    entry.older = this.newest;
    entry.newer = null;
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
  }

  private unlink(entry: Entry<V>): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
  }
}
