// Timestamps as ISO 8601 strings, the form the store keeps. Statement events and audit records
// take one each: spelling the second once and only the milliseconds after it makes that a string
// concatenation instead of a Date and its formatting.

let second = Number.NaN;
let prefix = '';

/** `new Date(ms).toISOString()`, for the same `ms`. */
export function isoTime(ms: number): string {
  const t = Math.trunc(ms);
  if (!(t >= 0) || t > MAX_TIME) return new Date(ms).toISOString();
  const milli = t % 1000;
  const s = t - milli;
  if (s !== second) {
    const full = new Date(s).toISOString();
    prefix = full.slice(0, full.length - 4);
    second = s;
  }
  return `${prefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** The latest time a Date can hold (8.64e15 ms). */
const MAX_TIME = 8.64e15;
