// Policy hot paths on this machine, in one run: PostgreSQL analysis (distinct texts, distinct texts
// of one shape whose literals vary, cached texts),
// decide() on cached facts, column masking (0, 1, 5 masked columns; detectors on every value) and
// the stream masker over terminal-like text. Prints numbers and the issue's aims; no thresholds.
//   npm run build && node bench/policy.mjs
import { ruleSet } from '../dist/config/rules.js';
import * as pg from '../dist/policy/analyzers/postgres.js';
import { Decider, decide } from '../dist/policy/decide.js';
import { createMasker, createStreamMasker } from '../dist/policy/mask/index.js';

const DISTINCT = 20_000;
const SHAPES = 50;
const CACHED_SET = 50;
const CACHED_CALLS = 500_000;
const DECISIONS = 500_000;
const ROWS = 100_000;
const STREAM_MB = 50;
const STREAM_CHUNK = 16 * 1024;
const MB = 1e6;

let sink = 0; // consumed results, so no measured call is dead code

function time(fn) {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

// ---- 1. PostgreSQL analysis -------------------------------------------------------------------

const TABLES = ['orders', 'users', 'invoices', 'payments', 'shipments', 'products', 'sessions', 'accounts'];
const SCHEMAS = ['public', 'billing', 'sales', 'app'];
const COLS = ['status', 'amount', 'region', 'created_at', 'updated_at', 'owner_id', 'priority', 'note'];
const STATES = ['pending', 'paid', 'shipped', 'refunded', 'cancelled'];

// Every statement carries `i` in identifiers (aliases, CTE names, column suffixes) and in literals.
function statement(i) {
  const t = TABLES[i % TABLES.length];
  const u = TABLES[(i * 7 + 3) % TABLES.length];
  const s = SCHEMAS[i % SCHEMAS.length];
  const c = COLS[i % COLS.length];
  const d = COLS[(i * 5 + 1) % COLS.length];
  const st = STATES[i % STATES.length];
  const day = `2024-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}`;
  switch (i % 6) {
    case 0:
      return `select a.id, a.${c}, b.${d} as ${d}_${i}, u.email from ${s}.${t} a join ${u} b on b.${t}_id = a.id left join users u on u.id = a.owner_id where a.${c} = '${st}' and a.created_at >= '${day}' and b.amount > ${i % 997} order by a.created_at desc limit ${(i % 200) + 1}`;
    case 1:
      return `update ${s}.${t} set ${c} = '${st}-${i}', updated_at = now() where id = ${i * 13} and ${d} is not null returning id, ${c}`;
    case 2:
      return `insert into ${t} (id, owner_id, ${c}, email_${i % 50}, created_at) values (${i}, ${i * 3}, '${st}', 'user${i}@example.com', '${day}') on conflict (id) do update set ${c} = excluded.${c}`;
    case 3:
      return `with recent_${i} as (select owner_id, sum(amount) as total from ${s}.${t} where created_at > '${day}' group by owner_id), top_${i} as (select owner_id from recent_${i} where total > ${i % 5000}) select u.id, u.name, r.total from users u join recent_${i} r on r.owner_id = u.id where u.id in (select owner_id from top_${i}) order by r.total desc`;
    case 4:
      return `delete from ${t} where ${c} = '${st}' and created_at < '${day}'::date - interval '${(i % 90) + 1} days' and id not in (select ${t}_id from ${u} where ${d} = ${i})`;
    default:
      return `select ${c}, count(*) as n_${i}, avg(amount) from ${s}.${t} where region = any(array['eu-${i % 17}', 'us-${i % 13}']) and ${d} between ${i} and ${i + 500} group by ${c} having count(*) > ${i % 10} order by n_${i} desc`;
  }
}

// One of SHAPES statements with its literals changed for every `i`, as ORMs and scripts that
// inline values send them: every text is new, its normalized form is not.
function sameShape(i) {
  return statement(3_000_000 + (i % SHAPES)).replace(/'[^']*'|\b\d+\b/g, (m) =>
    m.startsWith("'") ? `'v${i}'` : String(i % 100_000),
  );
}

const { analyzePostgres, analyzePostgresUncached, loadPostgresAnalyzer } = pg;
await loadPostgresAnalyzer();
const warmSql = Array.from({ length: 2_000 }, (_, k) => statement(DISTINCT + 1_000_000 + k));
const distinctSql = Array.from({ length: DISTINCT }, (_, k) => statement(k));
const distinctCount = new Set(distinctSql).size;
for (const q of warmSql) {
  const f = analyzePostgresUncached(q);
  if (f.unparseable !== null) throw new Error(`bench statement did not parse: ${f.unparseable}\n${q}`);
}
const uncachedMs = time(() => {
  for (const q of distinctSql) sink += analyzePostgresUncached(q).statements.length;
});

const cachedSql = Array.from({ length: CACHED_SET }, (_, k) => statement(2_000_000 + k));
for (let k = 0; k < 100_000; k++) sink += analyzePostgres(cachedSql[k % CACHED_SET]).statements.length;
const cachedMs = time(() => {
  for (let k = 0; k < CACHED_CALLS; k++) sink += analyzePostgres(cachedSql[k % CACHED_SET]).statements.length;
});

// Through the cache: new shapes (every call misses both levels), then new texts of warmed shapes.
const missSql = Array.from({ length: DISTINCT }, (_, k) => statement(4_000_000 + k));
const missMs = time(() => {
  for (const q of missSql) sink += analyzePostgres(q).statements.length;
});
const shapeSql = Array.from({ length: DISTINCT }, (_, k) => sameShape(k));
const shapeCount = new Set(shapeSql).size;
for (let k = 0; k < SHAPES; k++) {
  const f = analyzePostgres(sameShape(DISTINCT + k));
  if (f.unparseable !== null) throw new Error(`bench statement did not parse: ${f.unparseable}`);
}
const statsBefore = pg.postgresCacheStats?.();
const shapeMs = time(() => {
  for (const q of shapeSql) sink += analyzePostgres(q).statements.length;
});
const statsAfter = pg.postgresCacheStats?.();

// ---- 2. decide() on cached facts --------------------------------------------------------------

const rules = ruleSet.parse([
  {
    name: 'no-drop-table',
    match: { tags: ['prod'] },
    when: { sql: { statements: ['drop'], objects: ['table'] } },
    effect: 'deny',
    message: 'Dropping tables in production needs a change request.',
  },
  {
    name: 'no-truncate',
    match: { tags: ['prod'] },
    when: { sql: { statements: ['truncate'] } },
    effect: 'deny',
  },
  {
    name: 'review-unbounded-deletes',
    when: { sql: { statements: ['update', 'delete'], where: 'absent' } },
    effect: 'review',
    review: { approvers: ['dba'], approvals: 1, hold: '5m' },
  },
  {
    name: 'review-prod-ddl',
    match: { connections: ['orders-*'], tags: ['prod'] },
    when: { sql: { statements: ['alter', 'create'] } },
    effect: 'review',
    review: { approvers: ['dba'] },
  },
  {
    name: 'mask-pii-email',
    match: { tags: ['pii'] },
    effect: 'mask',
    mask: { columns: ['*.email'], style: 'keep-last-4' },
  },
  {
    name: 'mask-pii-ssn',
    match: { tags: ['pii'] },
    when: { sql: { tables: ['users', 'public.accounts'] } },
    effect: 'mask',
    mask: { columns: ['users.ssn', 'accounts.iban'], style: 'redact' },
  },
  {
    name: 'mask-agent-detectors',
    match: { tags: ['pii'], kinds: ['agent'] },
    effect: 'mask',
    mask: { detectors: ['email', 'card', 'iban'], style: 'redact' },
  },
  {
    name: 'agents-limits',
    match: { kinds: ['agent'] },
    effect: 'limit',
    limit: { rows: 1000, duration: '30s' },
  },
  {
    name: 'agents-no-admin-functions',
    match: { kinds: ['agent'] },
    when: { sql: { functions: ['pg_*', 'dblink*'] } },
    effect: 'deny',
  },
  {
    name: 'deep-chain-read-only',
    match: { chain_depth: { min: 2 } },
    when: { sql: { statements: ['insert', 'update', 'delete', 'merge'] } },
    effect: 'deny',
  },
  { name: 'no-audit-writes', when: { sql: { tables_written: ['audit_*', '*.audit_*'] } }, effect: 'deny' },
]);

const connection = { name: 'orders-db', tags: ['prod', 'pii'], protocol: 'postgres', default: 'allow' };
const contexts = [
  { connection, caller: { subject: 'alice', groups: ['dev', 'analytics'], kind: 'human', chain: [] } },
  { connection, caller: { subject: 'etl', groups: ['service'], kind: 'service', chain: [] } },
  { connection, caller: { subject: 'planner-bot', groups: ['agents'], kind: 'agent', chain: ['alice'] } },
  {
    connection,
    caller: { subject: 'sub-agent', groups: ['agents'], kind: 'agent', chain: ['alice', 'planner-bot'] },
  },
];
const decideSql = [
  statement(0),
  statement(1),
  statement(2),
  statement(3),
  statement(4),
  statement(5),
  'delete from orders',
  'update users set email = null',
  'drop table public.orders',
  'truncate sessions',
  'alter table users add column ssn text',
  'select pg_terminate_backend(pid) from pg_stat_activity',
  'select u.email, u.ssn from users u where u.id = 42',
  'insert into audit_log (seq) values (1)',
];
const decideFacts = decideSql.map((q) => analyzePostgres(q));
const pairs = contexts.flatMap((c) => decideFacts.map((f) => [c, f]));
const runDecisions = (n) => {
  for (let k = 0; k < n; k++) {
    const [c, f] = pairs[k % pairs.length];
    sink += decide(rules, c, f).rules.length;
  }
};
runDecisions(100_000);
const decideMs = time(() => runDecisions(DECISIONS));
// The gateway's path: a Decider caches per facts object and caller.
const decider = new Decider(rules);
const runCached = (n) => {
  for (let k = 0; k < n; k++) {
    const [c, f] = pairs[k % pairs.length];
    sink += decider.decide(c, f).rules.length;
  }
};
runCached(100_000);
const decideCachedMs = time(() => runCached(DECISIONS));

// ---- 3. Masking -------------------------------------------------------------------------------

const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Dennis', 'Barbara', 'Ken', 'Frances', 'Edsger', 'Radia'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Ritchie', 'Liskov', 'Thompson', 'Allen'];
const CITY = ['Lisbon', 'Berlin', 'Oslo', 'Toronto', 'Nairobi', 'Osaka', 'Lima', 'Dublin'];
const NOTES = [
  'called about late delivery, refund approved',
  'prefers email contact, do not call after 6pm',
  'VIP customer since 2019; assign senior agent',
  'address verified by courier on last shipment',
];
const columns = ['id', 'name', 'email', 'phone', 'address', 'city', 'note', 'created_at'].map((name) => ({
  table: 'users',
  name,
}));
const hex = (n, w) => n.toString(16).padStart(w, '0').slice(-w);
function row(i) {
  const first = FIRST[i % FIRST.length];
  const last = LAST[(i * 3) % LAST.length];
  return [
    `${hex(i * 2654435761, 8)}-${hex(i, 4)}-4${hex(i * 7, 3)}-a${hex(i * 11, 3)}-${hex(i * 40503, 12)}`,
    `${first} ${last}`,
    `${first.toLowerCase()}.${last.toLowerCase()}${i}@example.com`,
    `+1 415 555 ${String(i % 10_000).padStart(4, '0')}`,
    `${(i % 9000) + 10} ${LAST[i % LAST.length]} Street, Apt ${(i % 300) + 1}`,
    CITY[i % CITY.length],
    `${NOTES[i % NOTES.length]} (ticket ${i})`,
    new Date(1_700_000_000_000 + i * 60_000).toISOString(),
  ];
}
const rows = Array.from({ length: ROWS }, (_, i) => row(i));
const rowBytes = rows.reduce((sum, r) => sum + r.reduce((s, v) => s + Buffer.byteLength(v), 0), 0);

function maskRun(masker) {
  const plan = masker.plan(columns);
  for (let i = 0; i < 10_000; i++) sink += plan.mask(rows[i]).length;
  const ms = time(() => {
    for (let i = 0; i < ROWS; i++) sink += plan.mask(rows[i]).length;
  });
  return rowBytes / MB / (ms / 1000);
}
const maskResults = [
  ['0 masked columns', createMasker({ columns: [], detectors: [], style: 'redact' })],
  ['1 masked column', createMasker({ columns: ['users.email'], detectors: [], style: 'redact' })],
  [
    '5 masked columns',
    createMasker({
      columns: ['users.email', 'users.name', 'users.phone', 'users.address', '*.note'],
      detectors: [],
      style: 'redact',
    }),
  ],
  ['detectors on every value', createMasker({ style: 'redact' })],
].map(([label, masker]) => [label, maskRun(masker)]);

// Terminal-like text: logs, a directory listing, a few secrets (JWT, AWS key, email, PEM block) per block.
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const PEM =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n-----END PRIVATE KEY-----';
function terminalBlock(seed) {
  const lines = [];
  for (let k = 0; k < 9_000; k++) {
    const n = seed * 9_000 + k;
    if (k % 10 === 9)
      lines.push(
        `-rw-r--r--  1 deploy staff  ${(n * 37) % 99_999} May ${(n % 28) + 1} 12:0${n % 10} build-${n}.log`,
      );
    else
      lines.push(
        `2024-05-01T12:${String(n % 60).padStart(2, '0')}:00.${n % 1000}Z INFO  worker-${n % 8} processed job ${n} in ${n % 97}ms queue=default`,
      );
  }
  lines.splice(1_000, 0, `Authorization: Bearer ${JWT}`);
  lines.splice(4_000, 0, 'export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE');
  lines.splice(6_000, 0, 'git config user.email ops-team@example.com');
  lines.splice(8_000, 0, PEM);
  return `${lines.join('\r\n')}\r\n`;
}
const blocks = [];
let streamBytes = 0;
for (let b = 0; streamBytes < STREAM_MB * MB; b++) {
  const buf = Buffer.from(terminalBlock(b));
  blocks.push(buf);
  streamBytes += buf.length;
}
const stream = Buffer.concat(blocks);
function streamRun(bytes) {
  const s = createStreamMasker(createMasker({ style: 'redact' }));
  let out = 0;
  for (let at = 0; at < bytes.length; at += STREAM_CHUNK)
    out += s.push(bytes.subarray(at, at + STREAM_CHUNK)).length;
  return out + s.end().length;
}
sink += streamRun(stream.subarray(0, 2 * 1_000_000));
const streamMs = time(() => {
  sink += streamRun(stream);
});

// ---- Report -----------------------------------------------------------------------------------

const fmt = (n, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const uncachedRate = DISTINCT / (uncachedMs / 1000);
const cachedRate = CACHED_CALLS / (cachedMs / 1000);
const missRate = DISTINCT / (missMs / 1000);
const shapeRate = DISTINCT / (shapeMs / 1000);
const decideUs = (decideMs * 1000) / DECISIONS;
const decideCachedUs = (decideCachedMs * 1000) / DECISIONS;
const table = [
  [
    'pg analyze, distinct statements',
    `${fmt(uncachedRate)} stmt/s`,
    '> 10,000 stmt/s',
    uncachedRate / 10_000,
  ],
  ['pg analyze, distinct through cache (miss)', `${fmt(missRate)} stmt/s`, '-', null],
  ['pg analyze, distinct texts, same shape', `${fmt(shapeRate)} stmt/s`, '-', null],
  ['pg analyze, cached (LRU hit)', `${fmt(cachedRate)} stmt/s`, '-', null],
  ['decide(), rules evaluated', `${fmt(decideUs, 3)} µs/call`, '-', null],
  ['Decider, cached decision', `${fmt(decideCachedUs, 3)} µs/call`, '< 5 µs/call', 5 / decideCachedUs],
  ...maskResults.map(([label, rate]) => [
    `column masking, ${label}`,
    `${fmt(rate, 1)} MB/s`,
    label.startsWith('detectors') ? '-' : '> 100 MB/s',
    label.startsWith('detectors') ? null : rate / 100,
  ]),
  ['stream masker, all detectors', `${fmt(streamBytes / MB / (streamMs / 1000), 1)} MB/s`, '-', null],
];
console.log(`policy bench (node ${process.version}, MB = 10^6 bytes)`);
console.log(
  `pg: ${fmt(DISTINCT)} statements (${fmt(distinctCount)} distinct texts); same shape: ${fmt(shapeCount)} distinct texts of ${SHAPES} shapes (literals vary); cached: ${fmt(CACHED_CALLS)} calls over ${CACHED_SET} texts`,
);
if (statsBefore && statsAfter) {
  const delta = (k) => fmt(statsAfter[k] - statsBefore[k]);
  console.log(
    `pg cache during same shape: ${delta('exactHits')} exact hits, ${delta('normalizedHits')} normalized hits, ${delta('misses')} misses`,
  );
}
console.log(
  `decide: ${rules.length} rules, ${fmt(DECISIONS)} calls over ${pairs.length} (context, facts) pairs; ` +
    `masking: ${fmt(ROWS)} rows x ${columns.length} columns, ${fmt(rowBytes / ROWS)} bytes/row, redact; ` +
    `stream: ${fmt(streamBytes / MB, 1)} MB in ${STREAM_CHUNK / 1024} KiB chunks`,
);
console.log(`${'measure'.padEnd(44)} ${'result'.padStart(20)}   ${'aim'.padEnd(16)} result/aim`);
for (const [label, result, aim, ratio] of table) {
  console.log(
    `${label.padEnd(44)} ${result.padStart(20)}   ${aim.padEnd(16)} ${ratio === null ? '-' : `${ratio.toFixed(2)}x`}`,
  );
}
console.log(
  `distinct vs cached: ${(cachedRate / uncachedRate).toFixed(0)}x; same shape vs distinct: ${(shapeRate / uncachedRate).toFixed(1)}x; miss vs uncached: ${(missRate / uncachedRate).toFixed(2)}; 5 vs 0 masked columns: ${(maskResults[2][1] / maskResults[0][1]).toFixed(2)}; detectors vs 0 masked: ${(maskResults[3][1] / maskResults[0][1]).toFixed(3)}`,
);
if (sink === -1) console.log('');
