// The people and service accounts an admin disabled. Every credential naming one of them (as the
// caller, the root of its chain or any delegate in it) is refused, on every gateway of the store.
import type { Store } from './store.js';

export interface DisabledSubjectView {
  subject: string;
  disabled_at: string;
  disabled_by: string;
  reason: string;
}

/** How stale the in-memory copy may get: a disable made through another gateway applies within it. */
const REFRESH_MS = 1000;

export class DisabledSubjects {
  private known = new Map<string, DisabledSubjectView>();
  private loadedAt = 0;
  /** Grows with every change made here: a load that began before one must not be taken as current. */
  private generation = 0;
  private loading: { generation: number; done: Promise<void> } | undefined;

  constructor(private readonly store: Store) {}

  /** Disables `subject`; false when it already was (the first reason stands). */
  async disable(subject: string, by: string, reason: string): Promise<boolean> {
    const existing = await this.get(subject);
    if (existing) return false;
    await this.store.db
      .insertInto('disabled_subjects')
      .values({ subject, disabled_at: new Date().toISOString(), disabled_by: by, reason })
      .onConflict((oc) => oc.column('subject').doNothing())
      .execute();
    this.changed();
    return true;
  }

  /** Enables `subject` again; false when it was not disabled. */
  async enable(subject: string): Promise<boolean> {
    const res = await this.store.db
      .deleteFrom('disabled_subjects')
      .where('subject', '=', subject)
      .executeTakeFirst();
    this.changed();
    return Number(res.numDeletedRows) > 0;
  }

  async get(subject: string): Promise<DisabledSubjectView | undefined> {
    return this.store.db
      .selectFrom('disabled_subjects')
      .selectAll()
      .where('subject', '=', subject)
      .executeTakeFirst();
  }

  async list(): Promise<DisabledSubjectView[]> {
    return this.store.db.selectFrom('disabled_subjects').selectAll().orderBy('disabled_at', 'desc').execute();
  }

  /**
   * Why a caller naming these subjects (itself, its root, its delegates) is refused, or undefined.
   * Read from a copy at most REFRESH_MS old: the table is small and asked on every authentication.
   */
  async refusal(subjects: readonly string[]): Promise<string | undefined> {
    if (Date.now() - this.loadedAt > REFRESH_MS) await this.refresh();
    for (const s of subjects) {
      const d = this.known.get(s);
      if (d) return `${s} was disabled by ${d.disabled_by}: ${d.reason}`;
    }
    return undefined;
  }

  private changed(): void {
    this.generation++;
    this.loadedAt = 0;
  }

  private refresh(): Promise<void> {
    const generation = this.generation;
    if (this.loading?.generation === generation) return this.loading.done;
    const done: Promise<void> = this.list()
      .then((rows) => {
        // A change made here while the rows were read: they may predate it, read them again.
        if (generation !== this.generation) return this.refresh();
        this.known = new Map(rows.map((r) => [r.subject, r]));
        this.loadedAt = Date.now();
      })
      .finally(() => {
        if (this.loading?.done === done) this.loading = undefined;
      });
    this.loading = { generation, done };
    return done;
  }
}
