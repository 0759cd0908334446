// One gateway under test: a throwaway store of one dialect, the real `warden serve` on it,
// its bootstrap admin key, and a record of every output a secret could leak into.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AuditRecord } from '../audit/record.js';
import { Store } from '../store/store.js';
import { type DialectName, type StoreFixture, storeFixture } from './dialects.js';
import { ADMIN_URL, createThrowawayDb, pgConnection, type ThrowawayDb } from './postgres.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { api, type CliResult, runCli, startWarden, type WardenProcess } from './warden-process.js';

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

export interface RequestOptions {
  /** Bearer credential; the admin key when omitted, none when null. */
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface Gateway {
  dialect: DialectName;
  store: StoreFixture;
  proc: WardenProcess;
  url: string;
  /** The bootstrap admin key the gateway wrote to <data_dir>/admin.key. */
  adminKey: string;
  /** Runs the CLI against this gateway as `token` (default: the admin key; null: none). */
  cli(
    args: string[],
    opts?: { token?: string | null; input?: string; env?: NodeJS.ProcessEnv },
  ): Promise<CliResult>;
  api(method: string, path: string, opts?: RequestOptions): Promise<ApiResponse>;
  /** A credential (API key, token): it may be printed once on stdout, never in logs or stderr. */
  credential(value: string): string;
  /** A target secret (password): it must appear in no output at all, nor in any API response. */
  secret(value: string): string;
  /** Where a remembered credential or secret showed up where it must not; empty when nowhere. */
  leaks(): Promise<string[]>;
  /** A second handle on the gateway's store, as a tool on the same machine would open it. */
  openStore(): Store;
  /** Polls the audit trail until a record of `type` matches; fails with what it saw otherwise. */
  waitForAudit(type: string, match: (r: AuditRecord) => boolean): Promise<AuditRecord>;
  stop(): Promise<void>;
  /** Stops the process and removes the store and data directory. */
  close(): Promise<void>;
}

export async function startGateway(
  dialect: DialectName,
  opts: {
    config?: Record<string, unknown>;
    env?: NodeJS.ProcessEnv;
    storeUrl?: (url: string) => string;
  } = {},
): Promise<Gateway> {
  const store = await storeFixture(dialect);
  const storeUrl = store.url && opts.storeUrl ? opts.storeUrl(store.url) : store.url;
  let proc: WardenProcess;
  try {
    proc = await startWarden({
      dir: store.dataDir,
      config: { data_dir: store.dataDir, ...(storeUrl ? { store: { url: storeUrl } } : {}), ...opts.config },
      env: opts.env,
    });
  } catch (err) {
    await store.cleanup();
    throw err;
  }
  const adminKey = readFileSync(`${store.dataDir}/admin.key`, 'utf8').trim();
  const credentials = new Set<string>([adminKey]);
  const secrets = new Set<string>();
  const stderrs: Array<{ args: string[]; text: string }> = [];
  const stdouts: Array<{ args: string[]; text: string }> = [];
  const responses: Array<{ what: string; text: string }> = [];

  const gw: Gateway = {
    dialect,
    store,
    proc,
    url: proc.url,
    adminKey,
    async cli(args, o = {}) {
      const token = o.token === undefined ? adminKey : (o.token ?? '');
      const res = await runCli(args, {
        env: { ...proc.env(token), ...o.env },
        input: o.input,
        cwd: store.dataDir,
      });
      stderrs.push({ args, text: res.stderr });
      stdouts.push({ args, text: res.stdout });
      return res;
    },
    async api(method, path, o = {}) {
      const token = o.token === undefined ? adminKey : (o.token ?? undefined);
      const res = await api(proc.url, method, path, { ...o, token });
      responses.push({ what: `${method} ${path}`, text: res.text });
      return res;
    },
    credential(value) {
      credentials.add(value);
      // The part that matters even if the rest were cut off: an API key's secret, a JWT's signature.
      const tail = keySecret(value) ?? value.split('.')[2];
      if (tail) credentials.add(tail);
      return value;
    },
    secret(value) {
      secrets.add(value);
      return value;
    },
    async leaks() {
      const found: string[] = [];
      const logs = proc.logs();
      const db = gw.openStore();
      const audit = JSON.stringify(await db.db.selectFrom('audit_log').selectAll().execute());
      await db.close();
      for (const c of [...credentials, ...secrets]) {
        if (logs.includes(c)) found.push(`process log contains ${hint(c)}`);
        if (audit.includes(c)) found.push(`audit trail contains ${hint(c)}`);
        for (const e of stderrs)
          if (e.text.includes(c)) found.push(`stderr of \`warden ${e.args.join(' ')}\` contains ${hint(c)}`);
      }
      for (const s of secrets) {
        for (const o of stdouts)
          if (o.text.includes(s)) found.push(`stdout of \`warden ${o.args.join(' ')}\` contains ${hint(s)}`);
        for (const r of responses)
          if (r.text.includes(s)) found.push(`response to ${r.what} contains ${hint(s)}`);
      }
      return found;
    },
    openStore() {
      return Store.connect({ url: store.url, dataDir: store.dataDir });
    },
    async waitForAudit(type, match) {
      const deadline = Date.now() + 20_000;
      let seen: AuditRecord[] = [];
      while (Date.now() < deadline) {
        const res = await gw.api('GET', `/api/audit?type=${encodeURIComponent(type)}&limit=1000`);
        if (res.status === 200) {
          seen = (res.body as { records: AuditRecord[] }).records;
          const hit = seen.find(match);
          if (hit) return hit;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(
        `no matching ${type} audit record; saw:\n${seen.map((r) => JSON.stringify(r)).join('\n')}`,
      );
    },
    stop: () => proc.stop(),
    async close() {
      await proc.stop();
      await store.cleanup();
    },
  };
  return gw;
}

/**
 * A port free right now, for a gateway whose address must be known before it starts (`api.port`):
 * an identity provider registers the console's callback on it first.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function hint(value: string): string {
  return `a secret (${value.slice(0, 6)}…)`;
}

/**
 * Mints one API key per name through the CLI, in the groups given (comma-separated), and returns
 * them by name; each is remembered as a credential (`leaks()` looks for it).
 */
export async function mintKeys<N extends string>(
  gw: Gateway,
  groups: Record<N, string>,
): Promise<Record<N, string>> {
  const keys = {} as Record<N, string>;
  for (const name of Object.keys(groups) as N[]) {
    const created = await gw.cli(['keys', 'create', '--name', name, '--groups', groups[name]]);
    if (created.code !== 0) throw new Error(`keys create ${name}: ${created.stderr}`);
    keys[name] = gw.credential(created.stdout.trim());
  }
  return keys;
}

/** The same as mintKeys, through `POST /api/keys` with the bootstrap admin key: no process per key. */
export async function apiKeys<N extends string>(
  gw: Gateway,
  groups: Record<N, readonly string[]>,
): Promise<Record<N, string>> {
  const keys = {} as Record<N, string>;
  for (const name of Object.keys(groups) as N[]) {
    const res = await gw.api('POST', '/api/keys', { body: { name, groups: groups[name] } });
    if (res.status !== 201) throw new Error(`POST /api/keys ${name}: ${res.status} ${res.text}`);
    keys[name] = gw.credential((res.body as { key: string }).key);
  }
  return keys;
}

/**
 * A token delegated from `subjectKey` to an agent named `actor` through RFC 8693 token exchange
 * (`POST /oauth/token`), remembered as a credential.
 */
export async function delegatedToken(
  gw: Gateway,
  subjectKey: string,
  actor: string,
  scope?: string,
  opts: { parentSession?: string; actorToken?: string } = {},
): Promise<string> {
  const res = await gw.api('POST', '/oauth/token', {
    token: null,
    headers: opts.parentSession ? { 'x-warden-session': opts.parentSession } : {},
    body: {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectKey,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      actor,
      ...(opts.actorToken
        ? { actor_token: opts.actorToken, actor_token_type: 'urn:ietf:params:oauth:token-type:access_token' }
        : {}),
      ...(scope ? { scope } : {}),
    },
  });
  if (res.status !== 200) throw new Error(`token exchange for ${actor}: ${res.status} ${res.text}`);
  return gw.credential((res.body as { access_token: string }).access_token);
}

/** The secret part of an API key (`wdn_<id>_<secret>`; the secret may itself contain `_`). */
export function keySecret(key: string): string | undefined {
  return /^wdn_[0-9a-f]{16}_(.+)$/.exec(key)?.[1];
}

/** The JSON error body every API failure answers with. */
export function errorOf(res: ApiResponse): { code: string; message: string; details?: unknown } {
  return (res.body as { error: { code: string; message: string; details?: unknown } }).error;
}

/** The non-blank lines a CLI command wrote to stderr (a failure should write exactly one). */
export function stderrLines(res: CliResult): string[] {
  return res.stderr.split('\n').filter((l) => l.trim() !== '');
}

/** A connection defined in the config file, its password read from `WARDEN_TEST_CFG_PW`. */
export function configFileConnection(password: string, target: Record<string, unknown> = {}) {
  return {
    env: { WARDEN_TEST_CFG_PW: password },
    config: {
      connections: [
        {
          name: 'billing',
          protocol: 'postgres',
          target: { host: 'billing.internal', port: 5432, ...target },
          credentials: { user: 'billing', password: { env: 'WARDEN_TEST_CFG_PW' } },
        },
      ],
    },
  };
}

/** A PostgreSQL-backed gateway that reaches its store through a proxy the test can cut. */
export async function startProxiedGateway(
  config?: Record<string, unknown>,
): Promise<{ gw: Gateway; proxy: TcpProxy; storeUrl: string }> {
  const pg = new URL(ADMIN_URL);
  const proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
  let storeUrl = '';
  const gw = await startGateway('postgres', {
    ...(config ? { config } : {}),
    storeUrl: (url) => {
      const viaProxy = new URL(url);
      viaProxy.hostname = '127.0.0.1';
      viaProxy.port = String(proxy.port);
      storeUrl = viaProxy.toString();
      return storeUrl;
    },
  });
  return { gw, proxy, storeUrl };
}

/**
 * A gateway (SQLite store) whose PostgreSQL listener has the settings `listener`, in front of a
 * throwaway database as connection `app-db`; `close` stops the one and drops the other.
 */
export async function gatewayToThrowawayDb(
  listener: Record<string, unknown>,
): Promise<{ gw: Gateway; port: number; close(): Promise<void> }> {
  const db: ThrowawayDb = await createThrowawayDb();
  let gw: Gateway;
  try {
    gw = await startGateway('sqlite', {
      config: { listeners: { postgres: listener }, connections: [pgConnection(db.name)] },
    });
  } catch (err) {
    await db.drop();
    throw err;
  }
  return {
    gw,
    port: gw.proc.postgres?.port ?? 0,
    close: async () => {
      try {
        await gw.close();
      } finally {
        await db.drop();
      }
    },
  };
}
