// Masking of what a statement event keeps besides result rows: bind parameters, statement text
// and error messages, under the masks the statement's decision carries. Fails closed.
import { literalSpansFor } from '../policy/analyzers/postgres.js';
import { constantValue } from '../policy/analyzers/postgres-literals.js';
import type { Decision } from '../policy/decide.js';
import type { Facts } from '../policy/facts.js';
import type { MaskSet } from '../policy/mask/mask-set.js';
import { REDACTED } from '../policy/mask/styles.js';

/** Whether any mask of the decision names columns (their values may come in as parameters). */
export const masksColumns = (d: Decision): boolean => d.masks.some((m) => (m.columns ?? []).length > 0);

/**
 * Parameters as recorded. A parameter written to or compared with a masked column is masked in
 * that rule's style (a tokenized one gets the token results show); the others pass, through the
 * detectors if any. Where the analyzer cannot tie parameters to columns (opaque, unparsed or
 * untraceable SQL) under a column mask, every parameter is redacted.
 */
export function maskParams(
  values: Array<string | null>,
  d: Decision,
  set: MaskSet | null,
): Array<string | null> {
  if (!set) return values;
  if (d.valuesUntraceable) return values.map((v) => (v === null ? null : REDACTED));
  const styles = new Map<number, Decision['values'][number]['style']>();
  for (const b of d.values) if (b.param !== null && !styles.has(b.param)) styles.set(b.param, b.style);
  return values.map((v, i) => {
    if (v === null) return null;
    const style = styles.get(i + 1);
    if (style !== undefined) return set.replacer(style)(v);
    return set.scans ? set.maskText(v) : v;
  });
}

/**
 * Constants that stand for a masked column's value replaced by their masked value, quoted so the
 * text still reads as SQL (`WHERE ssn = '[masked]'`). Nothing to do, nothing copied.
 */
export function maskLiterals(text: string, d: Decision, set: MaskSet, facts: Facts): string {
  if (!d.values.some((v) => v.literal !== null)) return text;
  // Facts (and so decisions) are shared by texts that differ only in constants: place this text's.
  const placed =
    facts.protocol_kind === 'sql' && facts.dialect === 'postgres' ? literalSpansFor(facts, text) : null;
  const spans = d.values.flatMap((v) => {
    const span = placed ? placed[v.statement]?.[v.value] : v.literal;
    return span ? [{ ...span, style: v.style }] : [];
  });
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const s of spans) {
    if (s.start < at || s.end > text.length) continue;
    const value = constantValue(text.slice(s.start, s.end));
    const masked = value === null ? REDACTED : set.replacer(s.style)(value);
    out += `${text.slice(at, s.start)}'${masked.replaceAll("'", "''")}'`;
    at = s.end;
  }
  return out + text.slice(at);
}

/** Statement text: constants bound to masked columns are masked, then detectors run on it. */
export function maskStatementText(text: string, d: Decision, set: MaskSet | null, facts: Facts): string {
  if (!set) return text;
  const out = maskLiterals(text, d, set, facts);
  return set.scans ? set.maskText(out) : out;
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
