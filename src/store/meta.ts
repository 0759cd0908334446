// warden_meta: small facts about the deployment every gateway sharing the store must agree on
// (which seal key the secrets are under, which key signs tokens and checkpoints).
import type { Store } from './store.js';

export class Meta {
  constructor(private readonly store: Store) {}

  async get(key: string): Promise<string | undefined> {
    const row = await this.store.db
      .selectFrom('warden_meta')
      .select('value')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.value;
  }

  /** Sets `key` unless some gateway already did; returns the value that holds now. */
  async claim(key: string, value: string): Promise<string> {
    await this.store.db
      .insertInto('warden_meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    return (await this.get(key)) ?? value;
  }

  async set(key: string, value: string): Promise<void> {
    await this.store.db
      .insertInto('warden_meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }
}
