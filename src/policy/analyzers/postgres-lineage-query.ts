// Column lineage of queries over a libpg-query parse tree: SELECT, set operations, VALUES, CTEs,
// FROM items and expressions, recording on the way the flows that calls and subqueries make.

import type { ColumnSource, DataFlow, OutputColumn, TableRef } from '../facts.js';
import { outputName } from './postgres-names.js';
import {
  aliasOf,
  allSources,
  baseItem,
  derivedItem,
  type Fields,
  fieldsOf,
  items,
  type Level,
  type RangeItem,
  relation,
  renameColumns,
  resolveColumn,
  star,
  starColumns,
  strings,
  uniqueSources,
  unwrap,
} from './postgres-scope.js';
import { compares, type TracedValue, valueNodes, writtenValues } from './postgres-values.js';
import { isRecord } from './postgres-walker.js';

export type Ctes = ReadonlyMap<string, OutputColumn[]>;

export const NO_CTES: Ctes = new Map();

/**
 * Functions whose arguments leave the query: into settings, notifications, large objects, other
 * servers, and state other sessions or later queries read back (a sequence's `last_value`, an
 * advisory lock's key in `pg_locks`, a replication slot's or origin's name, the WAL).
 */
const SINK_FUNCTIONS = new Set([
  'set_config',
  'pg_notify',
  'lo_from_bytea',
  'lo_put',
  'lowrite',
  'setval',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_replication_origin_create',
  'pg_logical_emit_message',
  'pg_create_restore_point',
  'dblink',
  'dblink_exec',
  'dblink_send_query',
  'pg_file_write',
]);

/** Whether `name` (unqualified, lowercase) is a function whose arguments leave the query. */
export const isSinkFunction = (name: string): boolean => SINK_FUNCTIONS.has(name);

/** A row of a table no one names: whatever a routine's parameters or variables hold. */
const ANY_VALUE: ColumnSource = { schema: null, table: null, column: '*' };

/**
 * Whether expressions in a routine's body read what its caller passes: a parameter (`$1`) or a
 * bare name, which in a body may be a parameter or a variable holding anything.
 */
function takesInput(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(takesInput);
  if (!isRecord(node)) return false;
  if ('ParamRef' in node) return true;
  const ref = node.ColumnRef;
  if (isRecord(ref) && Array.isArray(ref.fields) && ref.fields.length === 1) return true;
  return Object.values(node).some(takesInput);
}

/** Clauses that filter, group, order or limit rows: walked only for the flows their subqueries and calls make. */
const SIDE_CLAUSES = [
  'whereClause',
  'havingClause',
  'groupClause',
  'windowClause',
  'distinctClause',
  'sortClause',
  'limitCount',
  'limitOffset',
];

/**
 * Queries a tracer may trace for one statement. Recursive CTEs are re-traced until they settle,
 * so nesting them multiplies the work; past this budget the statement counts as untraceable.
 */
const QUERY_BUDGET = 5_000;

export class LineageBudgetExceeded extends Error {}

/** Traces queries; statements that write (INSERT, UPDATE, DELETE, MERGE) are left to the subclass. */
export abstract class QueryTracer {
  protected readonly flows: DataFlow[] = [];
  /** Tracing a routine body or rule action, where a call's arguments may be the caller's values. */
  protected inRoutine = false;
  private readonly bound: TracedValue[] = [];
  private traced = 0;

  uniqueValues(): TracedValue[] {
    const seen = new Map<string, TracedValue>();
    for (const v of this.bound) {
      const c = v.column;
      seen.set(
        `${c.schema ?? ''}\u0000${c.table ?? ''}\u0000${c.column}\u0000${v.param}\u0000${v.location}`,
        v,
      );
    }
    return [...seen.values()];
  }

  /** Ties the values `operand` is made of to each of `columns`. */
  protected bind(
    columns: readonly ColumnSource[],
    operand: unknown,
    written = false,
    skip?: Set<unknown>,
  ): void {
    if (columns.length === 0) return;
    const found = written ? writtenValues(operand, skip) : valueNodes(operand);
    for (const column of uniqueSources(columns)) for (const v of found) this.bound.push({ column, ...v });
  }

  uniqueFlows(): DataFlow[] {
    const seen = new Map<string, DataFlow>();
    for (const f of this.flows) seen.set(JSON.stringify(f), f);
    return [...seen.values()];
  }

  /** RETURNING columns of INSERT, UPDATE, DELETE or MERGE, recording where they write; [] for other statements. */
  protected abstract modification(kind: string, body: Fields, outer: Level[], ctes: Ctes): OutputColumn[];

  /** Result columns of a query or of a DML statement's RETURNING list; [] for anything else. */
  protected statement(v: unknown, outer: Level[], ctes: Ctes): OutputColumn[] {
    const node = unwrap(v);
    if (!node) return [];
    const [kind, body] = node;
    if (kind === 'SelectStmt') return this.select(body, outer, ctes);
    return this.modification(kind, body, outer, ctes);
  }

  protected select(body: Fields, outer: Level[], ctes: Ctes): OutputColumn[] {
    if (++this.traced > QUERY_BUDGET) throw new LineageBudgetExceeded('statement too complex to trace');
    const scope = this.withClause(body.withClause, outer, ctes);
    let outputs: OutputColumn[];
    let levels = outer;
    if (body.op !== undefined && body.op !== 'SETOP_NONE') {
      const arm = (v: unknown) =>
        this.select(fieldsOf(isRecord(v) && isRecord(v.SelectStmt) ? v.SelectStmt : v), outer, scope);
      outputs = mergeArms(arm(body.larg), arm(body.rarg));
    } else if (Array.isArray(body.valuesLists)) {
      outputs = this.values(body.valuesLists, outer, scope);
    } else {
      levels = [...outer, this.from(body.fromClause, outer, scope)];
      outputs = this.targets(body.targetList, levels, scope);
    }
    for (const clause of SIDE_CLAUSES) this.expr(body[clause], levels, scope);
    if (isRecord(body.intoClause))
      this.flow('select_into', relation(body.intoClause.rel), null, allSources(outputs));
    return outputs;
  }

  private values(rows: unknown[], outer: Level[], ctes: Ctes): OutputColumn[] {
    const outputs: OutputColumn[] = [];
    for (const row of rows) {
      items(row).forEach((cell, i) => {
        const column = outputs[i] ?? { name: `column${i + 1}`, direct: false, star: false, sources: [] };
        column.sources = uniqueSources([...column.sources, ...this.expr(cell, outer, ctes)]);
        outputs[i] = column;
      });
    }
    return outputs;
  }

  /** Non-recursive CTEs see earlier siblings; recursive ones are re-traced until their sources stop growing. */
  protected withClause(clause: unknown, outer: Level[], ctes: Ctes): Ctes {
    if (!isRecord(clause)) return ctes;
    const defs = items(clause.ctes).flatMap((c) =>
      isRecord(c) && isRecord(c.CommonTableExpr) ? [c.CommonTableExpr] : [],
    );
    const scope = new Map(ctes);
    const trace = (d: Fields, query: unknown) =>
      renameColumns(this.statement(query, outer, scope), strings(d.aliascolnames));
    if (!clause.recursive) {
      for (const d of defs) scope.set(String(d.ctename), trace(d, d.ctequery));
      return scope;
    }
    for (const d of defs) {
      // Seed with the non-recursive arm, the part that does not read the CTE itself.
      const q = unwrap(d.ctequery);
      const setop = q && q[0] === 'SelectStmt' && q[1].op !== 'SETOP_NONE' && q[1].op !== undefined;
      scope.set(String(d.ctename), setop ? trace(d, { SelectStmt: q[1].larg }) : []);
    }
    for (let round = 0; round < 8; round++) {
      let changed = false;
      for (const d of defs) {
        const next = trace(d, d.ctequery);
        if (JSON.stringify(next) !== JSON.stringify(scope.get(String(d.ctename)))) changed = true;
        scope.set(String(d.ctename), next);
      }
      if (!changed) break;
    }
    return scope;
  }

  protected from(list: unknown, outer: Level[], ctes: Ctes): Level {
    const level: Level = { items: [], expansion: [] };
    for (const node of items(list)) {
      const { items: found, expansion } = this.fromItem(node, outer, [level], ctes);
      level.items.push(...found);
      level.expansion.push(...expansion);
    }
    return level;
  }

  /** `siblings`: earlier items of the same FROM, which only LATERAL subqueries and functions may read. */
  private fromItem(v: unknown, outer: Level[], siblings: Level[], ctes: Ctes): Level {
    const node = unwrap(v);
    if (!node) return { items: [], expansion: [] };
    const [kind, body] = node;
    const alias = aliasOf(body);
    const single = (item: RangeItem): Level => ({ items: [item], expansion: item.columns });
    switch (kind) {
      case 'RangeVar': {
        const table = relation(body);
        if (!table) return { items: [], expansion: [] };
        const cte = table.schema === null ? ctes.get(table.name) : undefined;
        const name = alias.name ?? table.name;
        return single(
          cte ? derivedItem(name, renameColumns(cte, alias.columns)) : baseItem(table, name, alias.columns),
        );
      }
      case 'RangeTableSample':
        return this.fromItem(body.relation, outer, siblings, ctes);
      case 'RangeSubselect':
        return single(
          derivedItem(
            alias.name ?? '',
            renameColumns(
              this.statement(body.subquery, body.lateral ? [...outer, ...siblings] : outer, ctes),
              alias.columns,
            ),
          ),
        );
      case 'JoinExpr':
        return this.join(body, outer, siblings, ctes);
      default: {
        // Set-returning functions, XMLTABLE, JSON_TABLE: values computed from their arguments.
        const sources = uniqueSources(
          this.expr(kind === 'RangeFunction' ? body.functions : body, [...outer, ...siblings], ctes),
        );
        const defs = items(body.coldeflist).flatMap((c) =>
          isRecord(c) && isRecord(c.ColumnDef) && typeof c.ColumnDef.colname === 'string'
            ? [c.ColumnDef.colname]
            : [],
        );
        const names = alias.columns.length > 0 ? alias.columns : defs;
        const columns =
          names.length > 0
            ? names.map((name) => ({ name, direct: false, star: false, sources }))
            : [star(sources)];
        return single(derivedItem(alias.name ?? '', columns));
      }
    }
  }

  private join(body: Fields, outer: Level[], siblings: Level[], ctes: Ctes): Level {
    const left = this.fromItem(body.larg, outer, siblings, ctes);
    const right = this.fromItem(body.rarg, outer, [...siblings, left], ctes);
    const found = [...left.items, ...right.items];
    const both = [...left.expansion, ...right.expansion];
    const using = strings(body.usingClause);
    const merged = using.map((name) => ({
      name,
      direct: false,
      star: false,
      sources: resolveColumn([name], [{ items: found, expansion: [] }]).sources,
    }));
    let expansion: OutputColumn[];
    if (body.isNatural && both.some((c) => !c.star)) expansion = [star(allSources(both))];
    else if (using.length > 0) {
      const rest = both.filter((c) => c.star || !using.includes(c.name));
      expansion = [...merged, ...rest];
    } else expansion = both;
    // Outside an inner join a merged column is COALESCE(left, right), which has no origin table.
    if (body.jointype !== 'JOIN_INNER' && (using.length > 0 || body.isNatural)) {
      found.push(derivedItem('', body.isNatural ? [star(allSources(both))] : merged));
    }
    const alias = aliasOf(body);
    const named = alias.name ?? aliasOf({ alias: body.join_using_alias }).name;
    if (named !== undefined) found.push(derivedItem(named, renameColumns(expansion, alias.columns)));
    const level = { items: found, expansion };
    this.expr(body.quals, [...outer, level], ctes);
    return level;
  }

  protected targets(list: unknown, levels: Level[], ctes: Ctes): OutputColumn[] {
    return items(list).flatMap((t): OutputColumn[] => {
      const target = isRecord(t) && isRecord(t.ResTarget) ? t.ResTarget : undefined;
      if (!target) return [];
      const ref = isRecord(target.val) && isRecord(target.val.ColumnRef) ? target.val.ColumnRef : undefined;
      const names = strings(ref?.fields);
      if (ref && items(ref.fields).some((f) => isRecord(f) && 'A_Star' in f)) {
        return starColumns(names, levels).map((c) => ({ ...c }));
      }
      const name = outputName(target);
      if (ref) {
        const { sources, direct } = resolveColumn(names, levels);
        return [{ name, direct: direct && name === names.at(-1), star: false, sources }];
      }
      return [
        { name, direct: false, star: false, sources: uniqueSources(this.expr(target.val, levels, ctes)) },
      ];
    });
  }

  /** Every column an expression reads, through operators, calls, casts, CASE and subqueries. */
  protected expr(v: unknown, levels: Level[], ctes: Ctes): ColumnSource[] {
    if (Array.isArray(v)) return v.flatMap((x) => this.expr(x, levels, ctes));
    if (!isRecord(v)) return [];
    const out: ColumnSource[] = [];
    for (const key in v) {
      const val = v[key];
      if (!isRecord(val)) {
        if (Array.isArray(val)) out.push(...this.expr(val, levels, ctes));
        continue;
      }
      if (key === 'ColumnRef') {
        const names = strings(val.fields);
        const whole = items(val.fields).some((f) => isRecord(f) && 'A_Star' in f);
        out.push(...(whole ? allSources(starColumns(names, levels)) : resolveColumn(names, levels).sources));
      } else if (key === 'SubLink') {
        out.push(
          ...allSources(this.statement(val.subselect, levels, ctes)),
          ...this.expr(val.testexpr, levels, ctes),
        );
      } else if (/Stmt$/.test(key)) {
        out.push(...allSources(this.statement({ [key]: val }, levels, ctes)));
      } else if (key === 'A_Indirection') {
        out.push(...this.indirection(val, levels, ctes));
      } else if (key === 'A_Expr') {
        const left = this.expr(val.lexpr, levels, ctes);
        const right = this.expr(val.rexpr, levels, ctes);
        if (compares(val)) {
          this.bind(left, val.rexpr);
          this.bind(right, val.lexpr);
        }
        out.push(...left, ...right);
      } else {
        const inner = this.expr(val, levels, ctes);
        const fn = key === 'FuncCall' ? strings(val.funcname).at(-1)?.toLowerCase() : undefined;
        if (fn !== undefined && SINK_FUNCTIONS.has(fn)) {
          // In a routine, `pg_notify('c', $2)` sends whatever a caller passes, masked columns
          // included; constants (`pg_notify('users_changed', 'x')`) and columns the sources name do not.
          const sources = this.inRoutine && takesInput(val.args) ? [...inner, ANY_VALUE] : inner;
          this.flow('function_call', { schema: null, name: fn }, null, sources);
        }
        out.push(...inner);
      }
    }
    return out;
  }

  /** `(u).ssn` reads column ssn of the row u, not the whole row. */
  private indirection(body: Fields, levels: Level[], ctes: Ctes): ColumnSource[] {
    const sources = this.expr(body.arg, levels, ctes);
    const [field] = strings(items(body.indirection).slice(0, 1));
    const fromRow = isRecord(body.arg) && 'ColumnRef' in body.arg && field !== undefined;
    const narrowed = fromRow ? sources.map((s) => (s.column === '*' ? { ...s, column: field } : s)) : sources;
    return [...narrowed, ...this.expr(body.indirection, levels, ctes)];
  }

  protected flow(
    kind: string,
    target: TableRef | null,
    column: string | null,
    sources: ColumnSource[],
  ): void {
    // A value written back to the cell it came from goes nowhere new (`SET ssn = trim(ssn)`).
    const same = (s: ColumnSource) =>
      column !== null &&
      target !== null &&
      s.column === column &&
      s.table === target.name &&
      s.schema === target.schema;
    const kept = uniqueSources(sources).filter((s) => !same(s));
    if (kept.length > 0) this.flows.push({ kind, target, column, sources: kept });
  }
}

/** Set operations: names from the left arm, sources per position from both; no origin table survives. */
function mergeArms(left: OutputColumn[], right: OutputColumn[]): OutputColumn[] {
  if (left.length !== right.length || [...left, ...right].some((c) => c.star)) {
    return [star([...allSources(left), ...allSources(right)])];
  }
  return left.map((c, i) => ({
    name: c.name,
    direct: false,
    star: false,
    sources: uniqueSources([...c.sources, ...(right[i]?.sources ?? [])]),
  }));
}
