// Audit append throughput: Warden's hash-chained, serialized, batched AuditLog against the
// floor of the same store (plain batched INSERTs of the same rows, no chain, no lock),
// on SQLite and on PostgreSQL, in one run. Prints events/s and the ratio to the floor.
//   npm run build && node bench/audit-append.mjs [events=20000] [concurrency=64]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../dist/audit/log.js';
import { Store } from '../dist/store/store.js';
import { createThrowawayDb } from '../dist/testing/postgres.js';

const EVENTS = Number(process.argv[2] ?? 20_000);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const actor = { subject: 'bench-agent', kind: 'agent', chain: ['alice', 'planner'] };
const event = (i) => ({
  type: 'sql.command',
  actor,
  target: 'connection:orders-db',
  outcome: 'success',
  payload: { i, sql: `select * from orders where id = $1`, params: [i], rows: 1 },
});

async function warden(store) {
  const log = new AuditLog(store);
  const start = performance.now();
  let next = 0;
  // CONCURRENCY sessions each appending and awaiting their record, as engines do.
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < EVENTS) await log.append(event(next++));
    }),
  );
  const ms = performance.now() - start;
  await log.close();
  return ms;
}

async function floor(store) {
  const start = performance.now();
  const base = 10_000_000;
  for (let i = 0; i < EVENTS; i += 500) {
    const rows = [];
    for (let j = i; j < Math.min(EVENTS, i + 500); j++) {
      rows.push({
        seq: base + j,
        event_id: randomUUID(),
        time: new Date().toISOString(),
        type: 'sql.command',
        actor_json: JSON.stringify(actor),
        target: 'connection:orders-db',
        outcome: 'success',
        payload_json: JSON.stringify(event(j).payload),
        prev_hash: '',
        hash: '',
      });
    }
    for (let k = 0; k < rows.length; k += 100)
      await store.db
        .insertInto('audit_log')
        .values(rows.slice(k, k + 100))
        .execute();
  }
  return performance.now() - start;
}

const results = [];
for (const dialect of ['sqlite', 'postgres']) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  const pg = dialect === 'postgres' ? await createThrowawayDb('warden_bench') : undefined;
  const store = await Store.open({ url: pg?.url, dataDir: dir });
  try {
    await warden(store); // warm-up pass (JIT, caches); its rows stay, as in a live store
    const w = await warden(store);
    const f = await floor(store);
    results.push({ dialect, warden: (EVENTS / w) * 1000, floor: (EVENTS / f) * 1000 });
  } finally {
    await store.close();
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`audit append, ${EVENTS} events, ${CONCURRENCY} concurrent appenders (node ${process.version})`);
console.log('store      warden ev/s   plain-insert ev/s   ratio');
for (const r of results) {
  console.log(
    `${r.dialect.padEnd(10)} ${r.warden.toFixed(0).padStart(11)}   ${r.floor.toFixed(0).padStart(17)}   ${(r.warden / r.floor).toFixed(2)}`,
  );
}
