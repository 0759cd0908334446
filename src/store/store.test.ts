import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { Keyring } from '../crypto/seal.js';
import { DIALECTS, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { ConflictError, Connections, NotFoundError } from './connections.js';
import { Sessions } from './sessions.js';
import { Store } from './store.js';

const input = (name: string, password?: string) => ({
  name,
  protocol: 'postgres' as const,
  target: { host: 'db.internal', port: 5432, database: 'orders', tls: { mode: 'verify-full' as const } },
  access: 'open' as const,
  pool: 'none' as const,
  tags: ['prod'],
  description: 'orders database',
  credentials: { user: 'warden_rw', ...(password ? { password } : {}) },
});

for (const dialect of DIALECTS) {
  describe(`store (${dialect})`, () => {
    let fx: StoreFixture;
    let store: Store;
    let ring: Keyring;
    let connections: Connections;

    before(async () => {
      fx = await storeFixture(dialect);
      store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
      ring = new Keyring({ kind: 'file', path: join(fx.dataDir, 'seal.key'), generate: true });
      connections = new Connections(store, ring);
    });
    after(async () => {
      await store.close();
      await fx.cleanup();
    });

    it('runs its migrations once and is a no-op when reopened', async () => {
      assert.equal(store.dialect, dialect);
      const again = await Store.open({ url: fx.url, dataDir: fx.dataDir });
      await again.ping();
      await again.close();
    });

    if (dialect === 'postgres') {
      it('refuses writeSync, which only the embedded store has, with an error saying so', async () => {
        assert.equal(store.embedded, false);
        let ran = false;
        await assert.rejects(
          store.writeSync(() => {
            ran = true;
          }),
          /writeSync needs the embedded SQLite store/,
        );
        assert.equal(ran, false);
      });
    } else {
      const notes = async () =>
        (await sql<{ note: string }>`select note from scratch order by id`.execute(store.db)).rows.map(
          (r) => r.note,
        );

      it('runs writeSync in one transaction: a throw rolls back what it inserted', async () => {
        assert.equal(store.embedded, true);
        await sql`create table scratch (id integer primary key autoincrement, note text not null)`.execute(
          store.db,
        );
        const written = await store.writeSync((prepare) => {
          const insert = prepare('insert into scratch (note) values (?)');
          assert.equal(prepare('insert into scratch (note) values (?)'), insert, 'prepared once');
          insert.run('kept-1');
          insert.run('kept-2');
          return 'done';
        });
        assert.equal(written, 'done');
        await assert.rejects(
          store.writeSync((prepare) => {
            const insert = prepare('insert into scratch (note) values (?)');
            insert.run('rolled-back-1');
            insert.run('rolled-back-2');
            throw new Error('half way');
          }),
          /half way/,
        );
        // A failing statement rolls back the same way.
        await assert.rejects(
          store.writeSync((prepare) => {
            prepare('insert into scratch (note) values (?)').run('rolled-back-3');
            prepare('insert into scratch (note) values (?)').run(null);
          }),
          /NOT NULL/,
        );
        assert.deepEqual(await notes(), ['kept-1', 'kept-2']);
        // Neither left a transaction open: both ways of writing still work.
        await store.writeSync((prepare) => prepare('insert into scratch (note) values (?)').run('after'));
        await store.db.transaction().execute(async (tx) => {
          await sql`insert into scratch (note) values ('kysely-after')`.execute(tx);
        });
        assert.deepEqual(await notes(), ['kept-1', 'kept-2', 'after', 'kysely-after']);
      });

      it('waits for an open Kysely transaction instead of writing inside it', async () => {
        await sql`delete from scratch`.execute(store.db);
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
        let releaseSync!: () => void;
        const syncStarted = new Promise<void>((r) => {
          releaseSync = r;
        });
        const transaction = store.db.transaction().execute(async (tx) => {
          await sql`insert into scratch (note) values ('tx-1')`.execute(tx);
          releaseSync();
          await sleep(50);
          await sql`insert into scratch (note) values ('tx-2')`.execute(tx);
        });
        await syncStarted;
        const sync = store.writeSync((prepare) => {
          prepare('insert into scratch (note) values (?)').run('sync');
        });
        // A transaction begun after both waits its turn too.
        const after = store.db.transaction().execute(async (tx) => {
          await sql`insert into scratch (note) values ('tx-3')`.execute(tx);
        });
        await Promise.all([transaction, sync, after]);
        assert.deepEqual(await notes(), ['tx-1', 'tx-2', 'sync', 'tx-3']);
      });
    }

    it('stores a connection with its password sealed, never in clear', async () => {
      const view = await connections.create(input('orders-db', 'pg-Secret-1'), 'api');
      assert.deepEqual(view.credentials, { user: 'warden_rw', has_password: true });
      assert.equal(view.target.tls.mode, 'verify-full');
      const row = await store.db
        .selectFrom('connections')
        .selectAll()
        .where('name', '=', 'orders-db')
        .executeTakeFirstOrThrow();
      assert.ok(row.secret_sealed);
      assert.ok(!JSON.stringify(row).includes('pg-Secret-1'));
      assert.deepEqual(await connections.credentials('orders-db'), {
        user: 'warden_rw',
        password: 'pg-Secret-1',
      });
      await assert.rejects(connections.create(input('orders-db'), 'api'), ConflictError);
    });

    it('hands a gateway the view and, on demand, the credentials from one read', async () => {
      const found = await connections.forGateway('orders-db');
      assert.ok(found);
      assert.deepEqual(found.view, await connections.get('orders-db'));
      assert.deepEqual(found.credentials(), { user: 'warden_rw', password: 'pg-Secret-1' });
      assert.equal(await connections.forGateway('no-such-db'), undefined);
    });

    it('a sealed secret copied onto another connection does not open there', async () => {
      await connections.create(input('other-db'), 'api');
      const { secret_sealed } = await store.db
        .selectFrom('connections')
        .select('secret_sealed')
        .where('name', '=', 'orders-db')
        .executeTakeFirstOrThrow();
      await store.db
        .updateTable('connections')
        .set({ secret_sealed })
        .where('name', '=', 'other-db')
        .execute();
      await assert.rejects(connections.credentials('other-db'), /bound to another record/);
      const found = await connections.forGateway('other-db');
      assert.throws(() => found?.credentials(), /bound to another record/);
      await connections.remove('other-db');
    });

    it('updates fields, replaces and removes the password, and deletes', async () => {
      const { before: b, after: a } = await connections.update('orders-db', {
        tags: ['prod', 'pii'],
        credentials: { password: 'pg-Secret-2' },
      });
      assert.deepEqual(b.tags, ['prod']);
      assert.deepEqual(a.tags, ['prod', 'pii']);
      assert.equal((await connections.credentials('orders-db')).password, 'pg-Secret-2');
      await connections.update('orders-db', { credentials: { password: null } });
      assert.equal((await connections.get('orders-db'))?.credentials.has_password, false);
      await connections.remove('orders-db');
      assert.equal(await connections.get('orders-db'), undefined);
      await assert.rejects(connections.remove('orders-db'), NotFoundError);
    });

    it('syncs config-file connections: creates, updates, removes only its own', async () => {
      await connections.create(input('api-made'), 'api');
      let r = await connections.syncFromConfig([input('cfg-a', 'one'), input('cfg-b')]);
      assert.deepEqual(r, { created: ['cfg-a', 'cfg-b'], updated: [], removed: [] });
      r = await connections.syncFromConfig([input('cfg-a', 'one'), input('cfg-b')]);
      assert.deepEqual(r, { created: [], updated: [], removed: [] }, 'an unchanged config changes nothing');
      r = await connections.syncFromConfig([input('cfg-a', 'two')]);
      assert.deepEqual(r, { created: [], updated: ['cfg-a'], removed: ['cfg-b'] });
      assert.equal((await connections.credentials('cfg-a')).password, 'two');
      assert.equal((await connections.get('cfg-a'))?.source, 'config');
      assert.ok(await connections.get('api-made'), 'API-made connections are left alone');
      await assert.rejects(connections.syncFromConfig([input('api-made')]), /created through the API/);
    });

    it('re-seals every secret under the current key', async () => {
      await connections.create(input('reseal-me', 'pw-reseal'), 'api');
      const before = await connections.resealAll();
      assert.equal(before.resealed, 0, 'everything is already under the current key');
      const next = new Keyring({
        kind: 'env',
        current: Buffer.alloc(32, 7).toString('base64'),
        previous: [readFileSync(join(fx.dataDir, 'seal.key'), 'utf8').trim()],
      });
      const r = await new Connections(store, next).resealAll();
      assert.ok(r.resealed >= 2);
      assert.equal(r.resealed, r.total);
      assert.equal((await new Connections(store, next).credentials('reseal-me')).password, 'pw-reseal');
      const rows = await store.db
        .selectFrom('connections')
        .select('secret_sealed')
        .where('secret_sealed', 'is not', null)
        .execute();
      for (const row of rows) assert.equal(row.secret_sealed?.split('.')[1], next.currentId);
    });

    it('lists sessions visible to a subject: their own and those rooted at them', async () => {
      const sessions = new Sessions(store);
      const base = {
        kind: 'human',
        chain: [] as string[],
        token_id: null,
        parent_session_id: null,
        connection: 'orders-db',
        protocol: 'postgres',
        client_addr: '127.0.0.1',
        status: 'closed',
        ended_at: null,
      };
      await sessions.insert({
        ...base,
        id: 's1',
        subject: 'alice',
        root_subject: 'alice',
        started_at: '2026-01-01T00:00:01Z',
      });
      await sessions.insert({
        ...base,
        id: 's2',
        subject: 'bob',
        root_subject: 'bob',
        started_at: '2026-01-01T00:00:02Z',
      });
      await sessions.insert({
        ...base,
        id: 's3',
        kind: 'agent',
        subject: 'helper-agent',
        root_subject: 'alice',
        chain: ['helper-agent'],
        started_at: '2026-01-01T00:00:03Z',
      });
      const alice = await sessions.list({ visibleTo: 'alice', limit: 10 });
      assert.deepEqual(
        alice.map((s) => s.id),
        ['s3', 's1'],
      );
      assert.deepEqual((await sessions.get('s3'))?.chain, ['helper-agent']);
      const page = await sessions.list({ limit: 2 });
      assert.deepEqual(
        page.map((s) => s.id),
        ['s3', 's2'],
      );
      const next = await sessions.list({ limit: 2, before: page[1]!.started_at });
      assert.deepEqual(
        next.map((s) => s.id),
        ['s1'],
      );
    });
  });
}
