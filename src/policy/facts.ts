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
  /** COPY … TO/FROM PROGRAM, or COPY/pg_read_file-style server file access. */
  program: boolean;
  file_access: boolean;
  /** Runs SQL the parser cannot see: DO blocks, EXECUTE of dynamic SQL, PREPARE/EXECUTE of a name. */
  opaque: boolean;
}

/** Facts of a statement of `kind` before anything about it is known. */
export function emptyStatementFacts(kind: string, opaque = false): SqlStatementFacts {
  return {
    kind,
    tables_read: [],
    tables_written: [],
    functions: [],
    where_absent: false,
    program: false,
    file_access: false,
    opaque,
  };
}

export interface SqlFacts {
  protocol_kind: 'sql';
  dialect: 'postgres' | 'mysql';
  statements: SqlStatementFacts[];
  multi_statement: boolean;
  /** Set when the text does not parse; rules decide (default: deny with this message). */
  unparseable: string | null;
  /** Normalized fingerprint of the text (cache key), when it parsed. */
  fingerprint: string | null;
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
