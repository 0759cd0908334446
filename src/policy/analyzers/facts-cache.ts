// Caches SQL facts in two bounded LRUs: the exact text first, then a normalized key (literals
// replaced) for texts an analyzer proves share their facts, so a repeated statement costs a lookup.

import { deepFreeze } from '../../freeze.js';
import { Lru } from '../../lru.js';
import type { SqlFacts } from '../facts.js';

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
