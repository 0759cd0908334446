// Durations in the config file ("90s", "15m", "12h", "7d", or a bare number of seconds),
// normalised to milliseconds so the rest of the code never guesses a unit.
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', UNIT_MS.d],
    ['h', UNIT_MS.h],
    ['m', UNIT_MS.m],
    ['s', UNIT_MS.s],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A zod type accepting "30s"-style strings or a number of seconds; the parsed value is milliseconds. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return Math.round(value * 1000);
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "30s", "15m", "12h" or "7d", got "${value}"`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A duration that must be at least `minMs` (e.g. a timer period, where 0 would spin). */
export function durationAtLeast(minMs: number, label: string) {
  return duration.pipe(z.number().min(minMs, `must be at least ${label}`));
}

/** A limit that may be switched off: a duration, or `off` / 0 (both become 0: no limit). */
export const limitDuration = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return Math.round(value * 1000);
  const ms = value === 'off' ? 0 : parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "30s", "15m", "12h", or "off" for no limit, got "${value}"`,
    });
    return z.NEVER;
  }
  return ms;
});

/** How a limit reads back: `off` for 0, else the shortest duration text ("90s", "12h"). */
export function formatLimit(ms: number): string {
  return ms === 0 ? 'off' : formatDuration(ms);
}

/** The milliseconds of a limit as formatLimit writes it (0 for `off`). */
export function limitMs(text: string): number {
  if (text === 'off') return 0;
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`not a duration: "${text}"`);
  return ms;
}
