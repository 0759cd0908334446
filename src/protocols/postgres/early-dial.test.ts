import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Gateway, startGateway } from '../../testing/gateway.js';
import { createThrowawayDb, pgConnection, type ThrowawayDb } from '../../testing/postgres.js';

/** What a target saw of one TCP connection: the bytes it was sent, and whether it is closed. */
interface Seen {
  bytes: number;
  closed: Promise<void>;
}

/** A TCP server standing in for a target: it answers nothing and records what it is sent. */
async function listeningTarget(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((socket: Socket) => {
    const s: Seen = { bytes: 0, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
    socket.on('data', (d) => {
      s.bytes += d.length;
    });
    socket.on('error', () => undefined);
    seen.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0, seen };
}

describe('PostgreSQL gateway: the target is dialled while the login is checked', () => {
  let db: ThrowawayDb;
  let gw: Gateway;
  let key: string;
  let port: number;
  let silent: Awaited<ReturnType<typeof listeningTarget>>;

  before(async () => {
    db = await createThrowawayDb();
    silent = await listeningTarget();
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
    await new Promise((resolve) => silent?.server.close(resolve));
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

  it('sends the target nothing, and closes whatever it dialled, when the credential is refused', async () => {
    for (const password of ['wdn_not-a-real-key', `${key.slice(0, -4)}xxxx`]) {
      const c = client('silent', password);
      await assert.rejects(c.connect(), (err: Error & { code?: string }) => err.code === '28P01');
      await c.end().catch(() => undefined);
    }
    // Whether a dial got as far as the target depends on how fast the refusal was; any that did
    // was closed before a byte was sent.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(silent.seen.length <= 2);
    for (const s of silent.seen) {
      await s.closed;
      assert.equal(s.bytes, 0, 'not one byte reached the target');
    }
  });

  it('logs in over the dialled connection: one backend per session, labelled with its session', async () => {
    const c = client('shop', key);
    await c.connect();
    try {
      const { rows } = await c.query<{ app: string; n: string }>(
        `select current_setting('application_name') as app,
                (select count(*) from pg_stat_activity where application_name like '%dora%') as n`,
      );
      assert.match(rows[0]!.app, /^\[warden s=[0-9a-f]{8} dora\]$/);
      assert.equal(rows[0]!.n, '1');
    } finally {
      await c.end();
    }
  });
});
