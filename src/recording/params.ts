// Masking of what a statement event keeps besides result rows: bind parameters, statement text
// and error messages, under the masks the statement's decision carries. Fails closed.
import type { Decision } from '../policy/decide.js';
import type { MaskSet } from '../policy/mask/mask-set.js';
import { REDACTED } from '../policy/mask/styles.js';

/** Whether any mask of the decision names columns (their values may come in as parameters). */
export const masksColumns = (d: Decision): boolean => d.masks.some((m) => (m.columns ?? []).length > 0);

/**
 * Parameters as recorded. Which parameter is assigned to which column is not traced yet, so
 * under a column mask every parameter is redacted (an `INSERT … (ssn) VALUES ($1)` must not keep
 * the SSN); under detector masks only, each value is scanned like a result value.
 */
export function maskParams(
  values: Array<string | null>,
  d: Decision,
  set: MaskSet | null,
): Array<string | null> {
  if (!set) return values;
  if (masksColumns(d)) return values.map((v) => (v === null ? null : REDACTED));
  return values.map((v) => (v === null ? null : set.maskText(v)));
}

/** Statement text: detectors run on it; column values written as literals are not traced (yet). */
export function maskStatementText(text: string, set: MaskSet | null): string {
  return set?.scans ? set.maskText(text) : text;
}

/**
 * An error message may quote a value (`invalid input syntax for type integer: "123-45-6789"`):
 * under a column mask quoted parts are redacted, and detectors run on the rest.
 */
export function maskErrorText(message: string, d: Decision, set: MaskSet | null): string {
  if (!set) return message;
  const quoted = masksColumns(d) ? message.replace(/"[^"]*"|'[^']*'/g, `"${REDACTED}"`) : message;
  return set.maskText(quoted);
}
