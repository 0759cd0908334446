// `warden demo`: a throwaway PostgreSQL (PGlite, in memory, on a loopback socket) seeded with a
// little personal data, registered as connection "demo" with rules that show what Warden does.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { type Config, configSchema } from '../config/schema.js';
import type { ApiKeys } from '../identity/api-keys.js';

export interface DemoTarget {
  host: string;
  port: number;
  stop(): Promise<void>;
}

const SEED = `
create table customers (id int primary key, name text not null, email text not null, card_number text, country text);
create table orders (id int primary key, customer_id int references customers, amount numeric(10,2), status text);
insert into customers values
  (1, 'Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111', 'GB'),
  (2, 'Grace Hopper', 'grace@example.org', '5500 0000 0000 0004', 'US'),
  (3, 'Katherine Johnson', 'kj@example.net', '3400 0000 0000 009', 'US');
insert into orders values (1, 1, 42.00, 'paid'), (2, 2, 17.50, 'open'), (3, 3, 99.90, 'open');
`;

/** A port the OS says is free now (PGlite's server cannot report the one it picked). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startDemoTarget(): Promise<DemoTarget> {
  const db = await PGlite.create();
  await db.exec(SEED);
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 16 });
  await server.start();
  return {
    host: '127.0.0.1',
    port,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

export function demoConfig(o: {
  dataDir: string;
  pgPort: number;
  apiPort: number;
  target: DemoTarget;
}): Config {
  return configSchema.parse({
    data_dir: o.dataDir,
    api: { port: o.apiPort },
    listeners: { postgres: { port: o.pgPort } },
    connections: [
      {
        name: 'demo',
        protocol: 'postgres',
        target: { host: o.target.host, port: o.target.port, database: 'postgres' },
        credentials: { user: 'postgres' },
        description: 'throwaway PGlite database started by warden demo',
      },
    ],
    policy: {
      rules: [
        {
          name: 'no-drop',
          description: 'Dropping or truncating needs a change request.',
          when: { sql: { statements: ['drop', 'truncate'] } },
          effect: 'deny',
          message: 'Dropping or truncating tables needs a change request.',
        },
        {
          name: 'review-unbounded-writes',
          when: { sql: { statements: ['update', 'delete'], where: 'absent' } },
          effect: 'review',
          review: { approvers: ['dba'] },
        },
        {
          name: 'mask-pii',
          effect: 'mask',
          mask: { columns: ['email', 'card_number'], style: 'keep-last-4' },
        },
      ],
    },
  });
}

/**
 * The demo's approver: an API key in group `dba` (the demo's review rule names it), written to
 * `<data_dir>/dba.key` (0600) so a newcomer can approve a held statement as someone other than
 * themselves. Kept across restarts while it still works; else replaced.
 */
export async function demoApproverKey(keys: ApiKeys, dataDir: string): Promise<string> {
  const file = join(dataDir, 'dba.key');
  if (existsSync(file)) {
    const ok = await keys.authenticate(readFileSync(file, 'utf8').trim()).then(
      () => true,
      () => false,
    );
    if (ok) return file;
  }
  const old = await keys.get('demo-dba');
  if (old && !old.revoked_at) await keys.revoke(old.id);
  const { key } = await keys.create({
    name: 'demo-dba',
    kind: 'service',
    groups: ['dba'],
    createdBy: 'warden demo',
    expiresAt: null,
  });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return file;
}
