#!/usr/bin/env node
// pg-stream.mjs - large results through Warden's PostgreSQL listener: wall time of COPY TO STDOUT and
// SELECT * of 1M rows (direct, Warden with no mask matching, Warden with one masked column, PgBouncer),
// and Warden's peak RSS while 8 clients stream 1M rows each, fast and slow readers.
//
//   npm run build && node bench/pg-stream.mjs            # from the repo root
//   node bench/pg-stream.mjs --reps 5 --keep             # keep the scratch database for the next run
//   node bench/pg-stream.mjs --skip-time                 # peak RSS only
//
// Options: --rows N (1000000)  --reps N (3)  --clients N (8)  --keep  --skip-time  --skip-rss
//          --pg-host H --pg-port P --pg-user U (127.0.0.1, 5432, postgres; trust auth expected)
//          --no-pgbouncer  --out FILE (default bench/results/pg-stream-<stamp>.md; gitignored)
//          --paths a,b (only these of direct,warden/plain,warden/masked,pgbouncer in the timing)
//          --mask-style S (tokenize; or redact, keep-last-4: the masked connection's style for email)
//          --warden-node-args "…" (extra node flags for the measured Warden, e.g. --cpu-prof, --liftoff-only)
//
// Every client here is a minimal raw wire client (startup, trust/cleartext/MD5 auth, simple Query)
// that counts DataRow/CopyData messages by walking message headers and never decodes a row, so the
// client's own cost stays far below the proxy's. Goals (issue): peak RSS < 200 MB with 8 clients
// streaming 1M rows; COPY and SELECT * wall time <= 1.2x PgBouncer unmasked, <= 2x with one masked column.
// Stops only the processes it started (Warden, PgBouncer), by their own handles.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const ROWS = Number(opt('rows', 1_000_000));
const REPS = Number(opt('reps', 3));
const CLIENTS = Number(opt('clients', 8));
const PG = {
  host: opt('pg-host', '127.0.0.1'),
  port: Number(opt('pg-port', 5432)),
  user: opt('pg-user', 'postgres'),
};
const DB = 'warden_stream_bench';
const TABLE = 'bench_rows';
const STAMP = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
const MASK_STYLE = opt('mask-style', 'tokenize');
const OUT = opt('out', join(REPO, 'bench', 'results', `pg-stream-${STAMP}.md`));

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}] pg-stream:`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]
      : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ------------------------------------------------------------------ raw wire client
const D = 0x44,
  COPY_DATA = 0x64,
  ERR = 0x45,
  READY = 0x5a,
  AUTH = 0x52,
  TAG = 0x43;

function frame(type, ...parts) {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(`${p}\0`) : p)));
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function errorText(body) {
  const f = {};
  for (let i = 0; i < body.length && body[i] !== 0; ) {
    const end = body.indexOf(0, i + 1);
    f[String.fromCharCode(body[i])] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return `${f.C ?? '?'}: ${f.M ?? '?'}`;
}

/**
 * One connection. Messages are walked header by header; DataRow and CopyData bodies are skipped
 * in place (never copied, never decoded) unless the query asks to collect rows.
 */
class Wire {
  constructor(socket) {
    this.socket = socket;
    this.hdr = Buffer.alloc(5);
    this.hdrHave = 0;
    this.remaining = -1; // body bytes still to come for the current message; -1: reading a header
    this.keep = false;
    this.body = null;
    this.bodyHave = 0;
    this.onMessage = () => {};
    this.slow = null;
    socket.on('data', (c) => this.push(c));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  fail(err) {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  push(chunk) {
    let i = 0;
    const n = chunk.length;
    if (this.slow) this.slowRead(n);
    while (i < n) {
      if (this.remaining < 0) {
        const take = Math.min(5 - this.hdrHave, n - i);
        chunk.copy(this.hdr, this.hdrHave, i, i + take);
        this.hdrHave += take;
        i += take;
        if (this.hdrHave < 5) break;
        this.type = this.hdr[0];
        this.remaining = this.hdr.readInt32BE(1) - 4;
        this.keep = (this.type !== D && this.type !== COPY_DATA) || this.collect;
        if (this.keep) {
          this.body = Buffer.allocUnsafe(this.remaining);
          this.bodyHave = 0;
        }
      } else {
        const take = Math.min(this.remaining, n - i);
        if (this.keep) chunk.copy(this.body, this.bodyHave, i, i + take);
        this.bodyHave += take;
        this.remaining -= take;
        i += take;
      }
      if (this.remaining === 0) {
        this.hdrHave = 0;
        this.remaining = -1;
        this.onMessage(this.type, this.keep ? this.body : null);
      }
    }
  }

  /** Slow reader: after every `every` bytes, stop reading for `pauseMs` (the kernel buffer then fills). */
  slowRead(n) {
    this.slow.since += n;
    if (this.slow.since < this.slow.every) return;
    this.slow.since = 0;
    this.socket.pause();
    setTimeout(() => this.socket.resume(), this.slow.pauseMs);
  }

  /** Resolves on ReadyForQuery with what the messages said; rejects on close. */
  next(handler) {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.onMessage = (type, body) => {
        if (handler(type, body) === 'done') {
          this.waiter = null;
          this.onMessage = () => {};
          resolve();
        }
      };
    });
  }

  static async open({ host, port, user, database, password }) {
    const socket = connect({ host, port });
    await new Promise((res, rej) => {
      socket.once('connect', res);
      socket.once('error', rej);
    });
    socket.setNoDelay(true);
    const w = new Wire(socket);
    let error = null;
    const ready = w.next((type, body) => {
      if (type === AUTH) {
        const code = body.readInt32BE(0);
        if (code === 3) socket.write(frame(0x70, password ?? ''));
        else if (code === 5) {
          const inner = createHash('md5')
            .update(`${password ?? ''}${user}`)
            .digest('hex');
          const outer = createHash('md5').update(inner).update(body.subarray(4, 8)).digest('hex');
          socket.write(frame(0x70, `md5${outer}`));
        } else if (code !== 0) error = `unsupported authentication request ${code}`;
      } else if (type === ERR) error = errorText(body);
      return type === READY || error ? 'done' : undefined;
    });
    const params = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0pg-stream\0\0`);
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + params.length);
    head.writeInt32BE(196608, 4);
    socket.write(Buffer.concat([head, params]));
    await ready;
    if (error) {
      socket.destroy();
      throw new Error(`login to ${host}:${port}/${database}: ${error}`);
    }
    return w;
  }

  /** A simple Query: rows counted (or collected), the first error, the wall time to ReadyForQuery. */
  async query(sql, { collect = false, slow = null } = {}) {
    const r = { rows: 0, copyRows: 0, error: null, tag: null, data: [], ms: 0 };
    this.collect = collect;
    const t0 = performance.now();
    const done = this.next((type, body) => {
      if (type === D) {
        r.rows++;
        if (collect) r.data.push(decodeRow(body));
      } else if (type === COPY_DATA) r.copyRows++;
      else if (type === TAG) r.tag = body.toString('utf8', 0, body.length - 1);
      else if (type === ERR) r.error ??= errorText(body);
      return type === READY ? 'done' : undefined;
    });
    if (slow) {
      this.slow = { ...slow, since: 0 };
      this.socket.pause();
      setTimeout(() => this.socket.resume(), slow.initialMs);
    }
    this.socket.write(frame(0x51, sql));
    await done;
    this.slow = null;
    r.ms = performance.now() - t0;
    return r;
  }

  close() {
    this.onMessage = () => {};
    this.socket.removeAllListeners('close');
    this.socket.on('close', () => {});
    this.socket.end(frame(0x58));
  }
}

function decodeRow(body) {
  const n = body.readInt16BE(0);
  const out = [];
  for (let i = 0, at = 2; i < n; i++) {
    const len = body.readInt32BE(at);
    at += 4;
    out.push(len < 0 ? null : body.toString('utf8', at, at + len));
    if (len > 0) at += len;
  }
  return out;
}

async function run(target, sql, o) {
  const w = await Wire.open(target);
  try {
    return await w.query(sql, o);
  } finally {
    w.close();
  }
}

// ------------------------------------------------------------------ processes
const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

async function waitPort(port, child, what, ms = 30_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise((r) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on ${port} within ${ms} ms`);
}

const children = [];
let scratchDir = null;
function stopChildren() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
}
process.on('exit', stopChildren);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks at 100 Hz
  } catch {
    return NaN;
  }
}

function memKb(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) ?? [])[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

/** Resets VmHWM to the current RSS (root, or owner; Linux >= 4.0); false when not allowed. */
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function startWarden(dir) {
  const listenPort = await freePort();
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  const target = `{ host: ${PG.host}, port: ${PG.port}, database: ${DB}, tls: disable }`;
  writeFileSync(
    join(dir, 'warden.yaml'),
    `# written by bench/pg-stream.mjs
data_dir: ${data}
log: { level: warn }
api: { host: 127.0.0.1, port: 0 }
listeners:
  postgres: { host: 127.0.0.1, port: ${listenPort} }
connections:
  - name: plain
    protocol: postgres
    target: ${target}
    credentials: { user: ${PG.user} }
    tags: [bench]
  - name: masked
    protocol: postgres
    target: ${target}
    credentials: { user: ${PG.user} }
    tags: [bench, pii]
policy:
  default: allow
  rules:
    - name: mask-email
      match: { connections: [masked] }
      effect: mask
      mask: { columns: [${TABLE}.email], style: ${MASK_STYLE} }
`,
  );
  const nodeArgs = (opt('warden-node-args', '') || '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, join(REPO, 'dist/cli/main.js'), 'serve', '--config', join(dir, 'warden.yaml')],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARDEN_'))),
    },
  );
  children.push(child);
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  child.stdout.on('data', () => {});
  let url = null;
  for (let i = 0; i < 300 && !url; i++) {
    if (child.exitCode !== null) throw new Error(`Warden exited ${child.exitCode}:\n${err}`);
    url = (err.match(/API listening on (http\S+)/) ?? [])[1] ?? null;
    if (!url) await sleep(100);
  }
  if (!url) throw new Error(`Warden did not start:\n${err}`);
  await waitPort(listenPort, child, 'Warden');
  const admin = readFileSync(join(data, 'admin.key'), 'utf8').trim();
  const minted = spawnSync(
    process.execPath,
    [join(REPO, 'dist/cli/main.js'), 'keys', 'create', '--name', 'pg-stream', '--groups', 'bench'],
    {
      env: { ...process.env, WARDEN_URL: url, WARDEN_TOKEN: admin },
      encoding: 'utf8',
    },
  );
  const key = minted.stdout.trim();
  let password = key;
  if (minted.status !== 0 || !key.startsWith('wdn_')) {
    log(`minting a key failed (${minted.stderr.trim()}); using the bootstrap admin key`);
    password = admin;
  }
  return { child, port: listenPort, password, stderr: () => err };
}

async function startPgBouncer(dir) {
  if (flag('no-pgbouncer')) return { missing: 'skipped (--no-pgbouncer)' };
  const bin = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) return { missing: 'pgbouncer not installed (apt-get install -y pgbouncer)' };
  const port = await freePort();
  const pdir = join(dir, 'pgbouncer');
  mkdirSync(pdir, { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(pdir, 0o777);
  const ini = join(pdir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    `[databases]
${DB} = host=${PG.host} port=${PG.port} dbname=${DB} user=${PG.user}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = session
max_client_conn = 200
default_pool_size = 40
ignore_startup_parameters = extra_float_digits,application_name
logfile = ${pdir}/pgbouncer.log
`,
  );
  chmodSync(ini, 0o644);
  // PgBouncer refuses to run as root; -u switches to the PostgreSQL OS user.
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  try {
    await waitPort(port, child, 'PgBouncer', 10_000);
  } catch (e) {
    return { missing: `PgBouncer failed to start: ${e.message} ${err}` };
  }
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  return { child, port, version };
}

// ------------------------------------------------------------------ the run
async function main() {
  if (!existsSync(join(REPO, 'dist/cli/main.js'))) throw new Error('dist/ missing: run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'warden-pgstream-'));
  scratchDir = dir;
  const admin = { ...PG, database: 'postgres' };
  const direct = { ...PG, database: DB };
  const report = [];
  const say = (line = '') => {
    report.push(line);
    console.log(line);
  };

  // 1. scratch database
  const exists = await run(admin, `select 1 from pg_database where datname = '${DB}'`, { collect: true });
  let have = 0;
  if (exists.rows) {
    const c = await run(direct, `select count(*) from ${TABLE}`, { collect: true }).catch(() => null);
    have = c && !c.error ? Number(c.data[0][0]) : 0;
  } else {
    const r = await run(admin, `create database ${DB}`);
    if (r.error) throw new Error(r.error);
  }
  if (have !== ROWS) {
    log(`creating ${TABLE} with ${ROWS} rows in ${DB}`);
    const r = await run(
      direct,
      `drop table if exists ${TABLE};
       create table ${TABLE} as
         select g as id, 'name ' || g as name, 'user' || g || '@example.com' as email,
                repeat('note ', 12) || g as note
         from generate_series(1, ${ROWS}) g;
       alter table ${TABLE} add primary key (id);`,
    );
    if (r.error) throw new Error(r.error);
    const v = await run(direct, `vacuum analyze ${TABLE}`);
    if (v.error) throw new Error(v.error);
  }
  const size = await run(
    direct,
    `select pg_size_pretty(pg_relation_size('${TABLE}')), avg(length(name) + length(email) + length(note) + 4)::int from ${TABLE}`,
    { collect: true },
  );

  // 2. Warden and PgBouncer
  const warden = await startWarden(dir);
  const bouncer = await startPgBouncer(dir);
  const via = {
    direct,
    'warden/plain': {
      host: '127.0.0.1',
      port: warden.port,
      user: 'bench',
      database: 'plain',
      password: warden.password,
    },
    'warden/masked': {
      host: '127.0.0.1',
      port: warden.port,
      user: 'bench',
      database: 'masked',
      password: warden.password,
    },
  };
  if (!bouncer.missing)
    via.pgbouncer = { host: '127.0.0.1', port: bouncer.port, user: PG.user, database: DB };
  const only = opt('paths', '');
  const paths = Object.keys(via).filter((p) => !only || only.split(',').includes(p));

  const rssIdle = memKb(warden.child.pid).rss;
  const sample = await run(via['warden/masked'], `select id, email from ${TABLE} order by id limit 2`, {
    collect: true,
  });
  const rev = spawnSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], {
    encoding: 'utf8',
  }).stdout.trim();
  const dirty = spawnSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src'], {
    encoding: 'utf8',
  }).stdout.trim();
  say(`# pg-stream ${new Date().toISOString()}`);
  say();
  say(
    `- Warden ${rev}${dirty ? '+dirty-src' : ''} (dist/), Node ${process.version}, ${spawnSync('nproc').stdout.toString().trim()} cores, load at start ${loadavg()}`,
  );
  say(
    `- table ${TABLE}: ${ROWS} rows, ${size.data[0]?.[0]} on disk, ~${size.data[0]?.[1]} bytes of text per row`,
  );
  say(
    `- PgBouncer: ${bouncer.missing ? `MISSING: ${bouncer.missing}; the PgBouncer column is empty` : `${bouncer.version}, session mode`}`,
  );
  say(
    `- Warden node flags: ${opt('warden-node-args', '') || '(none)'}; mask rule: ${TABLE}.email, style ${MASK_STYLE}, on connection \`masked\``,
  );
  say(`- masked connection, first rows: ${JSON.stringify(sample.error ?? sample.data)}`);
  say();

  // 3. wall time, interleaved across paths
  const tests = {
    copy: `COPY (SELECT * FROM ${TABLE}) TO STDOUT`,
    select: `SELECT * FROM ${TABLE}`,
  };
  const times = {}; // test -> path -> [{ms, cpu}]
  const errors = {};
  if (!flag('skip-time')) {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const [test, sql] of Object.entries(tests)) {
        for (const p of paths) {
          const pid = p.startsWith('warden')
            ? warden.child.pid
            : p === 'pgbouncer'
              ? bouncer.child.pid
              : null;
          const cpu0 = pid ? cpuSeconds(pid) : NaN;
          const r = await run(via[p], sql).catch((e) => ({ error: e.message }));
          const cpu = pid ? cpuSeconds(pid) - cpu0 : NaN;
          const n = test === 'copy' ? r.copyRows : r.rows;
          if (r.error || n !== ROWS) {
            errors[`${test} ${p}`] = r.error ?? `${n} rows`;
            log(`${test} via ${p}: ${r.error ?? `${n} rows, expected ${ROWS}`}`);
            continue;
          }
          times[test] ??= {};
          times[test][p] ??= [];
          times[test][p].push({ ms: r.ms, cpu });
          log(
            `rep ${rep} ${test} via ${p}: ${(r.ms / 1000).toFixed(2)} s${Number.isNaN(cpu) ? '' : `, proxy cpu ${cpu.toFixed(2)} s`} (load ${loadavg()})`,
          );
        }
      }
    }
    say(`## Wall time, 1 client, ${ROWS} rows (median of ${REPS}; time ratios, lower is better)`);
    say();
    say(
      `| test | ${paths.join(' | ')} | plain/direct | masked/direct | plain/pgbouncer (goal <= 1.2) | masked/pgbouncer (goal <= 2) | warden cpu-s plain / masked |`,
    );
    say(`|---|${paths.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|`);
    for (const test of Object.keys(tests)) {
      const m = (p) => median((times[test]?.[p] ?? []).map((x) => x.ms)) / 1000;
      const c = (p) => median((times[test]?.[p] ?? []).map((x) => x.cpu));
      const f = (x) => (Number.isNaN(x) ? '—' : x.toFixed(2));
      const cell = (p) => (errors[`${test} ${p}`] && !times[test]?.[p] ? 'refused' : `${f(m(p))} s`);
      say(
        `| ${test === 'copy' ? 'COPY (select *) TO STDOUT' : 'SELECT * (rows discarded)'} | ${paths.map(cell).join(' | ')} | ` +
          `${f(m('warden/plain') / m('direct'))} | ${f(m('warden/masked') / m('direct'))} | ` +
          `${f(m('warden/plain') / m('pgbouncer'))} | ${f(m('warden/masked') / m('pgbouncer'))} | ${f(c('warden/plain'))} / ${f(c('warden/masked'))} |`,
      );
    }
    for (const [k, v] of Object.entries(errors)) say(`- ${k}: ${v}`);
    say();
  }

  // 4. peak RSS, 8 concurrent clients
  if (!flag('skip-rss')) {
    const pid = warden.child.pid;
    const canReset = resetPeak(pid);
    say(`## Warden peak RSS, ${CLIENTS} clients x SELECT * of ${ROWS} rows (goal < 200 MB)`);
    say();
    say(
      `Warden RSS after start-up (no statement yet): ${(rssIdle / 1024).toFixed(0)} MB; before this test (after the statements above): ${(memKb(pid).rss / 1024).toFixed(0)} MB. VmHWM ${canReset ? 'reset before each variant (clear_refs 5)' : 'NOT resettable: it includes earlier variants'}.`,
    );
    say();
    say(
      '| variant | wall s | rows ok | Warden cpu-s | peak VmRSS (50 ms samples) MB | VmHWM MB | RSS after MB | load |',
    );
    say('|---|---:|---:|---:|---:|---:|---:|---|');
    const slow = { initialMs: 3000, every: 16 << 20, pauseMs: 400 };
    for (const [name, conn, slowness] of [
      ['plain, fast readers', 'warden/plain', null],
      ['masked, fast readers', 'warden/masked', null],
      ['plain, slow readers', 'warden/plain', slow],
      ['masked, slow readers', 'warden/masked', slow],
    ]) {
      await sleep(1000);
      resetPeak(pid);
      let peak = 0;
      const timer = setInterval(() => {
        try {
          peak = Math.max(peak, memKb(pid).rss);
        } catch {}
      }, 50);
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      const wires = await Promise.all(Array.from({ length: CLIENTS }, () => Wire.open(via[conn])));
      const rs = await Promise.all(
        wires.map((w) => w.query(tests.select, { slow: slowness }).catch((e) => ({ error: e.message }))),
      );
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(pid) - cpu0;
      for (const w of wires) w.close();
      clearInterval(timer);
      const m = memKb(pid);
      peak = Math.max(peak, m.rss);
      const ok = rs.filter((r) => !r.error && r.rows === ROWS).length;
      for (const r of rs) if (r.error) log(`${name}: ${r.error}`);
      say(
        `| ${name} | ${wall.toFixed(1)} | ${ok}/${CLIENTS} | ${cpu.toFixed(1)} | ${(peak / 1024).toFixed(0)} | ${(m.hwm / 1024).toFixed(0)} | ${(m.rss / 1024).toFixed(0)} | ${loadavg()} |`,
      );
    }
    say();
    say(
      `Slow readers: each stops reading for ${slow.initialMs} ms after sending the query, then for ${slow.pauseMs} ms after every ${slow.every >> 20} MB.`,
    );
    say();
  }
  say(`Load at end: ${loadavg()}`);

  warden.child.kill('SIGTERM');
  bouncer.child?.kill('SIGTERM');
  await sleep(500);
  if (!flag('keep')) {
    const r = await run(admin, `drop database if exists ${DB} with (force)`).catch((e) => ({
      error: e.message,
    }));
    if (r.error) log(`drop database: ${r.error}`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${report.join('\n')}\n`);
  log(`wrote ${OUT} (bench/results/ is gitignored)`);
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`FATAL: ${err.stack ?? err}`);
    process.exit(1);
  },
);
