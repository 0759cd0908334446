// Reads a pg-baseline.sh results.tsv and prints one line per test: the median of every path and
// Warden's (the `custom` path's) throughput relative to PgBouncer, direct and the Node relay.
//   node bench/pg-gateway-ratios.mjs <results.tsv> [--markdown]
// Medians and run selection follow pg-baseline.sh's summarizer: per round the last `ok` run, else
// the last `noisy` one (flagged *). Timed tests (copy_out, select_all) are in seconds and their
// ratios are other_s / warden_s, so every ratio reads as throughput: < 1 means Warden is slower.
import { readFileSync } from 'node:fs';

const [file, ...flags] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/pg-gateway-ratios.mjs <results.tsv> [--markdown]');
  process.exit(2);
}
const markdown = flags.includes('--markdown');
const lines = readFileSync(file, 'utf8').trim().split('\n');
const hdr = lines.shift().split('\t');
const rows = lines.filter(Boolean).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [hdr[i], v])));
const num = (v) => {
  const x = Number.parseFloat(v);
  return Number.isFinite(x) ? x : null;
};
const median = (a) => {
  const s = a.filter((x) => x !== null).sort((x, y) => x - y);
  const n = s.length;
  if (!n) return null;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const TIMED = new Set(['copy_out', 'select_all']);
const LABEL = {
  select_simple: '-S simple (tps)',
  select_ext: '-S extended (tps)',
  tpcb: 'TPC-B (tps)',
  churn: '-C churn (conn/s)',
  copy_out: 'COPY 1M rows (s)',
  select_all: 'select_all (s)',
};
const ORDER = ['direct', 'haproxy', 'pgbouncer', 'node', 'custom'];
const NAME = { custom: 'warden' };
const paths = ORDER.filter((p) => rows.some((r) => r.path === p));
const tests = [...new Set(rows.map((r) => r.test))];

function value(t, p) {
  const g = rows.filter((r) => r.test === t && r.path === p);
  const picked = [];
  let noisy = false;
  for (const rd of [...new Set(g.map((r) => r.round))]) {
    const inRound = g.filter((r) => r.round === rd);
    const good = inRound.filter((r) => r.status === 'ok');
    const nz = inRound.filter((r) => r.status === 'noisy');
    if (good.length) picked.push(good[good.length - 1]);
    else if (nz.length) {
      picked.push(nz[nz.length - 1]);
      noisy = true;
    }
  }
  const failed = g.filter((r) => r.status !== 'ok' && r.status !== 'noisy').map((r) => r.status);
  const m = median(picked.map((r) => num(TIMED.has(t) ? r.wall_s : r.tps)));
  return { m, noisy, failed, ran: g.length > 0 };
}

const fmt = (v, t) =>
  v === null ? '-' : TIMED.has(t) ? v.toFixed(2) : Math.round(v).toLocaleString('en-US');
const ratio = (t, w, o) =>
  w === null || o === null || !w || !o ? '-' : (TIMED.has(t) ? o / w : w / o).toFixed(2);
const refs = ['pgbouncer', 'direct', 'node'].filter((p) => paths.includes(p) && paths.includes('custom'));
const cols = ['test', ...paths.map((p) => NAME[p] ?? p), ...refs.map((p) => `warden/${p}`)];
const table = [cols];
const notes = [];
for (const t of tests) {
  const vals = Object.fromEntries(paths.map((p) => [p, value(t, p)]));
  const row = [LABEL[t] ?? t];
  for (const p of paths) {
    const v = vals[p];
    let cell = v.ran ? fmt(v.m, t) : 'n/a';
    if (v.noisy) cell += '*';
    if (v.failed.length) {
      cell += ` (FAIL: ${v.failed.join(',')})`;
      notes.push(`${t} via ${NAME[p] ?? p}: ${v.failed.join(', ')}`);
    }
    row.push(cell);
  }
  for (const p of refs) row.push(ratio(t, vals.custom.m, vals[p].m));
  table.push(row);
}

if (markdown) {
  console.log(`| ${cols.join(' | ')} |`);
  console.log(`|${cols.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const r of table.slice(1)) console.log(`| ${r.join(' | ')} |`);
} else {
  const w = cols.map((_, i) => Math.max(...table.map((r) => String(r[i]).length)));
  for (const [i, r] of table.entries()) {
    console.log(r.map((c, j) => (j === 0 ? String(c).padEnd(w[j]) : String(c).padStart(w[j]))).join('  '));
    if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('  '));
  }
}
console.log('');
console.log(
  'warden/X: Warden throughput relative to X (tps ratio; timed tests X_s / warden_s); < 1 = Warden slower.',
);
if (rows.some((r) => r.status === 'noisy'))
  console.log("'*': every attempt that round was disturbed by foreign CPU load.");
if (notes.length) console.log(`FAILED: ${notes.join('; ')}`);
