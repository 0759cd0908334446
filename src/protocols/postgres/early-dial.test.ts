import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { AUDIT_LOCK_KEY } from '../../store/store.js';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { Back, int32, message, readyForQuery } from './codec.js';

/** What a target saw of one TCP connection: the bytes it was sent, and when it closed. */
interface Seen {
  bytes: number;
  closed: Promise<void>;
}

/**
 * A TCP server standing in for a target. `silent` answers nothing; `reset` and `fin` log the
 * client in (trust) and then reset or close the connection, as a server going down would.
 */
async function fakeTarget(
  behaviour: 'silent' | 'reset' | 'fin',
): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((socket: Socket) => {
    const s: Seen = { bytes: 0, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
    seen.push(s);
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      s.bytes += d.length;
      if (behaviour === 'silent') return;
      buffered = Buffer.concat([buffered, d]);
      if (buffered.length < 4 || buffered.length < buffered.readInt32BE(0)) return;
      socket.write(Buffer.concat([message(Back.Authentication, int32(0)), readyForQuery('I')]), () => {
        if (behaviour === 'reset') socket.resetAndDestroy();
        else socket.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0, seen };
}

const closeServer = (server: Server | undefined) =>
  new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

describe('PostgreSQL gateway: the target is dialled once the credential is accepted', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  let silent: Awaited<ReturnType<typeof fakeTarget>>;

  before(async () => {
    db = await createThrowawayDb();
    silent = await fakeTarget('silent');
    gw = await startGateway('sqlite', {
      config: {
        connections: [
          pgConnection(db.name, 'shop'),
          { name: 'silent', protocol: 'postgres', target: { host: '127.0.0.1', port: silent.port } },
        ],
      },
    });
    port = gw.proc.postgres?.port ?? 0;
    key = gw.credential((await gw.cli(['keys', 'create', '--name', 'dora'])).stdout.trim());
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
    await closeServer(silent?.server);
  });

  const client = (database: string, password: string) =>
    new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'dora',
      database,
      password,
      connectionTimeoutMillis: 10_000,
    });

  it('does not touch the target for a refused credential', { timeout: 30_000 }, async () => {
    for (const password of ['wdn_not-a-real-key', `${key.slice(0, -4)}xxxx`]) {
      const c = client('silent', password);
      await assert.rejects(c.connect(), (err: Error & { code?: string }) => err.code === '28P01');
      await c.end().catch(() => undefined);
    }
    // A dial would have been accepted by now (the refusals took a round trip each through Warden).
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(silent.seen.length, 0, 'the target was not dialled');
  });

  it('logs in over one target connection, labelled with its session', { timeout: 30_000 }, async () => {
    const c = client('shop', key);
    await c.connect();
    try {
      const { rows } = await c.query<{ app: string; n: string }>(
        `select current_setting('application_name') as app,
                (select count(*) from pg_stat_activity
                  where application_name = current_setting('application_name')) as n`,
      );
      assert.match(rows[0]!.app, /^\[warden s=[0-9a-f]{8} dora\]$/);
      assert.equal(rows[0]!.n, '1');
    } finally {
      await c.end();
    }
  });
});

describe('PostgreSQL gateway: a target that goes away while the session is being recorded', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  const targets: Record<string, Awaited<ReturnType<typeof fakeTarget>>> = {};

  before(async () => {
    db = await createThrowawayDb();
    targets.reset = await fakeTarget('reset');
    targets.fin = await fakeTarget('fin');
    // A PostgreSQL store, so that the test can hold up the audit write (and with it the session's
    // recording) without stopping the gateway's event loop.
    gw = await startGateway('postgres', {
      config: {
        connections: [
          pgConnection(db.name, 'shop'),
          { name: 'resets', protocol: 'postgres', target: { host: '127.0.0.1', port: targets.reset.port } },
          { name: 'closes', protocol: 'postgres', target: { host: '127.0.0.1', port: targets.fin.port } },
        ],
      },
    });
    port = gw.proc.postgres?.port ?? 0;
    key = gw.credential((await gw.cli(['keys', 'create', '--name', 'erin'])).stdout.trim());
  });
  after(async () => {
    await gw?.close();
    await db?.drop();
    for (const t of Object.values(targets)) await closeServer(t.server);
  });

  const client = (database: string) =>
    new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'erin',
      database,
      password: key,
      connectionTimeoutMillis: 10_000,
    });

  for (const [database, behaviour, how] of [
    ['resets', 'reset', 'resets'],
    ['closes', 'fin', 'closes'],
  ] as const) {
    it(`refuses the login with 08006, and keeps serving, when the target ${how} it meanwhile`, {
      timeout: 60_000,
    }, async () => {
      const store = gw.openStore();
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let locked = () => {};
      const holding = new Promise<void>((resolve) => {
        locked = resolve;
      });
      // The audit chain's lock, held: the session's `session.opened` waits for it.
      const lock = store.db.transaction().execute(async (tx) => {
        await sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(tx);
        locked();
        await held;
      });
      try {
        await holding;
        const seenBefore = targets[behaviour]!.seen.length;
        const c = client(database);
        const login = c.connect().then(
          () => undefined,
          (err: Error & { code?: string }) => err,
        );
        // The target logs Warden in and goes away while the session still waits to be recorded.
        for (let i = 0; i < 500 && targets[behaviour]!.seen.length === seenBefore; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        await targets[behaviour]!.seen[seenBefore]!.closed;
        await new Promise((r) => setTimeout(r, 50));
        release();
        const err = await login;
        await c.end().catch(() => undefined);
        assert.ok(err, 'the login was refused');
        assert.equal(err.code, '08006');
        assert.match(err.message, /closed the connection during the login/);
      } finally {
        release();
        await lock;
        await store.close();
      }
      const ok = client('shop');
      await ok.connect();
      try {
        assert.equal((await ok.query('select 1 as one')).rows[0].one, 1);
      } finally {
        await ok.end();
      }
      await gw.waitForAudit(
        'session.closed',
        (r) =>
          (r.payload as { detail?: string }).detail?.includes('closed the connection during the login') ??
          false,
      );
    });
  }
});
