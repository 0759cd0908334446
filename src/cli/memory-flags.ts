// V8 settings for a long-running gateway, applied before anything else is loaded (this module is
// the first import of the `warden` command). WARDEN_V8_FLAGS replaces them (empty: V8's defaults).
// Measured with bench/pg-stream.mjs (8 clients each streaming 1M rows through the PostgreSQL
// listener): peak RSS 264-294 MB with V8's defaults, 137-153 MB with these; pgbench -S costs
// the same Warden CPU per transaction either way (66-67 against 69-70 µs).
// - liftoff-only: the SQL parser's WebAssembly stays on V8's baseline compiler. Optimizing that
//   large module holds about 50 MB (up to 140 MB) in compiler threads for parses about 20% faster,
//   and parses are cached by normalized statement: only new statement shapes pay it.
// - max-semi-space-size=4 (MB; default 16): a relay's garbage is short-lived, and a smaller young
//   generation keeps what many concurrent result streams leave behind small.
// (optimize-for-size gives similar memory but costs about 25 µs of CPU per transaction.)
import { setFlagsFromString } from 'node:v8';

export const DEFAULT_V8_FLAGS = '--liftoff-only --max-semi-space-size=4';

for (const flag of (process.env.WARDEN_V8_FLAGS ?? DEFAULT_V8_FLAGS).split(/\s+/)) {
  if (flag !== '') setFlagsFromString(flag);
}
