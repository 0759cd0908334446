import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';

describe('PostgreSQL gateway with a pipelining client (porsager postgres, one connection)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let sql: postgres.Sql;

  before(async () => {
    db = await createThrowawayDb();
    const setup = new pg.Client({ connectionString: db.url });
    await setup.connect();
    await setup.query(`create table items (id int primary key, owner text, email text);
      insert into items select g, 'owner-' || g, 'user' || g || '@example.com' from generate_series(1, 50) g`);
    await setup.end();
    gw = await startGateway('sqlite', {
      config: {
        connections: [pgConnection(db.name)],
        policy: {
          rules: [
            {
              name: 'no-delete',
              when: { sql: { statements: ['delete'] } },
              effect: 'deny',
              message: 'No deletes.',
            },
            { name: 'mask-email', effect: 'mask', mask: { columns: ['items.email'], style: 'redact' } },
          ],
        },
      },
    });
    sql = postgres({
      host: '127.0.0.1',
      port: gw.proc.postgres?.port,
      database: 'app-db',
      username: 'porsager',
      password: gw.adminKey,
      max: 1,
      onnotice: () => undefined,
    });
  });
  after(async () => {
    await sql?.end({ timeout: 5 });
    await gw?.close();
    await db?.drop();
  });

  it('answers 200 statements sent at once on one connection, each with its own result, in order', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => (i % 50) + 1);
    const results = await Promise.all(ids.map((id) => sql`select id, owner from items where id = ${id}`));
    assert.deepEqual(
      results.map((r) => r[0]?.id),
      ids,
    );
  });

  it('refuses a denied statement in the middle of a pipeline without disturbing its neighbours', async () => {
    const [before, refused, after] = await Promise.allSettled([
      sql`select count(*)::int as n from items`,
      sql`delete from items where id = ${1}`,
      sql`select owner from items where id = ${2}`,
    ]);
    assert.equal(before.status === 'fulfilled' && before.value[0]?.n, 50);
    assert.ok(refused.status === 'rejected');
    assert.match(String((refused.reason as Error).message), /No deletes\. \(warden\)/);
    assert.equal(after.status === 'fulfilled' && after.value[0]?.owner, 'owner-2');
  });

  it('masks a column in every pipelined result', async () => {
    const rows = await Promise.all([1, 2, 3].map((id) => sql`select id, email from items where id = ${id}`));
    assert.deepEqual(
      rows.map((r) => [r[0]?.id, r[0]?.email]),
      [
        [1, '[masked]'],
        [2, '[masked]'],
        [3, '[masked]'],
      ],
    );
  });
});
