import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isUnavailable, Store, StoreUnavailableError } from '../store/store.js';
import { DIALECTS, type DialectName, type StoreFixture, storeFixture } from '../testing/dialects.js';
import { startTcpProxy, type TcpProxy } from '../testing/tcp-proxy.js';
import { AuditLog } from './log.js';
import { event, openTrail, type Trail } from './testdata/trail.js';

const WORKER = fileURLToPath(new URL('./testdata/append-worker.js', import.meta.url));
const HOOK = { timeout: 30_000 };
const WORKERS = 3;
// SQLite's lock is not fair: a process appending in a tight loop can hold it for hundreds of
// records while the others' busy handlers sleep, so it needs more records to show the handovers
// (measured: 300 each sometimes gave 3 runs; 3000 each gave 21 or more). PostgreSQL's advisory
// lock queues waiters, and 300 each interleave hundreds of times.
const PER_WORKER: Record<DialectName, number> = { sqlite: 3000, postgres: 300 };

interface Worker {
  name: string;
  child: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  exited: Promise<void>;
}

function startWorker(fx: StoreFixture, name: string, count: number): Worker {
  const child = spawn(
    process.execPath,
    [WORKER, fx.dataDir, name, String(count), '4', ...(fx.url ? [fx.url] : [])],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', () => reject(new Error(`worker ${name} exited before it was ready:\n${err}`)));
  });
  // 'close', not 'exit': only then has all of the worker's output been read.
  const exited = new Promise<void>((resolve, reject) => {
    child.once('close', (code) =>
      code === 0 && out.includes(`done ${count}`)
        ? resolve()
        : reject(new Error(`worker ${name} exited with ${code}:\n${err}`)),
    );
  });
  // A test that fails early never awaits these; they must not surface as unhandled rejections.
  ready.catch(() => undefined);
  exited.catch(() => undefined);
  return { name, child, ready, exited };
}

for (const dialect of DIALECTS) {
  describe(`audit log shared by several processes (${dialect})`, { timeout: 60_000 }, () => {
    let fx: StoreFixture;
    let trail: Trail;
    const workers: Worker[] = [];

    before(async () => {
      fx = await storeFixture(dialect);
      trail = await openTrail(fx); // migrates before the workers open the same store
    }, HOOK);
    after(async () => {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await trail?.close();
      await fx?.cleanup();
    }, HOOK);

    it('interleaves appends from three OS processes into one chain with no seq lost or repeated', async () => {
      await trail.reset();
      const perWorker = PER_WORKER[dialect];
      workers.push(...['a', 'b', 'c'].slice(0, WORKERS).map((name) => startWorker(fx, name, perWorker)));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.stdin.end('go\n');
      await Promise.all(workers.map((w) => w.exited));

      const total = WORKERS * perWorker;
      const report = await trail.verify();
      assert.equal(report.ok, true, report.problem?.message);
      assert.deepEqual([report.records, report.first_seq, report.last_seq], [total, 1, total]);

      const records = await trail.records();
      for (const w of workers) {
        const mine = records
          .filter((r) => r.payload.worker === w.name)
          .map((r) => r.payload.i as number)
          .sort((x, y) => x - y);
        assert.deepEqual(
          mine,
          Array.from({ length: perWorker }, (_, i) => i),
          `every event of worker ${w.name} is in the chain exactly once`,
        );
      }
      // Runs of consecutive records from the same worker: one run per worker would mean they took turns.
      const runs = records.filter((r, i) => i === 0 || r.payload.worker !== records[i - 1]!.payload.worker);
      assert.ok(runs.length > WORKERS, `the workers' appends interleaved (${runs.length} runs)`);
    });
  });
}

describe('audit log while PostgreSQL is unreachable', { timeout: 30_000 }, () => {
  let fx: StoreFixture;
  let direct: Trail;
  let proxy: TcpProxy;
  let store: Store | undefined;
  let log: AuditLog | undefined;

  before(async () => {
    fx = await storeFixture('postgres');
    direct = await openTrail(fx);
    const target = new URL(fx.url!);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  }, HOOK);
  after(async () => {
    // Close the clients while the proxy still carries them, then the proxy.
    await log?.close();
    await store?.close();
    await proxy?.cut();
    await direct?.close();
    await fx?.cleanup();
  }, HOOK);

  it('keeps events while the store is cut off and writes each exactly once when it is back', async () => {
    const url = new URL(fx.url!);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    store = await Store.open({
      url: url.toString(),
      dataDir: fx.dataDir,
      onBackgroundError: () => undefined,
    });
    const errors: Error[] = [];
    log = new AuditLog(store, { onError: (err) => errors.push(err) });

    assert.equal((await log.append(event(0))).seq, 1);
    await proxy.cut();
    for (let i = 1; i <= 5; i++) log.record(event(i));
    await assert.rejects(log.append(event(6)), StoreUnavailableError);
    assert.equal(log.queued, 6, 'nothing was dropped while the store was away');
    assert.ok(errors.length > 0);
    for (const err of errors) assert.ok(isUnavailable(err), `${err.message} counts as unavailable`);

    await proxy.restore();
    await log.drain();
    assert.equal(log.queued, 0);
    assert.equal(log.lastError, undefined);

    const records = await direct.records();
    assert.deepEqual(
      records.map((r) => [r.seq, r.payload.i]),
      [0, 1, 2, 3, 4, 5, 6].map((i) => [i + 1, i]),
      'each event once, in the order it was recorded (the rejected append included: it was kept)',
    );
    const report = await direct.verify();
    assert.equal(report.ok, true, report.problem?.message);
    assert.equal(report.records, 7);
  });

  it('does not write a batch twice when the COMMIT succeeded but its acknowledgement was lost', async () => {
    assert.ok(log && store);
    const before = (await direct.records()).length;
    // PostgreSQL's CommandComplete for COMMIT: the batch is durable, then the connection dies.
    const tripped = proxy.cutWhenServerSends(Buffer.from('COMMIT\0'));
    const pending = [10, 11, 12].map((i) =>
      log!.append(event(i)).then(
        (r) => r,
        (err: Error) => err,
      ),
    );
    await tripped;
    const outcomes = await Promise.all(pending);
    assert.ok(
      outcomes.every((o) => o instanceof StoreUnavailableError),
      'the writer did not hear back, so it reports the store unavailable',
    );
    const committed = await direct.records();
    assert.ok(committed.length > before, 'the first batch reached the store before the connection died');

    await proxy.restore();
    await log.drain();
    const records = await direct.records();
    assert.deepEqual(
      records.slice(before).map((r) => r.payload.i),
      [10, 11, 12],
      'the retry found what was already written and added only the rest',
    );
    const report = await direct.verify();
    assert.equal(report.ok, true, report.problem?.message);
  });
});
