// Caches SQL facts in two bounded LRUs: the exact text first, then a normalized key (literals
// replaced) for texts an analyzer proves share their facts, so a repeated statement costs a lookup.

import { deepFreeze } from '../../freeze.js';
import type { SqlFacts } from '../facts.js';

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
class Lru<V> {
  private readonly map = new Map<string, Entry<V>>();
  private oldest: Entry<V> | null = null;
  private newest: Entry<V> | null = null;
  private chars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxChars: number,
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

export interface FactsCacheOptions {
  /** Fresh facts for a text; called on a miss with the normalized key already computed (or null). */
  analyze: (sql: string, normalized: string | null) => SqlFacts;
  /**
   * The text with its literals replaced, or null when it has none worth sharing. Two texts with
   * the same key must differ only in constants; `shareable` then says whether facts ignore them.
   */
  normalize?: (sql: string) => string | null;
  /** Whether these facts hold for every text with the same normalized key (after `rebase`). */
  shareable?: (facts: SqlFacts) => boolean;
  /**
   * The shared facts made right for `sql`, a text with the same normalized key (the same object
   * when nothing in them depends on where the text's constants sit), or null when they cannot
   * be: `sql` is then analyzed afresh.
   */
  rebase?: (shared: SqlFacts, sql: string) => SqlFacts | null;
  /** Per level. */
  maxEntries?: number;
  /** Per level, summed key length in UTF-16 units: statement texts can be megabytes. */
  maxChars?: number;
}

/** Where analyses were answered from since start-up, and how full each level is. */
export interface FactsCacheStats {
  exactHits: number;
  normalizedHits: number;
  misses: number;
  exactEntries: number;
  normalizedEntries: number;
}

export class FactsCache {
  private readonly exact: Lru<SqlFacts>;
  private readonly shapes: Lru<SqlFacts>;
  private readonly counts = { exactHits: 0, normalizedHits: 0, misses: 0 };

  constructor(private readonly options: FactsCacheOptions) {
    const entries = options.maxEntries ?? 10_000;
    const chars = options.maxChars ?? 16 * 1024 * 1024;
    this.exact = new Lru(entries, chars);
    this.shapes = new Lru(entries, chars);
  }

  /**
   * Facts for `sql`, frozen because they are shared: equal texts, and texts with the same
   * normalized key whose facts are shareable, get the same object (the Decider caches by it).
   */
  get(sql: string): SqlFacts {
    const exact = this.exact.get(sql);
    if (exact) {
      this.counts.exactHits++;
      return exact;
    }
    const key = this.options.normalize?.(sql) ?? null;
    const shared = key === null ? undefined : this.shapes.get(key);
    const rebased = shared && (this.options.rebase ? this.options.rebase(shared, sql) : shared);
    if (rebased) {
      this.counts.normalizedHits++;
      const facts = rebased === shared ? shared : deepFreeze(rebased);
      this.exact.set(sql, facts);
      return facts;
    }
    this.counts.misses++;
    const facts = deepFreeze(this.options.analyze(sql, key));
    this.exact.set(sql, facts);
    if (key !== null && (this.options.shareable?.(facts) ?? false)) this.shapes.set(key, facts);
    return facts;
  }

  stats(): FactsCacheStats {
    return { ...this.counts, exactEntries: this.exact.size, normalizedEntries: this.shapes.size };
  }
}
