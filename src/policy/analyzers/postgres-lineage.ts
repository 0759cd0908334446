// Column lineage of whole statements: which result columns a statement returns and where it
// persists or exports column values (new tables, views, COPY, DML, routines), for mask rules.

import type { ColumnSource, DataFlow, OutputColumn, TableRef } from '../facts.js';
import {
  type Ctes,
  isSinkFunction,
  LineageBudgetExceeded,
  NO_CTES,
  QueryTracer,
} from './postgres-lineage-query.js';
import {
  allSources,
  type Fields,
  fieldsOf,
  items,
  type Level,
  relation,
  strings,
  targetLevel,
  unwrap,
} from './postgres-scope.js';
import type { TracedValue } from './postgres-values.js';
import { isRecord } from './postgres-walker.js';

export interface StatementLineage {
  outputs: OutputColumn[] | null;
  flows: DataFlow[];
  values: TracedValue[];
}

/** Statements nested in a BEGIN ATOMIC body (lists of lists) or a RETURN. */
function bodyStatements(v: unknown): unknown[] {
  if (Array.isArray(v)) return v.flatMap(bodyStatements);
  if (isRecord(v) && isRecord(v.List)) return bodyStatements(v.List.items);
  return isRecord(v) ? [v] : [];
}

/** EXPLAIN runs its statement only with ANALYZE (not `ANALYZE false`). */
function analyzes(body: Fields): boolean {
  return items(body.options).some((o) => {
    const def = isRecord(o) && isRecord(o.DefElem) ? o.DefElem : undefined;
    if (def?.defname !== 'analyze') return false;
    const arg = isRecord(def.arg) && isRecord(def.arg.String) ? def.arg.String.sval : undefined;
    return !(typeof arg === 'string' && /^(false|off|0|no)$/i.test(arg));
  });
}

/** Lineage of one top-level statement. */
export function statementLineage(stmt: unknown): StatementLineage {
  const tracer = new Tracer();
  try {
    const outputs = tracer.top(stmt);
    return { outputs, flows: tracer.uniqueFlows(), values: tracer.uniqueValues() };
  } catch (err) {
    if (err instanceof LineageBudgetExceeded) return { outputs: null, flows: [UNTRACEABLE], values: [] };
    throw err;
  }
}

/** Flows of a statement inside a DO block or function body: its results too stay in the routine's hands. */
export function routineFlows(stmt: unknown): DataFlow[] {
  const tracer = new Tracer();
  try {
    tracer.routine(stmt, 'routine_body');
    return tracer.uniqueFlows();
  } catch (err) {
    if (err instanceof LineageBudgetExceeded) return [UNTRACEABLE];
    throw err;
  }
}

/** A statement too complex to trace may move any column anywhere: a whole row of an unknown table. */
const UNTRACEABLE: DataFlow = {
  kind: 'untraceable',
  target: null,
  column: null,
  sources: [{ schema: null, table: null, column: '*' }],
};

class Tracer extends QueryTracer {
  /** Result columns of a top-level statement ([] when it returns none), recording its flows. */
  top(stmt: unknown): OutputColumn[] | null {
    const node = unwrap(stmt);
    if (!node) return [];
    const [kind, body] = node;
    switch (kind) {
      case 'SelectStmt': {
        const outputs = this.select(body, [], NO_CTES);
        return isRecord(body.intoClause) ? [] : outputs;
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return this.statement(stmt, [], NO_CTES);
      case 'CreateTableAsStmt': {
        const outputs = this.statement(body.query, [], NO_CTES);
        const kindOfCopy = body.objtype === 'OBJECT_MATVIEW' ? 'materialized_view' : 'create_table_as';
        this.flow(kindOfCopy, relation(fieldsOf(body.into).rel), null, allSources(outputs));
        return [];
      }
      case 'ViewStmt':
        this.flow('view', relation(body.view), null, allSources(this.statement(body.query, [], NO_CTES)));
        return [];
      case 'CopyStmt':
        this.copy(body);
        return [];
      case 'DeclareCursorStmt':
      case 'PrepareStmt': {
        // Rows come back later (FETCH, EXECUTE) still carrying column metadata, so only derived columns escape.
        const derived = this.statement(body.query, [], NO_CTES).filter((o) => !o.direct);
        this.flow(kind === 'PrepareStmt' ? 'prepare' : 'cursor', null, null, allSources(derived));
        return [];
      }
      case 'ExplainStmt':
        if (analyzes(body)) this.top(body.query);
        return [];
      case 'CreateFunctionStmt':
        for (const s of bodyStatements(body.sql_body)) this.routine(s, 'routine_body');
        return [];
      case 'RuleStmt':
        for (const s of items(body.actions)) this.routine(s, 'rule');
        return [];
      case 'ReturnStmt':
        return [
          { name: '?column?', direct: false, star: false, sources: this.expr(body.returnval, [], NO_CTES) },
        ];
      case 'AlterTableStmt':
        this.alterTable(body);
        return [];
      case 'DefineStmt':
      case 'CreateCastStmt':
      case 'RenameStmt':
        // An operator, cast or aggregate over a sink, or a sink renamed, calls it under another name.
        for (const name of sinksNamed(kind === 'DefineStmt' ? body.definition : (body.func ?? body.object))) {
          this.flow('sink_alias', { schema: null, name }, null, [{ schema: null, table: null, column: '*' }]);
        }
        if (kind === 'RenameStmt') this.rename(body);
        return [];
      case 'CreateForeignTableStmt':
      case 'ImportForeignSchemaStmt':
        // postgres_fdw can point a foreign table at this very server: its rows then carry its own name.
        this.flow(
          'hidden_sql',
          { schema: null, name: 'a foreign table, whose rows may be any table’s' },
          null,
          [{ schema: null, table: null, column: '*' }],
        );
        return [];
      case 'AlterObjectSchemaStmt': {
        const table = relation(body.relation);
        if (table && RELATIONS.has(String(body.objectType)) && typeof body.newschema === 'string') {
          this.flow('rename_table', { schema: body.newschema, name: table.name }, null, [wholeRow(table)]);
        }
        return [];
      }
      case 'CallStmt': {
        // A procedure may store or send its arguments anywhere; its OUT values are not traced.
        const call = fieldsOf(
          isRecord(body.funccall) && isRecord(body.funccall.FuncCall)
            ? body.funccall.FuncCall
            : body.funccall,
        );
        const name = strings(call.funcname).join('.');
        this.flow('function_call', { schema: null, name }, null, this.expr(call.args, [], NO_CTES));
        return null;
      }
      case 'ExecuteStmt':
      case 'FetchStmt':
        return null;
      default:
        return [];
    }
  }

  routine(stmt: unknown, kind: string): void {
    const outer = this.inRoutine;
    this.inRoutine = true;
    try {
      this.flow(kind, null, null, allSources(this.top(stmt) ?? []));
    } finally {
      this.inRoutine = outer;
    }
  }

  protected modification(kind: string, body: Fields, outer: Level[], ctes: Ctes): OutputColumn[] {
    if (kind === 'InsertStmt') return this.insert(body, outer, ctes);
    if (kind === 'UpdateStmt' || kind === 'DeleteStmt' || kind === 'MergeStmt') {
      return this.modify(kind, body, outer, ctes);
    }
    return [];
  }

  private insert(body: Fields, outer: Level[], ctes: Ctes): OutputColumn[] {
    const scope = this.withClause(body.withClause, outer, ctes);
    const table = relation(body.relation);
    const cols = items(body.cols).map((c) =>
      String(isRecord(c) && isRecord(c.ResTarget) ? c.ResTarget.name : ''),
    );
    if (body.selectStmt !== undefined) {
      this.assign('insert', table, cols, this.statement(body.selectStmt, outer, scope));
      const cells = this.bindRows(table, cols, insertedRows(body.selectStmt));
      // Anything else in the query or its WITH may land in the rows too (`WITH v AS (VALUES ($1))
      // INSERT … SELECT s FROM v`): tied to every column written, erring towards masking.
      if (table) {
        const all = (cols.length > 0 ? cols : ['*']).map((column) => ({ ...inTable(table), column }));
        this.bind(all, [body.withClause, body.selectStmt], true, cells);
      }
    }
    const level = targetLevel(body.relation);
    const conflict = fieldsOf(body.onConflictClause);
    const target = level.items[0];
    if (target) {
      const excluded = [
        ...outer,
        { items: [...level.items, { ...target, alias: 'excluded' }], expansion: [] },
      ];
      this.sets('insert', table, conflict.targetList, excluded, scope);
      this.expr(conflict.whereClause, excluded, scope);
    }
    return this.targets(returning(body), [...outer, level], scope);
  }

  /** UPDATE, DELETE and MERGE: the target plus FROM / USING / the merge source are in scope. */
  private modify(kind: string, body: Fields, outer: Level[], ctes: Ctes): OutputColumn[] {
    const scope = this.withClause(body.withClause, outer, ctes);
    const table = relation(body.relation);
    const extra =
      kind === 'UpdateStmt'
        ? body.fromClause
        : kind === 'DeleteStmt'
          ? body.usingClause
          : [body.sourceRelation];
    const others = this.from(extra, outer, scope);
    const own = targetLevel(body.relation);
    const level = {
      items: [...own.items, ...others.items],
      expansion: [...own.expansion, ...others.expansion],
    };
    const levels = [...outer, level];
    if (kind === 'UpdateStmt') this.sets('update', table, body.targetList, levels, scope);
    for (const w of items(body.mergeWhenClauses)) {
      const when = fieldsOf(isRecord(w) ? w.MergeWhenClause : undefined);
      if (when.commandType === 'CMD_UPDATE') this.sets('merge', table, when.targetList, levels, scope);
      if (when.commandType === 'CMD_INSERT') {
        const cols = items(when.targetList).map((c) =>
          String(isRecord(c) && isRecord(c.ResTarget) ? c.ResTarget.name : ''),
        );
        const values = items(when.values).map((e) => ({
          name: '?column?',
          direct: false,
          star: false,
          sources: this.expr(e, levels, scope),
        }));
        this.assign('merge', table, cols, values);
        this.bindRows(table, cols, [items(when.values)]);
      }
      this.expr(when.condition, levels, scope);
    }
    this.expr([body.whereClause, body.joinCondition], levels, scope);
    return this.targets(returning(body), levels, scope);
  }

  /** Rows written into `table`: one flow per named column when positions line up, else one for all. */
  private assign(kind: string, table: TableRef | null, cols: string[], outputs: OutputColumn[]): void {
    if (cols.length === outputs.length && !outputs.some((o) => o.star)) {
      for (const [i, o] of outputs.entries()) this.flow(kind, table, cols[i] ?? null, o.sources);
    } else this.flow(kind, table, null, allSources(outputs));
  }

  /**
   * Values of inserted rows tied to the columns they land in, by position; without a column list
   * the table's columns are unknown, so each value may land in any of them (`table.*`).
   */
  private bindRows(table: TableRef | null, cols: string[], rows: unknown[][]): Set<unknown> {
    const cells = new Set<unknown>();
    if (!table) return cells;
    for (const row of rows) {
      row.forEach((cell, i) => {
        const column = cols.length === 0 ? '*' : cols[i];
        if (column === undefined) return;
        this.bind([{ ...inTable(table), column }], cell, true);
        cells.add(cell);
      });
    }
    return cells;
  }

  /** `SET col = expr` and `SET (a, b) = (SELECT …)`. */
  private sets(kind: string, table: TableRef | null, list: unknown, levels: Level[], ctes: Ctes): void {
    for (const t of items(list)) {
      const target = fieldsOf(isRecord(t) ? t.ResTarget : undefined);
      const multi =
        isRecord(target.val) && isRecord(target.val.MultiAssignRef) ? target.val.MultiAssignRef : undefined;
      let sources: ColumnSource[];
      if (multi && isRecord(multi.source) && isRecord(multi.source.SubLink)) {
        const outputs = this.statement(multi.source.SubLink.subselect, levels, ctes);
        const picked = outputs.some((o) => o.star) ? undefined : outputs[Number(multi.colno) - 1];
        sources = picked ? picked.sources : allSources(outputs);
      } else sources = this.expr(multi ? multi.source : target.val, levels, ctes);
      const column = typeof target.name === 'string' ? target.name : null;
      this.flow(kind, table, column, sources);
      // `SET (a, b) = ($1, $2)`: the row's colno-th item goes to this column; from a subquery, any of its values may.
      const row =
        multi && isRecord(multi.source) && isRecord(multi.source.RowExpr) ? multi.source.RowExpr : undefined;
      const value = multi ? (row ? items(row.args)[Number(multi.colno) - 1] : multi.source) : target.val;
      if (table && column !== null) this.bind([{ ...inTable(table), column }], value, true);
    }
  }

  private copy(body: Fields): void {
    if (body.is_from) return;
    const table = relation(body.relation);
    if (!table) {
      this.flow('copy', null, null, allSources(this.statement(body.query, [], NO_CTES)));
      return;
    }
    const cols = strings(body.attlist);
    const sources = (cols.length > 0 ? cols : ['*']).map((column) => ({
      schema: table.schema,
      table: table.name,
      column,
    }));
    this.flow('copy', null, null, sources);
  }

  /** A renamed column or table no longer matches the rules written for its old name. */
  private rename(body: Fields): void {
    const table = relation(body.relation);
    if (table && RELATIONS.has(String(body.renameType)) && typeof body.newname === 'string') {
      this.flow('rename_table', { schema: table.schema, name: body.newname }, null, [wholeRow(table)]);
      return;
    }
    if (body.renameType !== 'OBJECT_COLUMN' || !table || typeof body.subname !== 'string') return;
    const column = typeof body.newname === 'string' ? body.newname : null;
    this.flow('rename_column', table, column, [
      { schema: table.schema, table: table.name, column: body.subname },
    ]);
  }

  /**
   * A generated column computed from a masked one holds the same value under another name; a table
   * made a child or a partition of another is read, rows and columns, under the parent's name.
   */
  private alterTable(body: Fields): void {
    const table = relation(body.relation);
    if (!table) return;
    const levels = [targetLevel(body.relation)];
    for (const c of items(body.cmds)) {
      const cmd = fieldsOf(isRecord(c) ? c.AlterTableCmd : undefined);
      const parent = cmd.subtype === 'AT_AddInherit' ? relation(cmd.def) : null;
      if (parent) this.flow('inherit', parent, null, [wholeRow(table)]);
      const partition =
        cmd.subtype === 'AT_AttachPartition' && isRecord(cmd.def) && isRecord(cmd.def.PartitionCmd)
          ? relation(cmd.def.PartitionCmd.name)
          : null;
      if (partition) this.flow('attach_partition', table, null, [wholeRow(partition)]);
      const def = fieldsOf(isRecord(cmd.def) ? cmd.def.ColumnDef : undefined);
      const column =
        typeof cmd.name === 'string' ? cmd.name : typeof def.colname === 'string' ? def.colname : null;
      if (cmd.subtype === 'AT_SetExpression')
        this.flow('generated_column', table, column, this.expr(cmd.def, levels, NO_CTES));
      for (const k of items(def.constraints)) {
        const constraint = fieldsOf(isRecord(k) ? k.Constraint : undefined);
        if (constraint.contype === 'CONSTR_GENERATED') {
          this.flow('generated_column', table, column, this.expr(constraint.raw_expr, levels, NO_CTES));
        }
      }
    }
  }
}

/** Relations whose rows a mask rule may name by table: renaming or moving them unnames them. */
const RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE']);

const wholeRow = (table: TableRef): ColumnSource => ({
  schema: table.schema,
  table: table.name,
  column: '*',
});

/** Sink functions a definition names (an operator's function, an aggregate's sfunc, a cast's, a renamed one). */
function sinksNamed(v: unknown): string[] {
  const names: string[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) walk(y);
    else if (isRecord(x)) {
      if (isRecord(x.String) && typeof x.String.sval === 'string') names.push(x.String.sval.toLowerCase());
      for (const y of Object.values(x)) walk(y);
    }
  };
  walk(v);
  return [...new Set(names)].filter(isSinkFunction);
}

/** A column of `table`, named later. */
const inTable = (table: TableRef) => ({ schema: table.schema, table: table.name });

/** The rows an INSERT's query supplies, cell by cell: VALUES rows, or a plain SELECT's target list. */
function insertedRows(query: unknown): unknown[][] {
  const node = unwrap(query);
  if (node?.[0] !== 'SelectStmt') return [];
  const select = node[1];
  if (Array.isArray(select.valuesLists)) return select.valuesLists.map((row) => items(row));
  if (select.op !== undefined && select.op !== 'SETOP_NONE') return [];
  return [
    items(select.targetList).map((t) => (isRecord(t) && isRecord(t.ResTarget) ? t.ResTarget.val : undefined)),
  ];
}

function returning(body: Fields): unknown {
  return isRecord(body.returningClause) ? body.returningClause.exprs : body.returningList;
}
