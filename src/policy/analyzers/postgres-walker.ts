// Walks one libpg-query parse tree and collects what a policy rule needs: tables read and
// written (with CTE scoping), functions called, missing WHERE clauses and SQL the parser cannot see.

import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import type { SqlStatementFacts, TableRef } from '../facts.js';

type Scope = ReadonlySet<string>;
type Fields = Record<string, unknown>;

/** Functions that run SQL handed to them as text, so the tables they touch stay hidden. */
const DYNAMIC_SQL_FUNCTIONS = new Set([
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_send_query',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xml_and_xmlschema',
  // tablefunc and xml2: queries, or a table's name and columns, as text.
  'crosstab',
  'crosstab2',
  'crosstab3',
  'crosstab4',
  'connectby',
  'xpath_table',
  // Not SQL text, but an open cursor's rows, returned as XML without the columns they came from.
  'cursor_to_xml',
]);

/**
 * Return types a PL/pgSQL body is parsed under: the parser checks its RETURN statements against
 * them (`RETURN 1` fails under void, `RETURN QUERY` needs a set), and the body's own is not at hand.
 * Trigger comes early: NEW and OLD are then its row variables, and `RETURN NEW` reads no value.
 */
const PLPGSQL_RETURNS = ['void', 'trigger', 'record', 'setof record'];

/** PL/pgSQL statements that run a string built at run time. */
const PLPGSQL_DYNAMIC = new Set(['PLpgSQL_stmt_dynexecute', 'PLpgSQL_stmt_dynfors']);

/** Functions that read or write files on the database server. */
const FILE_FUNCTIONS = new Set([
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_file_write',
  'lo_import',
  'lo_export',
  // pageinspect: a relation's stored pages, as bytes.
  'get_raw_page',
]);

/** DROP object types whose names are relations, so dropping one writes a table. */
const RELATION_OBJECTS = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_SEQUENCE',
  'OBJECT_INDEX',
]);

/** Statements whose `relation` field is the object they change. */
const RELATION_WRITERS = new Set([
  'AlterTableStmt',
  'AlterObjectSchemaStmt',
  'CreateStmt',
  'IndexStmt',
  'CreateTrigStmt',
  'RuleStmt',
  'RenameStmt',
  'RefreshMatViewStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
  'CreateForeignTableStmt',
]);

const KIND_NAMES: Record<string, string> = {
  CreateStmt: 'create_table',
  CreateTableAsStmt: 'create_table_as',
  ViewStmt: 'create_view',
  IndexStmt: 'create_index',
  CreateFunctionStmt: 'create_function',
  CreateTrigStmt: 'create_trigger',
  RuleStmt: 'create_rule',
  VariableSetStmt: 'set',
  VariableShowStmt: 'show',
  SelectStmt: 'select',
};

/** Node wrappers are capitalized (`SelectStmt`); fields are lowercase. A char test, not a regex: this runs per key. */
export function isNodeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

export function isRecord(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `CreateSchemaStmt` → `create_schema`; a few nodes get the names rules expect. */
export function kindOf(nodeName: string): string {
  const known = KIND_NAMES[nodeName];
  if (known) return known;
  const base = nodeName.endsWith('Stmt') ? nodeName.slice(0, -4) : nodeName;
  return base
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

/** The object a DROP/ALTER/GRANT/COMMENT… acts on, from its OBJECT_* enum. */
export function objectOf(nodeName: string, body: Fields): string | undefined {
  const fixed: Record<string, string> = {
    CreateStmt: 'table',
    ViewStmt: 'view',
    IndexStmt: 'index',
    CreateTrigStmt: 'trigger',
  };
  if (fixed[nodeName]) return fixed[nodeName];
  if (nodeName === 'CreateFunctionStmt') return body.is_procedure ? 'procedure' : 'function';
  const raw = str(body.removeType) ?? str(body.objtype) ?? str(body.renameType);
  if (!raw?.startsWith('OBJECT_')) return undefined;
  const name = raw.slice('OBJECT_'.length).toLowerCase();
  return name === 'matview' ? 'materialized_view' : name;
}

/** A `RangeVar`, wrapped (`{RangeVar: {...}}`) or bare as typed fields are printed. */
function rangeVar(v: unknown): TableRef | null {
  const body = isRecord(v) && isRecord(v.RangeVar) ? v.RangeVar : v;
  if (!isRecord(body)) return null;
  const name = str(body.relname);
  if (name === undefined) return null;
  return { schema: str(body.schemaname) ?? null, name };
}

/** A qualified name printed as a list of `String` nodes: `[schema.]name`. */
function nameList(v: unknown): string[] {
  const items = isRecord(v) && isRecord(v.List) ? v.List.items : v;
  if (!Array.isArray(items)) return [];
  return items.flatMap((i) => (isRecord(i) && isRecord(i.String) ? [str(i.String.sval) ?? ''] : []));
}

/** MERGE's WHEN … THEN actions, as statement kinds. */
const MERGE_ACTIONS: Record<string, string> = {
  CMD_INSERT: 'insert',
  CMD_UPDATE: 'update',
  CMD_DELETE: 'delete',
};

/**
 * Whether an EXPLAIN runs its statement: an ANALYZE option, unless set to false, off or 0 (any
 * other value counts as running it, erring towards the guardrail).
 */
function explainRuns(body: Fields): boolean {
  return (Array.isArray(body.options) ? body.options : []).some((o) => {
    const d = isRecord(o) && isRecord(o.DefElem) ? o.DefElem : undefined;
    if (str(d?.defname) !== 'analyze') return false;
    const arg = d?.arg;
    const value = isRecord(arg) && isRecord(arg.String) ? str(arg.String.sval) : undefined;
    const number = isRecord(arg) && isRecord(arg.Integer) ? arg.Integer.ival : undefined;
    return !(['false', 'off'].includes((value ?? '').toLowerCase()) || number === 0);
  });
}

/** Accumulates facts for one top-level statement; nested statements fold into the same facts. */
export class StatementWalker {
  private readonly seen = new Set<string>();
  /** Depth of plain EXPLAINs around the node walked: what they hold is planned, not run. */
  private explaining = 0;

  /**
   * `onFolded` sees each statement folded in from a DO block or function body, as a parse tree;
   * `onHidden` hears of SQL no parse shows: a string run by EXECUTE or handed to a function, a
   * body in another language or one that does not parse.
   */
  constructor(
    readonly facts: SqlStatementFacts,
    private readonly onFolded: (stmt: unknown) => void = () => {},
    private readonly onHidden: (what: string) => void = () => {},
  ) {}

  walk(value: unknown, scope: Scope): void {
    if (Array.isArray(value)) {
      for (const v of value) this.walk(v, scope);
      return;
    }
    if (!isRecord(value)) return;
    for (const key in value) {
      const v = value[key];
      // Node wrappers are capitalized (`{SelectStmt: {...}}`); fields are lowercase.
      if (isNodeName(key) && isRecord(v)) this.node(key, v, scope);
      else this.walk(v, scope);
    }
  }

  private node(name: string, body: Fields, outer: Scope): void {
    const scope = isRecord(body.withClause) ? this.withClause(body.withClause, outer) : outer;
    const skip = new Set(['withClause']);
    switch (name) {
      case 'RangeVar': {
        const ref = rangeVar(body);
        if (ref && !(ref.schema === null && scope.has(ref.name))) this.add('read', ref);
        return;
      }
      case 'FuncCall':
        this.funcCall(nameList(body.funcname));
        skip.add('funcname');
        break;
      case 'InsertStmt':
        this.write(body.relation, skip);
        this.changes('insert');
        // INSERT … ON CONFLICT DO UPDATE updates the rows it collides with.
        if (isRecord(body.onConflictClause) && body.onConflictClause.action === 'ONCONFLICT_UPDATE') {
          this.changes('update');
        }
        break;
      case 'MergeStmt':
        this.write(body.relation, skip);
        this.changes('merge');
        // What each WHEN does: MERGE … THEN DELETE deletes.
        for (const c of Array.isArray(body.mergeWhenClauses) ? body.mergeWhenClauses : []) {
          const command =
            isRecord(c) && isRecord(c.MergeWhenClause) ? str(c.MergeWhenClause.commandType) : undefined;
          const kind = command && MERGE_ACTIONS[command];
          if (kind) this.changes(kind);
        }
        break;
      case 'ExplainStmt':
        // Plain EXPLAIN only plans its statement; EXPLAIN ANALYZE runs it.
        if (!explainRuns(body)) {
          this.explaining++;
          this.walk(body.query, scope);
          this.explaining--;
          skip.add('query');
        }
        break;
      case 'UpdateStmt':
      case 'DeleteStmt':
        this.write(body.relation, skip);
        this.changes(kindOf(name));
        if (body.whereClause === undefined) this.facts.where_absent = true;
        break;
      case 'TruncateStmt':
        for (const r of Array.isArray(body.relations) ? body.relations : []) this.writeRef(rangeVar(r));
        return;
      case 'DropStmt':
        if (RELATION_OBJECTS.has(str(body.removeType) ?? '')) {
          for (const o of Array.isArray(body.objects) ? body.objects : []) {
            const parts = nameList(o);
            const tableName = parts.at(-1);
            if (tableName !== undefined) this.writeRef({ schema: parts.at(-2) ?? null, name: tableName });
          }
        }
        return;
      case 'CreateTableAsStmt':
        if (isRecord(body.into)) this.writeRef(rangeVar(body.into.rel));
        skip.add('into');
        break;
      case 'ViewStmt':
        this.write(body.view, skip);
        skip.add('view');
        break;
      case 'CopyStmt':
        this.copy(body, skip);
        break;
      case 'PartitionCmd':
        // ATTACH or DETACH PARTITION changes the partition too: it becomes, or stops being, part of the table.
        this.writeRef(rangeVar(body.name));
        skip.add('name');
        break;
      case 'GrantStmt':
        if (body.objtype === 'OBJECT_TABLE' && body.targtype === 'ACL_TARGET_OBJECT') {
          for (const o of Array.isArray(body.objects) ? body.objects : []) this.writeRef(rangeVar(o));
        }
        return;
      case 'DoStmt':
        this.facts.opaque = true;
        this.doBlock(body);
        return;
      case 'ExecuteStmt':
      case 'PrepareStmt':
        this.facts.opaque = true;
        break;
      case 'CreateFunctionStmt':
        this.facts.opaque = true;
        this.functionBody(body);
        break;
      default:
        if (RELATION_WRITERS.has(name)) this.write(body.relation, skip);
    }
    for (const key in body) if (!skip.has(key)) this.walk(body[key], scope);
  }

  /** A data change the statement makes (not one a plain EXPLAIN only plans). */
  private changes(kind: string): void {
    if (this.explaining === 0 && !this.facts.changes.includes(kind)) this.facts.changes.push(kind);
  }

  /** Non-recursive CTEs see only earlier siblings, so `WITH users AS (SELECT * FROM users)` reads the table. */
  private withClause(clause: Fields, outer: Scope): Scope {
    const ctes = (Array.isArray(clause.ctes) ? clause.ctes : []).flatMap((c) =>
      isRecord(c) && isRecord(c.CommonTableExpr) ? [c.CommonTableExpr] : [],
    );
    const names = ctes.map((c) => str(c.ctename) ?? '');
    const all = new Set([...outer, ...names]);
    const visible = new Set(outer);
    ctes.forEach((cte, i) => {
      this.walk(cte.ctequery, clause.recursive ? all : new Set(visible));
      visible.add(names[i] ?? '');
    });
    return all;
  }

  private funcCall(parts: string[]): void {
    if (parts.length === 0) return;
    const qualified = parts.join('.').toLowerCase();
    if (!this.facts.functions.includes(qualified)) this.facts.functions.push(qualified);
    const base = (parts.at(-1) ?? '').toLowerCase();
    if (FILE_FUNCTIONS.has(base)) this.facts.file_access = true;
    if (DYNAMIC_SQL_FUNCTIONS.has(base)) {
      this.facts.opaque = true;
      this.onHidden(`${base}()`);
    }
  }

  private copy(body: Fields, skip: Set<string>): void {
    const ref = rangeVar(body.relation);
    if (ref) this.add(body.is_from ? 'written' : 'read', ref);
    skip.add('relation');
    if (body.is_program) this.facts.program = true;
    else if (str(body.filename) !== undefined) this.facts.file_access = true;
    if (!body.is_from && copyFormat(body) === 'binary') this.facts.binary_output = true;
  }

  private doBlock(body: Fields): void {
    let source: string | undefined;
    let language = 'plpgsql';
    for (const a of Array.isArray(body.args) ? body.args : []) {
      const def = isRecord(a) && isRecord(a.DefElem) ? a.DefElem : undefined;
      const arg = def && isRecord(def.arg) && isRecord(def.arg.String) ? str(def.arg.String.sval) : undefined;
      if (def?.defname === 'as') source = arg;
      if (def?.defname === 'language' && arg) language = arg.toLowerCase();
    }
    if (source === undefined) return;
    if (language === 'plpgsql') this.plpgsql(source);
    else this.onHidden(`a DO block in ${language}`);
  }

  private functionBody(body: Fields): void {
    let source: string | undefined;
    let language = '';
    for (const o of Array.isArray(body.options) ? body.options : []) {
      const def = isRecord(o) && isRecord(o.DefElem) ? o.DefElem : undefined;
      if (!def) continue;
      if (def.defname === 'language' && isRecord(def.arg) && isRecord(def.arg.String)) {
        language = (str(def.arg.String.sval) ?? '').toLowerCase();
      }
      if (def.defname === 'as') source = nameList(def.arg)[0];
    }
    if (source === undefined) return;
    if (language === 'plpgsql') this.plpgsql(source);
    else if (language === 'sql') {
      if (!this.foldSql(source, false)) this.onHidden('a function body that does not parse');
    } else this.onHidden(`a function in ${language || 'an unnamed language'}`);
  }

  /**
   * Folds the static SQL of a PL/pgSQL body into these facts. The block stays opaque either way:
   * EXECUTE of built strings, and names resolved at run time, are beyond the parser.
   */
  private plpgsql(source: string): void {
    let tag = 'warden';
    while (source.includes(`$${tag}$`)) tag += '_';
    let tree: unknown;
    for (const returns of PLPGSQL_RETURNS) {
      try {
        tree = parsePlPgSQLSync(
          `CREATE FUNCTION warden_inline() RETURNS ${returns} LANGUAGE plpgsql AS $${tag}$${source}$${tag}$`,
        );
        break;
      } catch {}
    }
    if (tree === undefined) this.onHidden('a PL/pgSQL body that does not parse');
    else this.plpgsqlExprs(tree);
  }

  private plpgsqlExprs(value: unknown): void {
    if (Array.isArray(value)) {
      for (const v of value) this.plpgsqlExprs(v);
      return;
    }
    if (!isRecord(value)) return;
    // `RETURN QUERY EXECUTE` and `OPEN … FOR EXECUTE` keep their string in `dynquery`.
    if (Object.keys(value).some((k) => PLPGSQL_DYNAMIC.has(k)) || value.dynquery !== undefined) {
      this.onHidden('EXECUTE of a string in PL/pgSQL');
    }
    const expr = isRecord(value.PLpgSQL_expr) ? value.PLpgSQL_expr : undefined;
    const query = expr ? str(expr.query) : undefined;
    if (expr && query !== undefined) {
      // parseMode 0 is a whole statement; other modes are expressions, parsed as a SELECT list.
      if (expr.parseMode === 0 || expr.parseMode === undefined) this.foldSql(query, true);
      else this.foldSql(`SELECT ${query}`, false);
      return;
    }
    for (const v of Object.values(value)) this.plpgsqlExprs(v);
  }

  /** Whether `sql` parsed (as a statement, or as an expression when `retryAsExpression`). */
  private foldSql(sql: string, retryAsExpression: boolean): boolean {
    try {
      const tree = parseSync(sql) as unknown;
      if (isRecord(tree)) {
        for (const s of Array.isArray(tree.stmts) ? tree.stmts : []) {
          if (!isRecord(s)) continue;
          this.walk(s.stmt, new Set());
          this.onFolded(s.stmt);
        }
      }
      return true;
    } catch {
      return retryAsExpression && this.foldSql(`SELECT ${sql}`, false);
    }
  }

  private write(relation: unknown, skip: Set<string>): void {
    this.writeRef(rangeVar(relation));
    skip.add('relation');
  }

  private writeRef(ref: TableRef | null): void {
    if (ref) this.add('written', ref);
  }

  private add(kind: 'read' | 'written', ref: TableRef): void {
    const key = `${kind}\u0000${ref.schema ?? ''}\u0000${ref.name}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    (kind === 'read' ? this.facts.tables_read : this.facts.tables_written).push(ref);
  }
}

/** A COPY's format option (`FORMAT binary`, or the old `BINARY` keyword, parsed the same way). */
function copyFormat(body: Fields): string {
  for (const o of Array.isArray(body.options) ? body.options : []) {
    const def = isRecord(o) && isRecord(o.DefElem) ? o.DefElem : undefined;
    if (def?.defname !== 'format') continue;
    const arg = isRecord(def.arg) && isRecord(def.arg.String) ? str(def.arg.String.sval) : undefined;
    return (arg ?? 'text').toLowerCase();
  }
  return 'text';
}
