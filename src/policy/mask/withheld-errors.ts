// Server errors that could quote a masked value: which mask rule withholds one, and what the client
// and the recording get instead (the decision lists the statements, see lineage's errorsQuote).
import type { Decision } from '../decide.js';

/**
 * The mask rule that withholds a server error (its fields by PostgreSQL's one-letter codes) of
 * statement `statement`, or null. Kept whole: a cancel (57014), whose text is fixed or Warden's own
 * for a duration limit, and an error with a position in the client's statement and no internal
 * query (`P` without `q`): it was raised while the statement was parsed and analysed, before any
 * row was read, so it quotes only the statement's own text (`column "emial" does not exist`).
 * Errors raised on a stored value (`invalid input syntax for type integer: "ann@…"`) carry none.
 */
export function errorWithheldBy(
  d: Decision,
  statement: number,
  fields: ReadonlyMap<string, string>,
): string | null {
  if (d.errorsWithheld.length === 0 || fields.get('C') === '57014') return null;
  if (fields.has('P') && !fields.has('q')) return null;
  return d.errorsWithheld.find((w) => w.statement === null || w.statement === statement)?.rule ?? null;
}

/** What the client and the recording get instead of a withheld error's text. */
export function withheldErrorMessage(rule: string): string {
  return (
    `error message withheld by rule "${rule}" (warden): the statement reads or writes a table with columns the rule masks, ` +
    `and the server's message could quote their values. The SQLSTATE is the server's; ` +
    `fix the statement from it, or ask for an exception to rule "${rule}".`
  );
}
