// Callbacks told of a change on a desk (a review decided, a grant ended). One that throws is
// reported and keeps neither the others nor the already-committed change from going on.
export class Listeners<T> {
  private readonly set = new Set<(value: T) => void>();

  constructor(private readonly onError?: (err: Error) => void) {}

  get size(): number {
    return this.set.size;
  }

  /** Adds `listener`; returns the call that removes it. */
  add(listener: (value: T) => void): () => void {
    this.set.add(listener);
    return () => {
      this.set.delete(listener);
    };
  }

  clear(): void {
    this.set.clear();
  }

  emit(value: T): void {
    for (const l of this.set) {
      try {
        l(value);
      } catch (err) {
        this.onError?.(err as Error);
      }
    }
  }
}
