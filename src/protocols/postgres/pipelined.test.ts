import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { type RawSession, rawSession } from '../../testing/pg-wire.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { psqlVia } from '../../testing/run.js';
import { Back, Front, int16, int32, type Message, message, readDataRow, readNoticeFields } from './codec.js';

// Extended-protocol messages, unnamed unless named; no parameters, text results.
const parse = (text: string, name = '') => message(Front.Parse, name, text, int16(0));
const bind = (portal = '', statement = '') =>
  message(Front.Bind, portal, statement, int16(0), int16(0), int16(0));
const execute = (portal = '', maxRows = 0) => message(Front.Execute, portal, int32(maxRows));
const describeMessage = (kind: 'S' | 'P', name: string) => message(Front.Describe, Buffer.from(kind), name);
const close = (kind: 'S' | 'P', name: string) => message(Front.Close, Buffer.from(kind), name);
const SYNC = message(Front.Sync);
const FLUSH = message(Front.Flush);

const types = (ms: Message[]): string => ms.map((m) => String.fromCharCode(m.type)).join('');
const cells = (ms: Message[]): Array<Array<string | null>> =>
  ms.filter((m) => m.type === Back.DataRow).map((m) => readDataRow(m.body).map((v) => v?.toString() ?? null));

describe('PostgreSQL gateway with a pipelining client (porsager postgres, one connection)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let sql: postgres.Sql;

  before(async () => {
    db = await createThrowawayDb();
    const setup = new pg.Client({ connectionString: db.url });
    await setup.connect();
    await setup.query(`create table items (id int primary key, owner text, email text);
      insert into items select g, 'owner-' || g, 'user' || g || '@example.com' from generate_series(1, 50) g;
      create table secrets (id int primary key, code text); insert into secrets values (1, 's3cr3t')`);
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
            // Only statements that read secrets carry this mask.
            {
              name: 'mask-code',
              when: { sql: { tables: ['secrets'] } },
              effect: 'mask',
              mask: { columns: ['secrets.code'], style: 'redact' },
            },
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
  /** Runs `body` on a raw wire session of its own, closed afterwards whatever happens. */
  const onRawSession = async (body: (s: RawSession) => Promise<void>): Promise<void> => {
    const s = await rawSession(gw.proc.postgres?.port ?? 0, 'app-db', gw.adminKey);
    try {
      await body(s);
    } finally {
      s.socket.destroy();
    }
  };

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

  it('refuses a whole multi-statement query string when one of its statements is denied, wherever it hides', async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gw.proc.postgres?.port,
      database: 'app-db',
      user: 'multi',
      password: gw.adminKey,
    });
    await c.connect();
    try {
      for (const text of [
        'select count(*) from items; delete from items',
        'delete from items where id = 4; select 1',
        'select 1; /* a comment */ DELETE FROM items WHERE id = 5; select 2',
        'with gone as (delete from items where id = 6 returning id) select count(*) from gone',
        'merge into items using (select 7 as id) s on items.id = s.id when matched then delete',
        'explain analyze delete from items where id = 8',
      ]) {
        await assert.rejects(
          c.query(text),
          (err: pg.DatabaseError) => err.code === '42501' && /No deletes\. \(warden\)/.test(err.message),
          text,
        );
      }
      // Nothing was deleted, and the session goes on. A plain EXPLAIN only plans: it passes.
      assert.equal((await c.query('select count(*)::int as n from items')).rows[0].n, 50);
      assert.ok((await c.query('explain delete from items where id = 9')).rows.length > 0);
      const [first, second] = (await c.query('select 1 as a; select 2 as b')) as unknown as pg.QueryResult[];
      assert.deepEqual([first?.rows, second?.rows], [[{ a: 1 }], [{ b: 2 }]]);
    } finally {
      await c.end();
    }
  });

  it('skips a denied Parse’s Bind and Execute up to its Sync, then answers the next Sync’s statements', async () => {
    await onRawSession(async (s) => {
      s.send(
        Buffer.concat([
          parse('delete from items where id = 3'),
          bind(),
          execute(),
          SYNC,
          parse('select owner from items where id = 3'),
          bind(),
          describeMessage('P', ''),
          execute(),
          SYNC,
        ]),
      );
      const refused = await s.until(Back.ReadyForQuery);
      assert.equal(types(refused), 'EZ', 'one error, no ParseComplete, BindComplete or rows');
      const error = readNoticeFields(refused[0]!.body);
      assert.equal(error.get('C'), '42501');
      assert.match(error.get('M') ?? '', /No deletes\./);
      const answered = await s.until(Back.ReadyForQuery);
      assert.equal(types(answered), '12TDCZ');
      assert.deepEqual(cells(answered), [['owner-3']]);
      // Without a Describe the rows come with no RowDescription: their columns have no names, so
      // a result from a table with a masked column is masked whole (fail closed).
      s.send(Buffer.concat([parse('select owner from items where id = 3'), bind(), execute(), SYNC]));
      assert.deepEqual(cells(await s.until(Back.ReadyForQuery)), [['[masked]']]);
    });
  });

  it('answers Flush before any Sync, suspends a named portal at its row count with masks kept, and closes it', async () => {
    await onRawSession(async (s) => {
      s.send(
        Buffer.concat([
          parse('select id, email from items where id <= 5 order by id', 'five'),
          describeMessage('S', 'five'),
          FLUSH,
        ]),
      );
      assert.equal(types(await s.until(Back.RowDescription)), '1tT', 'described without a Sync');
      s.send(Buffer.concat([bind('cursor', 'five'), execute('cursor', 2), FLUSH]));
      const page1 = await s.until(Back.PortalSuspended);
      assert.equal(types(page1), '2DDs');
      s.send(Buffer.concat([execute('cursor', 2), FLUSH]));
      const page2 = await s.until(Back.PortalSuspended);
      assert.equal(types(page2), 'DDs');
      s.send(Buffer.concat([execute('cursor', 0), SYNC]));
      const rest = await s.until(Back.ReadyForQuery);
      assert.equal(types(rest), 'DCZ');
      const rows = [...cells(page1), ...cells(page2), ...cells(rest)];
      assert.deepEqual(
        rows.map((r) => r[0]),
        ['1', '2', '3', '4', '5'],
      );
      for (const [, email] of rows) assert.ok(email && !email.includes('@example.com'), `masked: ${email}`);
      s.send(Buffer.concat([close('P', 'cursor'), close('S', 'five'), SYNC]));
      assert.equal(types(await s.until(Back.ReadyForQuery)), '33Z');
      // The statement is gone on the target too.
      s.send(Buffer.concat([bind('again', 'five'), execute('again'), SYNC]));
      const gone = await s.until(Back.ReadyForQuery);
      assert.equal(types(gone), 'EZ');
      assert.equal(readNoticeFields(gone[0]!.body).get('C'), '26000');
    });
  });

  it('masks the result after a COPY FROM STDIN whose Execute came with a Sync the target ignores', async () => {
    await onRawSession(async (s) => {
      // Sync right behind Execute, as clients that do not know the statement is a COPY send it:
      // PostgreSQL reads it as part of the copy and ignores it (no ReadyForQuery answers it).
      s.send(Buffer.concat([parse('copy items from stdin'), bind(), execute(), SYNC]));
      assert.equal(types(await s.until(Back.CopyInResponse)), '12G');
      s.send(
        Buffer.concat([
          message(Front.CopyData, Buffer.from('51\towner-51\tcopied@example.com\n')),
          message(Front.CopyDone),
          SYNC,
        ]),
      );
      assert.equal(
        types(await s.until(Back.ReadyForQuery)),
        'CZ',
        'one ReadyForQuery, for the Sync after CopyDone',
      );
      s.send(message(Front.Query, 'select email from items where id = 51'));
      const answered = await s.until(Back.ReadyForQuery);
      assert.equal(types(answered), 'TDCZ');
      assert.deepEqual(cells(answered), [['[masked]']]);
    });
  });

  it('masks the rows of a prepared statement the target kept when a Parse of its name failed', async () => {
    await onRawSession(async (s) => {
      // All at once: the second Parse of `a` fails on the target (it exists), which keeps the first.
      s.send(
        Buffer.concat([
          parse('select code from secrets', 'a'),
          SYNC,
          parse('select 1', 'a'),
          SYNC,
          bind('', 'a'),
          describeMessage('P', ''),
          execute(),
          SYNC,
        ]),
      );
      assert.equal(types(await s.until(Back.ReadyForQuery)), '1Z');
      const failed = await s.until(Back.ReadyForQuery);
      assert.equal(types(failed), 'EZ');
      assert.equal(readNoticeFields(failed[0]!.body).get('C'), '42P05');
      const ran = await s.until(Back.ReadyForQuery);
      assert.equal(types(ran), '2TDCZ');
      assert.deepEqual(cells(ran), [['[masked]']]);
    });
  });

  it('refuses to run a statement the client closed, though the target skipped the Close after an error', async () => {
    await onRawSession(async (s) => {
      s.send(
        Buffer.concat([
          parse('select code from secrets', 'b'),
          SYNC,
          parse('select 1/0'),
          bind(),
          execute(),
          close('S', 'b'),
          SYNC,
          bind('', 'b'),
          describeMessage('P', ''),
          execute(),
          SYNC,
        ]),
      );
      assert.equal(types(await s.until(Back.ReadyForQuery)), '1Z');
      assert.equal(
        types(await s.until(Back.ReadyForQuery)),
        '1EZ',
        'division by zero at Bind; the Close skipped',
      );
      // The target still has `b`; the client's Bind named a statement it had closed.
      const refused = await s.until(Back.ReadyForQuery);
      assert.equal(types(refused), '2TEZ');
      assert.equal(readNoticeFields(refused[2]!.body).get('C'), '42501');
    });
  });

  it('refuses an Execute of a portal SQL made (PREPARE, DECLARE), whose rows no decision covers', async () => {
    await onRawSession(async (s) => {
      s.send(message(Front.Query, 'prepare by_sql as select email from items where id = 1'));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'CZ');
      s.send(Buffer.concat([bind('', 'by_sql'), execute(), SYNC]));
      const prepared = await s.until(Back.ReadyForQuery);
      assert.equal(types(prepared), '2EZ');
      const error = readNoticeFields(prepared[1]!.body);
      assert.equal(error.get('C'), '42501');
      assert.match(error.get('M') ?? '', /^portal "" was not bound from a statement Warden checked/);
      s.send(message(Front.Query, 'begin; declare by_sql_cursor cursor for select email from items'));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'CCZ');
      s.send(Buffer.concat([execute('by_sql_cursor', 1), SYNC]));
      const declared = await s.until(Back.ReadyForQuery);
      assert.equal(types(declared), 'EZ');
      assert.equal(readNoticeFields(declared[0]!.body).get('C'), '42501');
      // A portal name that is not UTF-8: refused the same, its row count kept byte for byte.
      s.send(Buffer.concat([message(Front.Execute, Buffer.from([0xff, 0]), int32(1)), SYNC]));
      const odd = await s.until(Back.ReadyForQuery);
      assert.equal(types(odd), 'EZ');
      assert.equal(readNoticeFields(odd[0]!.body).get('C'), '42501');
      // SQL's own way stays open, and its rows are masked.
      s.send(message(Front.Query, 'rollback; execute by_sql'));
      assert.deepEqual(cells(await s.until(Back.ReadyForQuery)), [['[masked]']]);
      // Each refusal is in the audit chain and in the session's recording.
      const audited = await gw.waitForAudit(
        'command.denied',
        (r) => (r.payload as { command?: string }).command === '(Execute of portal "by_sql_cursor")',
      );
      const session = (audited.payload as { session: string }).session;
      const deadline = Date.now() + 10_000;
      let refused: Array<{ text: string; error: string | null }> = [];
      while (refused.length < 3 && Date.now() < deadline) {
        const res = await gw.api('GET', `/api/sessions/${session}/events`);
        refused = (res.body as { events: Array<{ text: string; error: string | null }> }).events.filter((e) =>
          e.text.startsWith('(Execute of portal'),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(
        refused.map((e) => e.text),
        ['(Execute of portal "")', '(Execute of portal "by_sql_cursor")', '(Execute of portal "\ufffd")'],
      );
      for (const e of refused)
        assert.match(e.error ?? '', /^42501: portal ".*" was not bound from a statement Warden/);
    });
  });

  it('refuses an Execute of a portal name SQL took over after the Bound portal of that name ended', async () => {
    await onRawSession(async (s) => {
      // Portal `p` is bound from a checked statement; its transaction ends, and `p` with it.
      s.send(Buffer.concat([parse('select 1'), bind('p'), describeMessage('P', 'p'), SYNC]));
      assert.equal(types(await s.until(Back.ReadyForQuery)), '12TZ');
      // A cursor takes the name: SQL closes and declares portals the Bind's bookkeeping never sees.
      s.send(message(Front.Query, 'begin; declare p cursor for select code from secrets'));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'CCZ');
      s.send(Buffer.concat([execute('p'), SYNC]));
      const ran = await s.until(Back.ReadyForQuery);
      assert.deepEqual(cells(ran), [], 'no row of the cursor passes as the result of "select 1"');
      assert.equal(readNoticeFields(ran.find((m) => m.type === Back.ErrorResponse)!.body).get('C'), '42501');
      s.send(message(Front.Query, 'rollback'));
      await s.until(Back.ReadyForQuery);
      // The same inside one transaction: CLOSE, then DECLARE of the name a Bind made.
      s.send(Buffer.concat([message(Front.Query, 'begin'), parse('select 2'), bind('q'), SYNC]));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'CZ');
      assert.equal(types(await s.until(Back.ReadyForQuery)), '12Z');
      s.send(message(Front.Query, 'close q; declare q cursor for select code from secrets'));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'CCZ');
      s.send(Buffer.concat([execute('q'), SYNC]));
      const closed = await s.until(Back.ReadyForQuery);
      assert.deepEqual(cells(closed), []);
      s.send(message(Front.Query, 'rollback'));
      await s.until(Back.ReadyForQuery);
      // The same in one batch of the extended protocol: Executes of other portals close and declare.
      s.send(message(Front.Query, 'begin'));
      await s.until(Back.ReadyForQuery);
      s.send(
        Buffer.concat([
          parse('select 3'),
          bind('r'),
          parse('close r'),
          bind(),
          execute(),
          parse('declare r cursor for select code from secrets'),
          bind(),
          execute(),
          execute('r'),
          SYNC,
        ]),
      );
      const batch = await s.until(Back.ReadyForQuery);
      assert.equal(types(batch), '1212C12CEZ');
      assert.equal(readNoticeFields(batch[8]!.body).get('C'), '42501');
      s.send(message(Front.Query, 'rollback'));
      await s.until(Back.ReadyForQuery);
    });
  });

  it('withholds the error of a masked statement while a refused statement behind it awaits its answer, keeping the names it is about', async () => {
    await onRawSession(async (s) => {
      // One write: the refused DELETE's marker is still unanswered when the cast's error arrives.
      s.send(
        Buffer.concat([
          message(Front.Query, 'select email::int from items where id = 1'),
          message(Front.Query, 'delete from items where id = 1'),
        ]),
      );
      const failed = await s.until(Back.ReadyForQuery);
      assert.equal(types(failed), 'TEZ');
      const error = readNoticeFields(failed[1]!.body);
      assert.equal(error.get('C'), '22P02');
      assert.doesNotMatch(error.get('M') ?? '', /user1@example\.com/);
      assert.match(error.get('M') ?? '', /withheld by rule "mask-email"/);
      const refused = await s.until(Back.ReadyForQuery);
      assert.equal(readNoticeFields(refused[0]!.body).get('C'), '42501');
      // A withheld error keeps the names it is about, which quote no value: clients tell by them which key clashed.
      s.send(message(Front.Query, "insert into items values (1, 'owner-1', 'again@example.com')"));
      const clash = readNoticeFields((await s.until(Back.ReadyForQuery))[0]!.body);
      assert.deepEqual(
        [clash.get('C'), clash.get('n'), clash.get('t'), clash.get('s'), clash.get('D')],
        ['23505', 'items_pkey', 'items', 'public', undefined],
      );
      assert.match(clash.get('M') ?? '', /withheld by rule "mask-email"/);
    });
  });

  it('runs a named portal across Syncs and other statements in its transaction, as pgJDBC’s fetchSize does', async () => {
    await onRawSession(async (s) => {
      s.send(message(Front.Query, 'begin'));
      assert.equal(types(await s.until(Back.ReadyForQuery)), 'CZ');
      s.send(
        Buffer.concat([
          parse('select id, email from items order by id', 'big'),
          bind('cursor', 'big'),
          describeMessage('P', 'cursor'),
          execute('cursor', 2),
          SYNC,
        ]),
      );
      const first = await s.until(Back.ReadyForQuery);
      assert.equal(types(first), '12TDDsZ');
      // A lookup between two fetches, as a loop over the rows does.
      s.send(
        Buffer.concat([
          parse('select owner from items where id = 5'),
          bind(),
          describeMessage('P', ''),
          execute(),
          SYNC,
        ]),
      );
      assert.deepEqual(cells(await s.until(Back.ReadyForQuery)), [['owner-5']]);
      s.send(Buffer.concat([execute('cursor', 2), SYNC]));
      const next = await s.until(Back.ReadyForQuery);
      assert.equal(types(next), 'DDsZ');
      assert.deepEqual(cells([...first, ...next]), [
        ['1', '[masked]'],
        ['2', '[masked]'],
        ['3', '[masked]'],
        ['4', '[masked]'],
      ]);
      s.send(message(Front.Query, 'rollback'));
      await s.until(Back.ReadyForQuery);
    });
  });

  it('masks the rows of a cursor and of a SQL prepared statement under a rule scoped to their table', async () => {
    // psql's FETCH_COUNT reads a result through a cursor: DECLARE, then FETCH until it is empty.
    const fetched = await psqlVia(
      { port: gw.proc.postgres?.port ?? 0, password: gw.adminKey, database: 'app-db' },
      ['-v', 'FETCH_COUNT=1', '-c', 'select code from secrets'],
    );
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(fetched.stdout.trim(), '[masked]');
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gw.proc.postgres?.port,
      database: 'app-db',
      user: 'cursor',
      password: gw.adminKey,
    });
    await c.connect();
    try {
      await c.query('begin');
      await c.query('declare secret_cursor cursor for select code from secrets');
      assert.deepEqual((await c.query('fetch all from secret_cursor')).rows, [{ code: '[masked]' }]);
      await c.query('commit');
      await c.query('prepare secret_code as select code from secrets');
      assert.deepEqual((await c.query('execute secret_code')).rows, [{ code: '[masked]' }]);
    } finally {
      await c.end();
    }
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
