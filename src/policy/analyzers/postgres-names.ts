// The result column name PostgreSQL gives a target-list expression (FigureColname in its
// parser), so lineage facts name each output the way the client will see it.

import { isRecord } from './postgres-walker.js';

type Fields = Record<string, unknown>;

/** Expressions named after themselves, whatever their arguments. */
const FIXED: Record<string, string> = {
  A_ArrayExpr: 'array',
  RowExpr: 'row',
  CoalesceExpr: 'coalesce',
  GroupingFunc: 'grouping',
  MergeSupportFunc: 'merge_action',
  XmlSerialize: 'xmlserialize',
  JsonParseExpr: 'json',
  JsonScalarExpr: 'json_scalar',
  JsonSerializeExpr: 'json_serialize',
  JsonObjectConstructor: 'json_object',
  JsonArrayConstructor: 'json_array',
  JsonArrayQueryConstructor: 'json_array',
  JsonObjectAgg: 'json_objectagg',
  JsonArrayAgg: 'json_arrayagg',
};

function lastString(list: unknown): string | undefined {
  if (!Array.isArray(list)) return undefined;
  const last: unknown = list.at(-1);
  return isRecord(last) && isRecord(last.String) && typeof last.String.sval === 'string'
    ? last.String.sval
    : undefined;
}

/** Name and strength: 2 a real name, 1 a fallback (a type name, `case`), 0 none. */
function figure(node: unknown): [string, number] {
  const [kind, body] = isRecord(node) ? (Object.entries(node)[0] ?? ['', null]) : ['', null];
  if (!isRecord(body)) return ['?column?', 0];
  const fixed = FIXED[kind];
  if (fixed) return [fixed, 2];
  switch (kind) {
    case 'ColumnRef':
    case 'FuncCall': {
      const name = lastString(kind === 'ColumnRef' ? body.fields : body.funcname);
      return name === undefined ? ['?column?', 0] : [name, 2];
    }
    case 'A_Indirection': {
      const name = lastString(body.indirection);
      return name === undefined ? figure(body.arg) : [name, 2];
    }
    case 'A_Expr':
      return body.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : ['?column?', 0];
    case 'TypeCast': {
      const inner = figure(body.arg);
      const type = isRecord(body.typeName) ? lastString(body.typeName.names) : undefined;
      return inner[1] <= 1 && type !== undefined ? [type, 1] : inner;
    }
    case 'CollateClause':
      return figure(body.arg);
    case 'CaseExpr': {
      const inner = figure(body.defresult);
      return inner[1] <= 1 ? ['case', 1] : inner;
    }
    case 'MinMaxExpr':
      return [body.op === 'IS_GREATEST' ? 'greatest' : 'least', 2];
    case 'SQLValueFunction':
      return [
        String(body.op)
          .replace(/^SVFOP_/, '')
          .replace(/_N$/, '')
          .toLowerCase(),
        2,
      ];
    case 'XmlExpr':
      return body.op === 'IS_DOCUMENT'
        ? ['?column?', 0]
        : [`xml${String(body.op).slice(5).toLowerCase()}`, 2];
    case 'SubLink':
      if (body.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
      if (body.subLinkType === 'ARRAY_SUBLINK') return ['array', 2];
      if (body.subLinkType === 'EXPR_SUBLINK') return firstTargetName(body.subselect);
      return ['?column?', 0];
    default:
      return ['?column?', 0];
  }
}

/** A scalar subquery is named after its single result column (the leftmost arm of a set operation). */
function firstTargetName(select: unknown): [string, number] {
  let body = isRecord(select) && isRecord(select.SelectStmt) ? select.SelectStmt : select;
  while (isRecord(body) && isRecord(body.larg)) body = body.larg;
  const first: unknown = isRecord(body) && Array.isArray(body.targetList) ? body.targetList[0] : undefined;
  const target = isRecord(first) && isRecord(first.ResTarget) ? first.ResTarget : undefined;
  if (!target) return ['?column?', 0];
  return typeof target.name === 'string' ? [target.name, 2] : figure(target.val);
}

/** The field name of one `ResTarget`: its alias, else the name PostgreSQL derives from the expression. */
export function outputName(target: Fields): string {
  return typeof target.name === 'string' ? target.name : figure(target.val)[0];
}
