// The gateways running on a store and when each was last heard from: a gateway that stops
// answering (crash, lost host) is found by the others, which end the sessions it carried.
import type { Store } from './store.js';

export class Gateways {
  constructor(private readonly store: Store) {}

  /** Says `id` is alive now, registering it when its row is missing (first beat, or swept while unreachable). */
  async beat(g: { id: string; host: string; pid: number; startedAt: string }): Promise<void> {
    const now = new Date().toISOString();
    const res = await this.store.db
      .updateTable('gateways')
      .set({ seen_at: now })
      .where('id', '=', g.id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) return;
    await this.store.db
      .insertInto('gateways')
      .values({ id: g.id, host: g.host, pid: g.pid, started_at: g.startedAt, seen_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ seen_at: now }))
      .execute();
  }

  /** Gateways not heard from since `before`, other than `self`. */
  async silentSince(before: string, self: string): Promise<string[]> {
    const rows = await this.store.db
      .selectFrom('gateways')
      .select('id')
      .where('seen_at', '<', before)
      .where('id', '!=', self)
      .execute();
    return rows.map((r) => r.id);
  }

  /** Removes gateway `id` if it is still silent since `before`; true for the one caller that did. */
  async claim(id: string, before: string): Promise<boolean> {
    const res = await this.store.db
      .deleteFrom('gateways')
      .where('id', '=', id)
      .where('seen_at', '<', before)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Forgets gateway `id` (it is stopping). */
  async remove(id: string): Promise<void> {
    await this.store.db.deleteFrom('gateways').where('id', '=', id).execute();
  }
}
