// Values a statement ties to columns: the parameters and constants an operand is made of, and
// which operators compare their operands, so a value on one side stands for the other side.

import type { ColumnSource } from '../facts.js';
import { type Fields, items, strings, unwrap } from './postgres-scope.js';
import { isRecord } from './postgres-walker.js';

/** A value tied to a column, before its constant's byte location becomes a span of the text. */
export interface TracedValue {
  column: ColumnSource;
  param: number | null;
  /** The parser's location of a constant: a byte offset in the whole text. */
  location: number | null;
}

/** Operators that compare their operands, so a value on one side says what the other side holds. */
const COMPARISONS = new Set([
  '=',
  '<>',
  '!=',
  '<',
  '>',
  '<=',
  '>=',
  '~~',
  '!~~',
  '~~*',
  '!~~*',
  '~',
  '!~',
  '~*',
  '!~*',
]);

/** A_Expr kinds that compare (`IN`, `LIKE`, `= ANY`, `BETWEEN`, `IS DISTINCT FROM`, …); AEXPR_OP only for {@link COMPARISONS}. */
const COMPARING_KINDS = new Set([
  'AEXPR_OP_ANY',
  'AEXPR_OP_ALL',
  'AEXPR_DISTINCT',
  'AEXPR_NOT_DISTINCT',
  'AEXPR_NULLIF',
  'AEXPR_IN',
  'AEXPR_LIKE',
  'AEXPR_ILIKE',
  'AEXPR_SIMILAR',
  'AEXPR_BETWEEN',
  'AEXPR_NOT_BETWEEN',
  'AEXPR_BETWEEN_SYM',
  'AEXPR_NOT_BETWEEN_SYM',
]);

export function compares(expr: Fields): boolean {
  if (COMPARING_KINDS.has(String(expr.kind))) return true;
  return expr.kind === 'AEXPR_OP' && COMPARISONS.has(strings(expr.name).at(-1) ?? '');
}

/**
 * The parameters and constants an operand is made of: `$1`, `'x'`, `'x'::text`, `IN (…)` lists,
 * `ARRAY[…]`; nothing for anything computed (a function of a value is not the value).
 */
export function valueNodes(v: unknown): Array<{ param: number | null; location: number | null }> {
  if (Array.isArray(v)) return v.flatMap(valueNodes);
  const node = unwrap(v);
  if (!node) return isRecord(v) && isRecord(v.List) ? valueNodes(items(v)) : [];
  const [kind, body] = node;
  switch (kind) {
    case 'ParamRef':
      return typeof body.number === 'number' ? [{ param: body.number, location: null }] : [];
    case 'A_Const':
      return body.isnull || typeof body.location !== 'number'
        ? []
        : [{ param: null, location: body.location }];
    case 'TypeCast':
    case 'CollateClause':
      return valueNodes(body.arg);
    case 'A_ArrayExpr':
      return valueNodes(items(body.elements));
    case 'List':
      return valueNodes(items(body.items));
    default:
      return [];
  }
}

/**
 * Every parameter and constant inside an expression written to a column (`trim($1)`, a scalar
 * subquery, the query feeding an INSERT), since any of them may end up in the written value;
 * type modifiers (`varchar(10)`) and the subtrees in `skip` are left out.
 */
export function writtenValues(
  v: unknown,
  skip: ReadonlySet<unknown> = new Set(),
): Array<{ param: number | null; location: number | null }> {
  if (skip.has(v)) return [];
  if (Array.isArray(v)) return v.flatMap((x) => writtenValues(x, skip));
  if (!isRecord(v)) return [];
  const own = isRecord(v.ParamRef) || isRecord(v.A_Const) ? valueNodes(v) : [];
  const inner = Object.entries(v).flatMap(([key, x]) =>
    key === 'typeName' || key === 'ParamRef' || key === 'A_Const' ? [] : writtenValues(x, skip),
  );
  return [...own, ...inner];
}
