import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Back, Front, int16, int32, message, readNoticeFields } from '../protocols/postgres/codec.js';
import { type Gateway, mintKeys, startGateway } from '../testing/gateway.js';
import { rawSession } from '../testing/pg-wire.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../testing/postgres.js';
import { psqlVia } from '../testing/run.js';

/** Generous: the gateway checks every 200 ms here; this only bounds a session that is never ended. */
const ENDS_WITHIN_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SessionRow {
  id: string;
  status: string;
  end_reason: string | null;
  orphaned_at: string | null;
  parent_session_id: string | null;
}

describe('session lifetimes: idle timeout, maximum duration, end_with_parent (PostgreSQL listener)', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let port: number;
  let alice: string;
  let bob: string;

  /** An open pg session on `connection`, and the error Warden ends it with (if it does). */
  const open = async (connection: string, password = alice) => {
    const c = new pg.Client({ host: '127.0.0.1', port, database: connection, user: 'x', password });
    const ended = new Promise<pg.DatabaseError>((resolve) =>
      c.on('error', (e) => resolve(e as pg.DatabaseError)),
    );
    await c.connect();
    assert.deepEqual((await c.query('select 1 as n')).rows, [{ n: 1 }]);
    return { c, ended };
  };

  const endedWithin = (ended: Promise<pg.DatabaseError>) =>
    Promise.race([
      ended,
      sleep(ENDS_WITHIN_MS).then(() => {
        throw new Error('the session was not ended');
      }),
    ]);

  const sessions = async (query: string): Promise<SessionRow[]> => {
    const res = await gw.api('GET', `/api/sessions?${query}`);
    assert.equal(res.status, 200, res.text);
    return (res.body as { sessions: SessionRow[] }).sessions;
  };

  /** The only live session on `connection` (tests here run one at a time). */
  const liveSession = async (connection: string): Promise<SessionRow> => {
    const rows = await sessions(`connection=${connection}&status=active`);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    return rows[0]!;
  };

  /** The row of a session once its gateway has written how it ended. */
  const endedRow = async (id: string): Promise<SessionRow> => {
    for (let i = 0; i < 100; i++) {
      const res = await gw.api('GET', `/api/sessions/${id}`);
      const row = res.body as SessionRow;
      if (row.status !== 'active') return row;
      await sleep(100);
    }
    throw new Error(`session ${id} is still active`);
  };

  /** psql reading statements from a pipe, so the test decides when it exits (by closing its stdin). */
  const interactivePsql = (connection: string) => {
    const conninfo = `host=127.0.0.1 port=${port} dbname=${connection} user=alice sslmode=disable`;
    const child = spawn('psql', [conninfo, '-X', '-At'], {
      env: { ...process.env, PGPASSWORD: alice, PGCONNECT_TIMEOUT: '10' },
    });
    child.stdin.write('select 1;\n');
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const closed = new Promise<number>((resolve) =>
      child.on('close', (code) => {
        clearTimeout(killer);
        resolve(code ?? -1);
      }),
    );
    return {
      exit: () => {
        child.stdin.end();
        return closed;
      },
    };
  };

  const waitForLiveSession = async (connection: string): Promise<SessionRow> => {
    for (let i = 0; i < 100; i++) {
      const rows = await sessions(`connection=${connection}&status=active`);
      if (rows.length === 1) return rows[0]!;
      await sleep(100);
    }
    throw new Error(`no live session on ${connection}`);
  };

  /** A Warden token for alice minted in her live session `parent` (X-Warden-Session). */
  const tokenMintedIn = async (parent: string, actor: string): Promise<string> => {
    const res = await gw.api('POST', '/oauth/token', {
      token: null,
      headers: { 'x-warden-session': parent },
      body: {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: alice,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        actor,
      },
    });
    assert.equal(res.status, 200, res.text);
    return gw.credential((res.body as { access_token: string }).access_token);
  };

  before(async () => {
    db = await createThrowawayDb();
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    await direct.query('create table jobs (id int primary key); insert into jobs values (1), (2)');
    await direct.end();
    gw = await startGateway('sqlite', {
      config: {
        sessions: { check_interval: '200ms' },
        policy: {
          rules: [
            {
              name: 'hold-deletes',
              match: { connections: ['idle'] },
              when: { sql: { statements: ['delete'], where: 'absent' } },
              effect: 'review',
              review: { approvers: ['dba'], hold: '60s' },
            },
          ],
        },
        connections: [
          { ...pgConnection(db.name, 'idle'), sessions: { idle_timeout: '1s' } },
          { ...pgConnection(db.name, 'busy'), sessions: { idle_timeout: 'off', max_duration: '2s' } },
          pgConnection(db.name, 'parent'),
          pgConnection(db.name, 'child'),
          { ...pgConnection(db.name, 'free'), sessions: { end_with_parent: false } },
        ],
      },
    });
    assert.ok(gw.proc.postgres);
    port = gw.proc.postgres.port;
    ({ alice, bob } = await mintKeys(gw, { alice: 'devs', bob: 'dba' }));
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
  });

  it('shows each connection its own limits and the global ones otherwise', async () => {
    const idle = await gw.api('GET', '/api/connections/idle');
    assert.deepEqual((idle.body as { sessions: unknown }).sessions, { idle_timeout: '1s' });
    const busy = await gw.api('GET', '/api/connections/busy');
    assert.deepEqual((busy.body as { sessions: unknown }).sessions, {
      idle_timeout: 'off',
      max_duration: '2s',
    });
    const plain = await gw.api('GET', '/api/connections/parent');
    assert.equal((plain.body as { sessions: unknown }).sessions, null);
  });

  it('keeps session limits of a connection created and patched through the API', async () => {
    const created = await gw.api('POST', '/api/connections', {
      body: {
        ...pgConnection(db.name, 'api-made'),
        sessions: { idle_timeout: 1800, max_duration: 'off', end_with_parent: false },
      },
    });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual((created.body as { sessions: unknown }).sessions, {
      idle_timeout: '30m',
      max_duration: 'off',
      end_with_parent: false,
    });
    const bad = await gw.api('PATCH', '/api/connections/api-made', {
      body: { sessions: { idle_timeout: 'soon' } },
    });
    assert.equal(bad.status, 400, bad.text);
    const patched = await gw.api('PATCH', '/api/connections/api-made', { body: { sessions: null } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal((patched.body as { sessions: unknown }).sessions, null);
    const show = await gw.cli(['connections', 'show', 'api-made']);
    assert.match(show.stdout, /^sessions: +global limits$/m);
  });

  it('ends a pg session idle longer than idle_timeout with FATAL 57P05, stores why and audits it', async () => {
    const { ended } = await open('idle');
    const { id } = await liveSession('idle');
    const err = await endedWithin(ended);
    assert.equal(err.code, '57P05');
    assert.equal(
      err.message,
      'session ended: idle for 1s (sessions.idle_timeout of connection idle) (warden)',
    );
    const row = await endedRow(id);
    assert.equal(row.status, 'timed_out');
    assert.match(row.end_reason ?? '', /^session ended: idle for 1s/);
    await gw.waitForAudit(
      'session.timed_out',
      (r) => r.payload.session === id && r.payload.reason === 'idle',
    );
  });

  it('tells psql why its idle session ended', async () => {
    // psql sits in a shell command (no message to the gateway) longer than the idle timeout.
    const res = await psqlVia({ port, password: alice, database: 'idle' }, [
      '-c',
      'select 1',
      '-c',
      '\\! sleep 2.5',
      '-c',
      'select 2',
    ]);
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      /FATAL: {2}session ended: idle for 1s \(sessions\.idle_timeout of connection idle\) \(warden\)/,
    );
    assert.doesNotMatch(res.stdout, /^2$/m);
  });

  it('does not end a session that keeps sending statements', async () => {
    const { c } = await open('idle');
    // Three times the idle timeout, never a second without a statement.
    for (let i = 0; i < 10; i++) {
      assert.deepEqual((await c.query('select $1::int as n', [i])).rows, [{ n: i }]);
      await sleep(300);
    }
    await c.end();
  });

  it('ends a session idle after a COPY FROM STDIN whose Execute came with a Sync the target ignored', async () => {
    const s = await rawSession(port, 'idle', alice);
    try {
      s.send(message(Front.Query, 'create temporary table copied (id int)'));
      await s.until(Back.ReadyForQuery);
      // PostgreSQL reads a Sync sent during a copy as part of it: no ReadyForQuery will answer it.
      s.send(
        Buffer.concat([
          message(Front.Parse, '', 'copy copied from stdin', int16(0)),
          message(Front.Bind, '', '', int16(0), int16(0), int16(0)),
          message(Front.Execute, '', int32(0)),
          message(Front.Sync),
        ]),
      );
      await s.until(Back.CopyInResponse);
      s.send(
        Buffer.concat([
          message(Front.CopyData, Buffer.from('3\n')),
          message(Front.CopyDone),
          message(Front.Sync),
        ]),
      );
      await s.until(Back.ReadyForQuery);
      const last = await Promise.race([
        s.closed,
        sleep(ENDS_WITHIN_MS).then(() => {
          throw new Error('the session was not ended');
        }),
      ]);
      const fatal = last.find((m) => m.type === Back.ErrorResponse);
      assert.ok(fatal, 'the client is told why');
      assert.equal(readNoticeFields(fatal.body).get('C'), '57P05');
    } finally {
      s.socket.destroy();
    }
  });

  it('does not count a statement running longer than idle_timeout as idle, then ends the idle session', async () => {
    const { c, ended } = await open('idle');
    const r = await c.query('select pg_sleep(2.5), 7 as n');
    assert.equal(r.rows[0].n, 7);
    // Idle from now on: ended like any other.
    const err = await endedWithin(ended);
    assert.equal(err.code, '57P05');
  });

  it('does not count a statement held for review as idle', async () => {
    const { c, ended } = await open('idle');
    const deleted = c.query('delete from jobs');
    let pending: { id: string } | undefined;
    for (let i = 0; i < 100 && !pending; i++) {
      const res = await gw.api('GET', '/api/reviews?status=pending', { token: bob });
      pending = (res.body as { reviews: Array<{ id: string }> }).reviews[0];
      if (!pending) await sleep(100);
    }
    assert.ok(pending, 'no pending review');
    // Held for twice the idle timeout before an approver decides.
    await sleep(2000);
    const approved = await gw.cli(['reviews', 'approve', pending.id], { token: bob });
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal((await deleted).rowCount, 2);
    assert.equal((await endedWithin(ended)).code, '57P05');
  });

  it('ends a busy session at max_duration with FATAL 57P01 and audits it', async () => {
    const { c, ended } = await open('busy');
    const { id } = await liveSession('busy');
    // Busy all along: a statement every 100 ms (and never idle-limited: idle_timeout is off).
    let stop = false;
    const busy = (async () => {
      while (!stop) {
        await c.query('select 1').catch(() => {
          stop = true;
        });
        await sleep(100);
      }
    })();
    const err = await endedWithin(ended);
    stop = true;
    await busy;
    assert.equal(err.code, '57P01');
    assert.equal(err.message, 'session ended: maximum session duration 2s reached (warden)');
    const row = await endedRow(id);
    assert.equal(row.status, 'timed_out');
    assert.equal(row.end_reason, 'session ended: maximum session duration 2s reached');
    await gw.waitForAudit(
      'session.timed_out',
      (r) => r.payload.session === id && r.payload.reason === 'max_duration' && r.payload.limit === '2s',
    );
  });

  it('ends a child session soon after its parent psql session ends, as an orphan', async () => {
    const parent = interactivePsql('parent');
    const { id: parentId } = await waitForLiveSession('parent');
    const token = await tokenMintedIn(parentId, 'helper-1');
    const child = await open('child', token);
    const childRow = await liveSession('child');
    assert.equal(childRow.parent_session_id, parentId);
    // The parent going on keeps the child going.
    await sleep(600);
    assert.deepEqual((await child.c.query('select 2 as n')).rows, [{ n: 2 }]);
    assert.equal(await parent.exit(), 0);
    const err = await endedWithin(child.ended);
    assert.equal(err.code, '57P01');
    assert.equal(err.message, `session ended: its parent session ${parentId} ended (warden)`);
    const row = await endedRow(childRow.id);
    assert.equal(row.status, 'orphaned');
    assert.equal(row.end_reason, `session ended: its parent session ${parentId} ended`);
    assert.ok(row.orphaned_at);
    const audited = await gw.waitForAudit('session.orphaned', (r) => r.payload.session === childRow.id);
    assert.equal(audited.outcome, 'success');
    assert.equal(audited.payload.parent_session, parentId);
    assert.equal(audited.payload.ended, true);
    // The same token cannot open another session under the ended parent.
    const again = new pg.Client({ host: '127.0.0.1', port, database: 'child', user: 'x', password: token });
    const refused = (await again.connect().then(
      () => new Error('connected'),
      (e: unknown) => e,
    )) as pg.DatabaseError;
    assert.equal(refused.code, '28000');
    assert.equal(
      refused.message,
      `cannot open a session: its parent session ${parentId} ended (sessions.end_with_parent) (warden)`,
    );
    await again.end().catch(() => undefined);
  });

  it('with end_with_parent off, lets an orphan run on and flags it once', async () => {
    const parent = await open('parent');
    const { id: parentId } = await liveSession('parent');
    const token = await tokenMintedIn(parentId, 'helper-2');
    const child = await open('free', token);
    const { id } = await liveSession('free');
    await parent.c.end();
    const audited = await gw.waitForAudit('session.orphaned', (r) => r.payload.session === id);
    assert.equal(audited.outcome, 'info');
    assert.equal(audited.payload.ended, false);
    // Several checks later: still running, flagged, and audited only once.
    await sleep(1000);
    assert.deepEqual((await child.c.query('select 3 as n')).rows, [{ n: 3 }]);
    const row = await liveSession('free');
    assert.ok(row.orphaned_at);
    assert.equal(row.end_reason, null);
    const records = await gw.api('GET', '/api/audit?type=session.orphaned&limit=1000');
    const forIt = (records.body as { records: Array<{ payload: { session: string } }> }).records.filter(
      (r) => r.payload.session === id,
    );
    assert.equal(forIt.length, 1);
    const ls = await gw.cli(['sessions', 'ls', '--connection', 'free']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /active \(orphaned\)/);
    await child.c.end();
  });

  it('keeps the audit chain verifiable', async () => {
    const verified = await gw.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stderr);
  });
});
