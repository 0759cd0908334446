import assert from 'node:assert/strict';
import { createConnection, createServer, connect as netConnect, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { rawSession } from '../../testing/pg-wire.js';
import { ADMIN_URL, createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';
import { Front, message } from './codec.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CANCEL_REQUEST = 80877102;

/**
 * A way to the test server that holds every CancelRequest back until `letGo`, as a slow network
 * would: `letGo` resolves once the server has taken them (it closes a cancel's connection then).
 */
async function cancelDelayingProxy() {
  const held: Array<() => Promise<void>> = [];
  // Half-open allowed: the sender of a held cancel sees its connection close only once the server took it.
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => undefined);
    client.once('data', (first: Buffer) => {
      const forward = () =>
        new Promise<void>((resolve) => {
          const upstream = createConnection({ host: '127.0.0.1', port: 5432 });
          upstream.on('error', () => client.destroy());
          upstream.on('close', () => resolve());
          upstream.write(first);
          client.pipe(upstream).pipe(client);
        });
      if (first.length === 16 && first.readInt32BE(4) === CANCEL_REQUEST) held.push(forward);
      else void forward();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    held: () => held.length,
    letGo: () => Promise.all(held.splice(0).map((forward) => forward())),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Sends a CancelRequest for `client`'s BackendKeyData to the gateway, as its driver would. */
function cancelFor(port: number, client: pg.Client): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => s.end(packet));
    s.on('error', () => undefined);
    s.on('close', () => resolve());
  });
}

describe('PostgreSQL gateway: pool: session reuses reset server connections', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let bobKey: string;
  let admin: pg.Client;
  let slowCancels: Awaited<ReturnType<typeof cancelDelayingProxy>>;

  before(async () => {
    db = await createThrowawayDb();
    slowCancels = await cancelDelayingProxy();
    const viaProxy = pgConnection(db.name, 'pooled-slow-cancels');
    gw = await startGateway('sqlite', {
      config: {
        listeners: { postgres: { port: 0, pool: { max_idle: 4, idle_timeout: '1500ms' } } },
        connections: [
          { ...pgConnection(db.name, 'pooled'), pool: 'session' },
          pgConnection(db.name, 'unpooled'),
          { ...viaProxy, target: { ...viaProxy.target, port: slowCancels.port }, pool: 'session' },
        ],
      },
    });
    key = gw.credential((await gw.cli(['keys', 'create', '--name', 'pia'])).stdout.trim());
    bobKey = gw.credential((await gw.cli(['keys', 'create', '--name', 'bob'])).stdout.trim());
    admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await gw?.close();
    await slowCancels?.close();
    await db?.drop();
  });

  const connect = async (database: string, extra: Partial<pg.ClientConfig> = {}) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: gw.proc.postgres?.port ?? 0,
      database,
      user: 'pia',
      password: key,
      application_name: 'pool-test',
      ...extra,
    });
    await c.connect();
    return c;
  };
  const backendPid = async (c: pg.Client) =>
    (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  /** Waits until the server connection the gateway parked is reset and ready for the next session. */
  const parked = async (pid: number) => {
    for (let i = 0; i < 200; i++) {
      const r = await admin.query('select application_name from pg_stat_activity where pid = $1', [pid]);
      if (r.rows[0]?.application_name === '[warden pool: idle]') return;
      await sleep(25);
    }
    assert.fail(`backend ${pid} was not parked`);
  };
  const alive = async (pid: number) =>
    (await admin.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 1;

  it('gives the next session the same backend, with nothing left of the previous one', async () => {
    const a = await connect('pooled');
    const pid = await backendPid(a);
    await a.query('create temp table scratch (x int)');
    await a.query('prepare two as select 2');
    await a.query("set work_mem = '7MB'");
    await a.query('listen pool_channel');
    await a.query('select pg_advisory_lock(4242)');
    await a.end();
    await parked(pid);

    const b = await connect('pooled');
    assert.equal(await backendPid(b), pid, 'the parked backend served the next session');
    await assert.rejects(b.query('select * from scratch'), /does not exist/);
    await assert.rejects(b.query('execute two'), /does not exist/);
    assert.equal((await b.query('show work_mem')).rows[0].work_mem, '4MB');
    const locks = await admin.query(
      "select 1 from pg_locks where locktype = 'advisory' and objid = 4242 and pid = $1",
      [pid],
    );
    assert.equal(locks.rowCount, 0, 'the advisory lock was released');
    const listening = await b.query('select count(*)::int as n from pg_listening_channels()');
    assert.equal(listening.rows[0].n, 0);
    // The target's own view names the new session's caller, not the one that left.
    const label = await admin.query('select application_name from pg_stat_activity where pid = $1', [pid]);
    assert.match(label.rows[0].application_name, /^pool-test \[warden s=[0-9a-f]{8} pia\]$/);
    const sessionId = label.rows[0].application_name.match(/s=([0-9a-f]{8})/)[1];
    // …and the session reads its own full id there, not the one of the session that left.
    const own = (await b.query("select current_setting('warden.session') as id")).rows[0].id as string;
    assert.ok(own.startsWith(sessionId), `${own} is not the new session ${sessionId}…`);
    await b.end();
    const ls = await gw.cli(['sessions', 'ls', '--json']);
    const sessions = JSON.parse(ls.stdout) as Array<{ id: string; connection: string }>;
    assert.ok(
      sessions.some((s) => s.id === own && s.connection === 'pooled'),
      'the reused backend was labelled with the new session id',
    );
  });

  it('names nobody who left when the next session runs RESET ALL', async () => {
    const a = await connect('pooled');
    const pid = await backendPid(a);
    await a.end();
    await parked(pid);

    const b = await connect('pooled', { user: 'bob', password: bobKey });
    assert.equal(await backendPid(b), pid, 'the parked backend served the next session');
    const own = (await b.query("select current_setting('warden.session') as id")).rows[0].id as string;
    await b.query('reset all');
    const after = (
      await b.query(
        "select current_setting('application_name') as app, current_setting('warden.session') as id",
      )
    ).rows[0];
    // RESET ALL may forget bob's session id, but must not bring back the id of a session that left.
    assert.ok(after.id === '' || after.id === own, `bob's session reads another session's id ${after.id}`);
    assert.doesNotMatch(after.app, /pia/, "bob's session is given pia's name");
    const label = await admin.query('select application_name from pg_stat_activity where pid = $1', [pid]);
    assert.doesNotMatch(label.rows[0].application_name, /pia/, "the target names pia for bob's session");
    await b.end();
  });

  it('closes the dblink connections a session left open before the next one takes the backend', async () => {
    const owner = new pg.Client({ connectionString: db.url });
    await owner.connect();
    await owner.query('create extension if not exists dblink');
    await owner.end();
    const a = await connect('pooled');
    const pid = await backendPid(a);
    const remote = `host=127.0.0.1 dbname=${db.name} user=postgres`;
    await a.query('select dblink_connect($1, $2)', ['pias_link', remote]);
    await a.query('select dblink_connect($1)', [remote]); // the unnamed connection
    await a.end();
    await parked(pid);

    const b = await connect('pooled', { user: 'bob', password: bobKey });
    assert.equal(await backendPid(b), pid, 'the parked backend served the next session');
    const named = await b.query('select dblink_get_connections() as names');
    assert.equal(named.rows[0].names, null, "bob's session can use pia's named dblink connection");
    await assert.rejects(
      b.query("select * from dblink('select 1') as t(x int)"),
      /connection not available/,
      "bob's session can use pia's unnamed dblink connection",
    );
    await b.end();
  });

  it("lets a cancel the previous session sent stop nothing of the next session's", async () => {
    // Bob's statement waits on this lock (advisory locks are per database) until the test lets it go.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('select pg_advisory_lock(7001)');
    const a = await connect('pooled-slow-cancels');
    const first = await backendPid(a);
    await cancelFor(gw.proc.postgres?.port ?? 0, a);
    for (let i = 0; i < 200 && slowCancels.held() === 0; i++) await sleep(10);
    assert.equal(slowCancels.held(), 1, "pia's cancel is on its way to the target");
    await a.end();
    // Parked for bob, or closed: either way done with before bob comes.
    for (let i = 0; i < 200; i++) {
      const r = await admin.query('select application_name from pg_stat_activity where pid = $1', [first]);
      if (r.rowCount === 0 || r.rows[0].application_name === '[warden pool: idle]') break;
      await sleep(25);
    }

    const b = await connect('pooled-slow-cancels', { user: 'bob', password: bobKey });
    const pid = await backendPid(b);
    const waiting = b.query('select pg_advisory_lock(7001)');
    for (let i = 0; i < 200; i++) {
      const r = await admin.query(
        "select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'",
        [pid],
      );
      if (r.rowCount === 1) break;
      await sleep(10);
    }
    assert.equal(
      (await admin.query('select wait_event_type from pg_stat_activity where pid = $1', [pid])).rows[0]
        ?.wait_event_type,
      'Lock',
      "bob's statement is running when pia's cancel arrives",
    );
    await slowCancels.letGo();
    await holder.end();
    await assert.doesNotReject(waiting, "pia's late cancel stopped bob's statement");
    await b.end();
  });

  it("runs nothing a client's application_name smuggles into its session's label", async () => {
    // Every pooled session is labelled with SET application_name = E'…'. In GBK the last byte of
    // 中's UTF-8 (0xAD) takes the next one, the first of an escaped backslash, as its own: the other
    // backslash would then escape the quote that should close the string.
    const b = await rawSession(gw.proc.postgres?.port ?? 0, 'pooled', key, {
      client_encoding: 'GBK',
      options: '-c standard_conforming_strings=off -c backslash_quote=on',
      application_name: "\u4e2d\\'; create table smuggled (); --",
    });
    b.send(message(Front.Terminate));
    await b.closed;
    const owner = new pg.Client({ connectionString: db.url });
    await owner.connect();
    const made = await owner.query("select 1 from pg_class where relname = 'smuggled'");
    await owner.end();
    assert.equal(made.rowCount, 0, 'a statement hidden in application_name ran, unjudged and unrecorded');
  });

  it('does not reuse a backend left inside a transaction, and closes it', async () => {
    const a = await connect('pooled');
    const pid = await backendPid(a);
    await a.query('begin');
    await a.query('select 1');
    await a.end();
    for (let i = 0; i < 200 && (await alive(pid)); i++) await sleep(25);
    assert.equal(await alive(pid), false, 'the backend in a transaction was closed, not parked');
    const b = await connect('pooled');
    assert.notEqual(await backendPid(b), pid);
    await b.end();
  });

  it('keeps one backend per concurrent session and parks each when they leave', async () => {
    const [a, b] = await Promise.all([connect('pooled'), connect('pooled')]);
    const pids = [await backendPid(a), await backendPid(b)];
    assert.notEqual(pids[0], pids[1]);
    await Promise.all([a.end(), b.end()]);
    await Promise.all(pids.map(parked));
    const [c, d] = await Promise.all([connect('pooled'), connect('pooled')]);
    assert.deepEqual([await backendPid(c), await backendPid(d)].sort(), [...pids].sort());
    await Promise.all([c.end(), d.end()]);
  });

  it('opens a new backend for different startup parameters', async () => {
    const a = await connect('pooled');
    const pid = await backendPid(a);
    await a.end();
    await parked(pid);
    const b = await connect('pooled', { options: '-c DateStyle=German' });
    assert.notEqual(await backendPid(b), pid, 'a session asking for other settings gets its own backend');
    assert.equal((await b.query('show datestyle')).rows[0].DateStyle, 'German, DMY');
    await b.end();
  });

  it('closes a parked backend after idle_timeout', async () => {
    const a = await connect('pooled');
    const pid = await backendPid(a);
    await a.end();
    await parked(pid);
    for (let i = 0; i < 200 && (await alive(pid)); i++) await sleep(50);
    assert.equal(await alive(pid), false, 'the idle backend was closed');
    const b = await connect('pooled');
    assert.notEqual(await backendPid(b), pid);
    await b.end();
  });

  it('never reuses backends of a connection without pool: session', async () => {
    const a = await connect('unpooled');
    const pid = await backendPid(a);
    await a.end();
    for (let i = 0; i < 200 && (await alive(pid)); i++) await sleep(25);
    assert.equal(await alive(pid), false);
    const b = await connect('unpooled');
    assert.notEqual(await backendPid(b), pid);
    await b.end();
  });
});
