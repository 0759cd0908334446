// A gateway stand-in for the multi-process audit tests: opens the shared store, prints
// "ready", waits for "go" on stdin (so every worker starts at once), then appends as fast as it can.
// usage: node append-worker.js <dataDir> <worker-name> <count> <in-flight> [store-url]
import { once } from 'node:events';
import { Store } from '../../store/store.js';
import { AuditLog } from '../log.js';
import { event } from './trail.js';

const [dataDir, worker, countArg, inFlightArg, url] = process.argv.slice(2);
if (!dataDir || !worker || !countArg || !inFlightArg) {
  process.stderr.write('usage: append-worker <dataDir> <worker-name> <count> <in-flight> [store-url]\n');
  process.exit(2);
}
const count = Number(countArg);
const inFlight = Number(inFlightArg);

const store = await Store.open({ url: url || undefined, dataDir });
const log = new AuditLog(store);
process.stdout.write('ready\n');
process.stdin.setEncoding('utf8');
let input = '';
while (!input.includes('go')) {
  const [chunk] = (await once(process.stdin, 'data')) as [string];
  input += chunk;
}

// `inFlight` callers each awaiting their own appends, so this process writes in small batches.
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < count) {
      const i = next++;
      await log.append(event(i, { worker }));
    }
  }),
);
await log.close();
await store.close();
process.stdout.write(`done ${count}\n`);
