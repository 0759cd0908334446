#!/usr/bin/env node
// mask-rows.mjs - the per-row cost of masking DataRows, without sockets: RowMasker over realistic
// messages (id, name, email, note; ~100 bytes of text per row) for each style, in ns/row.
//
//   npm run build && node bench/mask-rows.mjs              # 1M rows per case, 3 rounds, median shown
//   node bench/mask-rows.mjs --rows 200000 --rounds 5 --dist /tmp/other-dist
//
// Cases: `email` masked whole (redact, keep-last-4, tokenize on unique emails, tokenize-1000-distinct: the
// same emails repeating), and redact+detectors: a rule whose detectors scan the other text fields. Each case
// twice: every masked row into a buffer of its own (RowMasker.mask), and 64 KB reads framed and written into
// one output buffer per read (ChunkOutput), as the gateway sends them. Prints the machine load with the numbers, since the machine is shared and the numbers move with it. --cases a,b
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = resolve(opt('dist', join(REPO, 'dist')));
const ROWS = Number(opt('rows', 1_000_000));
const ROUNDS = Number(opt('rounds', 3));
const only = opt('cases', '');

const load = async (p) => import(pathToFileURL(join(DIST, p)).href);
const { MaskSet } = await load('policy/mask/mask-set.js');
const { dataRow } = await load('protocols/postgres/codec.js');
const { RowMasker } = await load('protocols/postgres/row-mask.js');
const { MessageFramer } = await load('protocols/postgres/codec.js');
const { ChunkOutput } = await load('protocols/postgres/chunk-output.js');

const KEY = Buffer.alloc(32, 7);
const field = (name, typeOid) => ({ name, tableOid: 1, column: 0, typeOid, format: 0 });
const FIELDS = [field('id', 23), field('name', 25), field('email', 25), field('note', 25)];
const COLUMNS = FIELDS.map((f) => ({ table: 'bench_rows', name: f.name }));

// A pool of distinct messages, cycled; big enough that the CPU caches do not flatter the numbers.
function rows(distinctEmails) {
  const out = [];
  for (let i = 0; i < 65_536; i++) {
    const e = distinctEmails ? i % distinctEmails : i;
    const raw = dataRow([
      Buffer.from(String(i + 1)),
      Buffer.from(`name-${i.toString(36).padStart(6, '0')}`),
      Buffer.from(`user${e}@example${e % 97}.com`),
      Buffer.from(`note ${i} ${'lorem ipsum dolor sit amet '.repeat(2)}`),
    ]);
    out.push({ raw });
  }
  return out;
}

const CASES = [
  { name: 'redact', rule: { columns: ['bench_rows.email'], style: 'redact' }, scans: false },
  { name: 'keep-last-4', rule: { columns: ['bench_rows.email'], style: 'keep-last-4' }, scans: false },
  { name: 'tokenize', rule: { columns: ['bench_rows.email'], style: 'tokenize' }, scans: false },
  {
    name: 'tokenize-1000-distinct',
    rule: { columns: ['bench_rows.email'], style: 'tokenize' },
    scans: false,
    distinct: 1000,
  },
  {
    name: 'redact+detectors',
    rule: { columns: ['bench_rows.email'], detectors: ['email', 'card', 'ssn'], style: 'redact' },
    scans: true,
  },
].filter((c) => !only || only.split(',').includes(c.name));

const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

console.log(`mask-rows: ${ROWS} rows per round, ${ROUNDS} rounds, dist ${DIST}, load ${loadavg()}`);
console.log(
  '| case | ns/row, own buffer (median) | rounds | ns/row, 64 KB chunks into one buffer each (median) | rounds |',
);
console.log('|---|---:|---|---:|---|');
for (const c of CASES) {
  const set = new MaskSet([c.rule], KEY);
  const plan = set.plan(COLUMNS);
  const pool = rows(c.distinct);
  // Built once per result shape, as the gateway does when a RowDescription arrives.
  const masker = new RowMasker(FIELDS, plan, c.scans);
  let sink = 0;
  for (let i = 0; i < 50_000; i++) sink += (masker.mask(pool[i & 65535].raw) ?? pool[i & 65535].raw).length;
  const times = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ROWS; i++) {
      const m = pool[i & 65535];
      sink += (masker.mask(m.raw) ?? m.raw).length;
    }
    times.push(Number(process.hrtime.bigint() - t0) / ROWS);
  }
  // As the gateway does it: the pool cut into 64 KB reads, framed, each read's rows written into one output.
  const stream = Buffer.concat(pool.map((m) => m.raw));
  const framer = new MessageFramer();
  const batches = [];
  for (let at = 0; at < stream.length; at += 65_536)
    batches.push(framer.push(stream.subarray(at, at + 65_536)));
  const perRound = batches.reduce((n, b) => n + b.length, 0);
  const out = new ChunkOutput();
  const chunked = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = process.hrtime.bigint();
    let done = 0;
    while (done < ROWS) {
      for (const batch of batches) {
        out.begin(batch);
        for (const m of batch) {
          const size = masker.measure(m.chunk, m.start, m.end);
          if (size < 0) out.pass(m);
          else masker.writeTo(out, m, size);
        }
        sink += out.take().length;
      }
      done += perRound;
    }
    if (r > 0) chunked.push(Number(process.hrtime.bigint() - t0) / done); // the first round warms up
  }
  if (sink === 0) console.log('(no output?)');
  const list = (ts) => ts.map((t) => t.toFixed(0)).join(', ');
  console.log(
    `| ${c.name} | ${median(times).toFixed(0)} | ${list(times)} | ${median(chunked).toFixed(0)} | ${list(chunked)} |`,
  );
}
console.log(`load after: ${loadavg()}`);
