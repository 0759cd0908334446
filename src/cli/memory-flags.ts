// V8 settings for a long-running gateway, applied before anything else is loaded (this module is
// the first import of the `warden` command). WARDEN_V8_FLAGS replaces them (empty: V8's defaults).
// Measured with bench/pg-stream.mjs (8 clients each streaming 1M rows through the PostgreSQL
// listener): peak RSS 264-294 MB with V8's defaults, 137-153 MB with liftoff-only; pgbench -S
// costs the same Warden CPU per transaction either way (66-67 against 69-70 µs).
// - liftoff-only: the SQL parser's WebAssembly stays on V8's baseline compiler. Optimizing that
//   large module holds about 50 MB (up to 140 MB) in compiler threads for parses about 20% faster,
//   and parses are cached by normalized statement: only new statement shapes pay it.
// (optimize-for-size gives similar memory but costs about 25 µs of CPU per transaction.)
// The young generation cannot be set from here: V8 sizes it when the heap is made, before any
// module runs, so --max-semi-space-size set at this point changes nothing (new space stays at
// 33.6 MB). Given to node itself (`node --max-semi-space-size=4`, or NODE_OPTIONS, as `npm start`
// does), it lowers peak RSS by another 15-20 MB at no measured CPU cost: see the README.
import { setFlagsFromString } from 'node:v8';

export const DEFAULT_V8_FLAGS = '--liftoff-only';

for (const flag of (process.env.WARDEN_V8_FLAGS ?? DEFAULT_V8_FLAGS).split(/\s+/)) {
  if (flag !== '') setFlagsFromString(flag);
}
