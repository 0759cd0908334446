// policy_versions: the rule set applied through the API, one immutable row per change. The
// newest row is in force; older rows are the history `warden policy history` shows.
import type { Selectable } from 'kysely';
import { type Rule, ruleSet } from '../config/rules.js';
import { canonicalJson } from '../crypto/canonical.js';
import { ConflictError } from './connections.js';
import type { Store } from './store.js';
import type { PolicyVersionsTable } from './tables.js';

export interface PolicyVersion {
  version: number;
  rules: Rule[];
  actor: Record<string, unknown>;
  comment: string;
  created_at: string;
}

function toVersion(row: Selectable<PolicyVersionsTable>): PolicyVersion {
  return {
    version: row.version,
    // Stored as written (durations as "5m", defaults unfilled) and parsed on read, so a value is
    // never parsed twice and a row written by an older release gets today's defaults.
    rules: ruleSet.parse(JSON.parse(row.rules_json)),
    actor: JSON.parse(row.actor_json) as Record<string, unknown>,
    comment: row.comment,
    created_at: row.created_at,
  };
}

export class PolicyVersions {
  constructor(private readonly store: Store) {}

  /** The version number in force (0 before any rule was applied); one indexed read, cheap to poll. */
  async currentVersion(): Promise<number> {
    const row = await this.store.db
      .selectFrom('policy_versions')
      .select((eb) => eb.fn.max('version').as('v'))
      .executeTakeFirst();
    return Number(row?.v ?? 0);
  }

  async current(): Promise<PolicyVersion | undefined> {
    const row = await this.store.db
      .selectFrom('policy_versions')
      .selectAll()
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toVersion(row) : undefined;
  }

  async get(version: number): Promise<PolicyVersion | undefined> {
    const row = await this.store.db
      .selectFrom('policy_versions')
      .selectAll()
      .where('version', '=', version)
      .executeTakeFirst();
    return row ? toVersion(row) : undefined;
  }

  /** Newest first. */
  async list(limit = 100): Promise<PolicyVersion[]> {
    const rows = await this.store.db
      .selectFrom('policy_versions')
      .selectAll()
      .orderBy('version', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toVersion);
  }

  /**
   * Stores `input` (a rule set as written, already validated by the caller) as the next version, serialized against every other gateway on the store.
   * `ifVersion` makes it conditional (optimistic concurrency): a stale editor gets a conflict
   * instead of silently overwriting a change it never saw. `differs` runs inside the same lock
   * with the version it replaces, so what changed is derived from the true predecessor.
   */
  async append(
    input: readonly unknown[],
    by: { actor: Record<string, unknown>; comment: string; ifVersion?: number | undefined },
    /** Decides, under the lock, whether `input` differs from the version in force (false: no new version). */
    differs: (previous: PolicyVersion | undefined) => boolean,
  ): Promise<{ previous: PolicyVersion | undefined; version: number; written: boolean }> {
    return this.store.serialized(async (tx) => {
      const row = await tx
        .selectFrom('policy_versions')
        .selectAll()
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst();
      const previous = row ? toVersion(row) : undefined;
      const current = previous?.version ?? 0;
      if (by.ifVersion !== undefined && by.ifVersion !== current) {
        throw new ConflictError(
          `the rules changed since version ${by.ifVersion} (now version ${current}); review the change and apply again`,
        );
      }
      if (!differs(previous)) return { previous, version: current, written: false };
      const version = current + 1;
      await tx
        .insertInto('policy_versions')
        .values({
          version,
          rules_json: canonicalJson(input),
          actor_json: canonicalJson(by.actor),
          comment: by.comment,
          created_at: new Date().toISOString(),
        })
        .execute();
      return { previous, version, written: true };
    });
  }
}
