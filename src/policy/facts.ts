// What analyzers tell the policy engine about a command: plain data, the same shape whatever
// the protocol, so rules match on facts and never on raw bytes.

/** A table or view as the statement names it, schema-qualified when the statement says so. */
export interface TableRef {
  /** Schema as written (lowercased unless quoted), or null when unqualified. */
  schema: string | null;
  name: string;
}

export interface SqlStatementFacts {
  /**
   * Statement kind, lowercase, from the parser's node type: select, insert, update, delete,
   * merge, create_table, create_table_as, drop, truncate, alter_table, copy, do, execute,
   * prepare, call, grant, set, … (`drop` covers every DROP; `object` then says what).
   */
  kind: string;
  /** For drop/create/alter/grant/comment …: the object type (table, view, function, schema, …). */
  object?: string;
  tables_read: TableRef[];
  tables_written: TableRef[];
  /** Functions called, schema-qualified when written so (lowercase). */
  functions: string[];
  /** UPDATE or DELETE (also inside a CTE) with no WHERE clause. */
  where_absent: boolean;
  /**
   * The data changes it makes, as statement kinds (insert, update, delete, merge, replace), its own
   * included: `WITH gone AS (DELETE …) SELECT …` is a select that deletes, `INSERT … ON CONFLICT DO
   * UPDATE` (or MySQL's ON DUPLICATE KEY UPDATE) also updates, `MERGE … THEN DELETE` also deletes,
   * MySQL's REPLACE also deletes and inserts. The static statements of a DO block or a function
   * body count too, as their other facts do; what a plain EXPLAIN only plans does not.
   */
  changes: string[];
  /** COPY … TO/FROM PROGRAM, or COPY/pg_read_file-style server file access. */
  program: boolean;
  file_access: boolean;
  /**
   * COPY … TO in binary format: rows leave in PostgreSQL's binary COPY encoding, which carries
   * no types, so a gateway can neither scan its values for masking nor count its rows.
   */
  binary_output: boolean;
  /** Runs SQL the parser cannot see: DO blocks, EXECUTE of dynamic SQL, PREPARE/EXECUTE of a name. */
  opaque: boolean;
  /**
   * Lineage of each result column, in result order, for statements that return rows (SELECT,
   * set operations, VALUES, RETURNING); `[]` when the statement returns none; `null` when it
   * returns rows the analyzer cannot trace (EXECUTE, FETCH, CALL, and every MySQL statement).
   */
  outputs: OutputColumn[] | null;
  /** Where column values go without passing through the result: new tables, views, COPY, … */
  flows: DataFlow[];
  /**
   * Values the statement itself writes to or compares with a column (INSERT … VALUES, SET, WHERE,
   * ON, HAVING), so a masked column's value in a parameter or literal can be masked where it is kept.
   * What the analyzer cannot tie to a column is not listed.
   */
  values: StatementValue[];
}

/** A bind parameter or a constant of the text, tied to the column it is written to or compared with. */
export interface StatementValue {
  column: ColumnSource;
  /** `$n`'s n, or null for a constant. */
  param: number | null;
  /**
   * A constant's span in the analyzed text, in UTF-16 units (`text.slice(start, end)`), offsets of
   * the whole text for multi-statement strings; null for a parameter.
   */
  literal: { start: number; end: number } | null;
}

/** A column a value was computed from, as far as the statement text shows. */
export interface ColumnSource {
  schema: string | null;
  /** The base table or view; null when a reference cannot be tied to any table in scope. */
  table: string | null;
  /** The column, or `*` for a whole row (`row_to_json(u)`, `SELECT u FROM users u`, `COPY users`). */
  column: string;
}

/** One item of a statement's result list, after `*` expansion where its width is known. */
export interface OutputColumn {
  /** The name PostgreSQL gives the field: alias, column name, function name or `?column?`; `*` for a star. */
  name: string;
  /**
   * A plain column of a base table under its own name (also through subqueries and CTEs), so the
   * result metadata names its table and column and result masking sees it without lineage.
   */
  direct: boolean;
  /** A `*` or `t.*` of unknown width: a base table's columns, a function's, or set operation arms that do not line up. */
  star: boolean;
  /** Every column the value may come from; several when a reference could belong to several tables. */
  sources: ColumnSource[];
}

/**
 * Column values persisted or exported where result masking cannot follow them. A value written back
 * to the column it came from (`UPDATE users SET ssn = trim(ssn)`) goes nowhere new and is no flow.
 */
export interface DataFlow {
  /**
   * create_table_as, materialized_view, select_into, view, insert, update, merge, copy,
   * cursor, prepare (derived columns of a query run later), routine_body (DO blocks and
   * function bodies), rule, function_call (set_config, pg_notify, …), rename_column,
   * generated_column, untraceable (too complex to trace: one whole-row source of table null).
   */
  kind: string;
  /** The relation written, or the function or procedure called; null for COPY TO, cursors and routine bodies. */
  target: TableRef | null;
  /** The column assigned, when the statement names it (UPDATE SET, INSERT with a column list, …). */
  column: string | null;
  sources: ColumnSource[];
}

/** Facts of a statement of `kind` before anything about it is known. */
export function emptyStatementFacts(kind: string, opaque = false): SqlStatementFacts {
  return {
    kind,
    tables_read: [],
    tables_written: [],
    functions: [],
    where_absent: false,
    changes: [],
    program: false,
    file_access: false,
    binary_output: false,
    opaque,
    outputs: [],
    flows: [],
    values: [],
  };
}

export interface SqlFacts {
  protocol_kind: 'sql';
  dialect: 'postgres' | 'mysql';
  statements: SqlStatementFacts[];
  multi_statement: boolean;
  /** Set when the text does not parse; rules decide (default: deny with this message). */
  unparseable: string | null;
  /**
   * The statement with its literals replaced (PostgreSQL: `$n`; MySQL: `?`), equal for texts that
   * differ only in constants; null when it does not parse.
   */
  fingerprint: string | null;
}

/** Facts of SQL text that could not be parsed (or was refused unread): `message` says why. */
export function unparseableSql(dialect: SqlFacts['dialect'], message: string): SqlFacts {
  return {
    protocol_kind: 'sql',
    dialect,
    statements: [],
    multi_statement: false,
    unparseable: message,
    fingerprint: null,
  };
}

export interface ShellFacts {
  protocol_kind: 'shell';
  /** Every simple command in the line, in order, through pipelines, lists and subshells. */
  commands: Array<{ program: string; args: string[]; flags: string[] }>;
  pipeline: boolean;
  redirections: Array<{ op: string; target: string }>;
  subshell: boolean;
  /** eval, sh -c/bash -c, `base64 -d | sh`, command substitution feeding a shell, source of a fetched file… */
  opaque: boolean;
  unparseable: string | null;
}

export interface KubernetesFacts {
  protocol_kind: 'k8s';
  /** The apiserver's RequestInfo: verb (get, list, watch, create, update, patch, delete, deletecollection, proxy…). */
  verb: string;
  api_group: string;
  api_version: string;
  resource: string;
  subresource: string | null;
  namespace: string | null;
  name: string | null;
  /** False for non-resource URLs such as /healthz or /version. */
  is_resource_request: boolean;
  path: string;
}

export interface HttpFacts {
  protocol_kind: 'http';
  method: string;
  path: string;
  query: Record<string, string[]>;
}

export type Facts = SqlFacts | ShellFacts | KubernetesFacts | HttpFacts;
