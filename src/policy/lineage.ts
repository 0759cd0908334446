// Mask rules applied to column lineage: a result column computed from a masked column gets a mask
// of its own, and a statement that copies masked data where masking cannot follow is refused.

import type { Rule } from '../config/rules.js';
import type { ColumnSource, DataFlow, OutputColumn, SqlFacts, SqlStatementFacts, TableRef } from './facts.js';
import { globRegExp } from './glob.js';

type MaskRule = Extract<Rule, { effect: 'mask' }>;

/** One result column the engine must mask itself, because the result metadata does not name its origin. */
export interface DerivedMask {
  /** Index in `facts.statements`. */
  statement: number;
  /** Index in that statement's `outputs`; {@link fieldPositions} turns it into a field index. */
  output: number;
  /** The field name as the client sees it (`upper`, `?column?`, an alias). */
  name: string;
  rule: string;
  style: MaskRule['mask']['style'];
  /** The masked columns it is computed from (`users.ssn`, `users.*` for a whole row). */
  columns: string[];
}

/** A bind parameter or a constant of the statement text written to or compared with a masked column. */
export interface MaskedValue {
  /** Index in `facts.statements`. */
  statement: number;
  /** `$n`'s n, or null for a constant. */
  param: number | null;
  /** The constant's span in the text first analyzed (see `value`); null for a parameter. */
  literal: { start: number; end: number } | null;
  /** Index in the statement's `values`: where a text sharing these facts places its own constant. */
  value: number;
  rule: string;
  style: MaskRule['mask']['style'];
  /** The masked column (`users.ssn`). */
  column: string;
}

export interface LineageVerdict {
  derived: DerivedMask[];
  /** Parameters and constants the rule masks, because they stand for a masked column's value. */
  values: MaskedValue[];
  /** Why the rule refuses the statement, or null. */
  deny: string | null;
  /**
   * Statements (indexes in `facts.statements`) whose server errors could quote a value the rule masks
   * (`invalid input syntax for type integer: "ann@example.com"`); `all` when the text did not parse.
   */
  errorsQuote: number[] | 'all';
}

interface ColumnGlob {
  pattern: string;
  /** Null when the pattern has no table part. */
  table: RegExp | null;
  anyTable: boolean;
  column: RegExp;
}

/** `table.column` or bare `column`, split at the last dot like the Masker does. */
function compile(pattern: string): ColumnGlob {
  const dot = pattern.lastIndexOf('.');
  if (dot < 0) return { pattern, table: null, anyTable: true, column: globRegExp(pattern) };
  const table = pattern.slice(0, dot);
  return {
    pattern,
    table: globRegExp(table),
    anyTable: /^\*+$/.test(table),
    column: globRegExp(pattern.slice(dot + 1)),
  };
}

function tableMatches(re: RegExp, s: ColumnSource): boolean {
  if (s.table === null) return true;
  return [s.table, `${s.schema ?? 'public'}.${s.table}`].some((name) => re.test(name));
}

/**
 * Unlike result metadata, lineage errs towards masking: a source whose table is unknown meets every
 * table pattern, and a whole row meets every pattern its table could hold (the catalog is out of reach).
 */
function sourceMatches(g: ColumnGlob, s: ColumnSource): boolean {
  if (s.column === '*') return g.table === null || g.anyTable || tableMatches(g.table, s);
  if (!g.column.test(s.column)) return false;
  return g.table === null || g.anyTable || tableMatches(g.table, s);
}

const label = (s: ColumnSource): string => `${s.schema ? `${s.schema}.` : ''}${s.table ?? '?'}.${s.column}`;

/** How each kind of flow moves data, and why masking cannot go with it. */
const FLOWS: Record<string, [verb: string, why: string]> = {
  create_table_as: ['CREATE TABLE AS would copy', 'the new table is not masked'],
  materialized_view: ['CREATE MATERIALIZED VIEW would copy', 'the materialized view is not masked'],
  select_into: ['SELECT INTO would copy', 'the new table is not masked'],
  view: ['CREATE VIEW would expose', 'reads through the view do not name the masked column'],
  insert: ['INSERT would copy', 'the copy is not masked'],
  update: ['UPDATE would copy', 'the copy is not masked'],
  merge: ['MERGE would copy', 'the copy is not masked'],
  copy: ['COPY would export', 'COPY output bypasses result masking (a SELECT of the column is masked)'],
  cursor: [
    'DECLARE CURSOR would compute a value from',
    'rows fetched later do not say where a computed value came from',
  ],
  prepare: [
    'PREPARE would compute a value from',
    'rows of a later EXECUTE do not say where a computed value came from',
  ],
  routine_body: [
    'a DO block or function body would read',
    'what a routine does with a value is beyond result masking',
  ],
  rule: ['CREATE RULE would copy', 'the copy is not masked'],
  function_call: ['a function call would pass', 'the function takes the value out of the result'],
  rename_column: ['RENAME COLUMN would rename', "the rule's patterns would no longer name it"],
  generated_column: ['a generated column would copy', 'the new column is not masked'],
  rename_table: ['renaming or moving would put', "the rule's patterns would no longer name its columns"],
  inherit: ['INHERIT would let a parent return', "the rows read through the parent carry the parent's name"],
  attach_partition: [
    'ATTACH PARTITION would let a parent return',
    "the rows read through the parent carry the parent's name",
  ],
};

/** Flows that put a table's rows under another table's name, columns and all. */
const RELABELS = new Set(['rename_table', 'inherit', 'attach_partition']);

function flowMessage(flow: DataFlow, hits: ColumnSource[], rule: MaskRule, patterns: string[]): string {
  const [verb, why] = FLOWS[flow.kind] ?? [`${flow.kind} would copy`, 'the copy is not masked'];
  const t = flow.target;
  const into = !t
    ? ''
    : flow.kind === 'function_call'
      ? ` to ${t.name}()`
      : ` into ${t.schema ? `${t.schema}.` : ''}${t.name}${flow.column ? `.${flow.column}` : ''}`;
  const exception = `or ask for an exception to rule "${rule.name}"`;
  if (flow.kind === 'sink_alias') {
    return (
      `the statement would let ${t?.name ?? 'a function'}() be called under another name (an operator, cast, ` +
      `aggregate or new name), which takes its arguments out of the result where the gateway does not look, ` +
      `so rule "${rule.name}" cannot be sure to mask ${patterns.join(', ')}. Call it by its name, ${exception}.`
    );
  }
  if (flow.kind === 'function_call' && hits.some((s) => s.table === null && s.column === '*')) {
    return (
      `a routine would pass values it is given to ${t?.name ?? 'a function'}(), which takes them out of the ` +
      `result, so rule "${rule.name}" cannot be sure to mask ${patterns.join(', ')}. Ask for an exception to rule "${rule.name}".`
    );
  }
  if (flow.kind === 'hidden_sql') {
    return (
      `the statement runs SQL the gateway cannot read (${t?.name ?? 'hidden SQL'}), which may read any column, ` +
      `so rule "${rule.name}" cannot be sure to mask ${patterns.join(', ')}. Write the SQL out in the statement, ${exception}.`
    );
  }
  if (flow.kind === 'untraceable') {
    return (
      `the statement nests too deeply for the gateway to trace which columns it reads, so rule "${rule.name}" ` +
      `cannot be sure to mask ${patterns.join(', ')}. Simplify the statement, ${exception}.`
    );
  }
  const whole = hits.find((s) => s.column === '*');
  if (whole && t && RELABELS.has(flow.kind)) {
    return (
      `${verb} the rows of ${whole.schema ? `${whole.schema}.` : ''}${whole.table} under the name ` +
      `${t.schema ? `${t.schema}.` : ''}${t.name}, ` +
      `and rule "${rule.name}" masks ${patterns.join(', ')}: ${why}. Ask for an exception to rule "${rule.name}".`
    );
  }
  if (whole) {
    return (
      `${verb} whole rows of ${whole.table ?? 'a table'}${into}, and rule "${rule.name}" masks ${patterns.join(', ')}: ` +
      `${why}, and without the table's column list the gateway cannot tell which columns that covers. ` +
      `Name the columns you need, leaving masked ones out, ${exception}.`
    );
  }
  return (
    `${verb} ${hits.map(label).join(', ')}${into}, which rule "${rule.name}" masks: ${why}. ` +
    `Leave ${hits.length > 1 ? 'those columns' : 'the column'} out, ${exception}.`
  );
}

/** Catalogs (and their views) holding values sampled by ANALYZE: most common values, histogram bounds. */
const STATISTICS = new Set([
  'pg_statistic',
  'pg_stats',
  'pg_statistic_ext_data',
  'pg_stats_ext',
  'pg_stats_ext_exprs',
]);

const holdsSampledValues = (t: TableRef): boolean =>
  (t.schema === null || t.schema === 'pg_catalog') && STATISTICS.has(t.name);

function statisticsMessage(rule: MaskRule, t: TableRef): string {
  const patterns = (rule.mask.columns ?? []).map((p) => `"${p}"`).join(', ');
  return (
    `${t.name} holds values ANALYZE sampled from every column, those rule "${rule.name}" masks (${patterns}) ` +
    `included, and its results do not say which column they came from. Ask for an exception to rule "${rule.name}".`
  );
}

/** Server files hold every table's rows as stored (`pg_read_binary_file(pg_relation_filepath('users'))`). */
function serverFilesMessage(rule: MaskRule): string {
  const patterns = (rule.mask.columns ?? []).map((p) => `"${p}"`).join(', ');
  return (
    `the statement reads or writes the server's files or runs a program there, which can read the data files ` +
    `of tables whose columns rule "${rule.name}" masks (${patterns}), past result masking. ` +
    `Ask for an exception to rule "${rule.name}".`
  );
}

function positionMessage(o: OutputColumn, index: number, hits: ColumnSource[], rule: MaskRule): string {
  const what = o.star ? `* at result position ${index + 1}` : `result column ${index + 1} ("${o.name}")`;
  const why = o.star
    ? 'expands to columns of unknown number'
    : 'follows more than one * of unknown width, so its field cannot be counted';
  return (
    `${what} is computed from ${hits.map(label).join(', ')}, which rule "${rule.name}" masks, but it ${why}, ` +
    `and the gateway cannot tell which field to mask. Name the columns instead of *, or ask for an exception to rule "${rule.name}".`
  );
}

/** What one matched mask rule means for these statements' derived columns and data flows. */
export function lineageVerdict(rule: MaskRule, facts: SqlFacts): LineageVerdict {
  const verdict: LineageVerdict = { derived: [], values: [], deny: null, errorsQuote: [] };
  const globs = (rule.mask.columns ?? []).map(compile);
  if (globs.length === 0) return verdict;
  verdict.errorsQuote = facts.unparseable !== null ? 'all' : errorsMayQuote(globs, facts.statements);
  const masked = (sources: readonly ColumnSource[]) =>
    sources.filter((s) => globs.some((g) => sourceMatches(g, s)));
  // A table's rows under a new name matter only to patterns that name the old one and not the new.
  const unnamed = (flow: DataFlow) =>
    flow.sources.filter((s) => {
      const renamed = { ...s, schema: flow.target?.schema ?? null, table: flow.target?.name ?? null };
      return globs.some((g) => sourceMatches(g, s) && !sourceMatches(g, renamed));
    });
  const patterns = (hits: ColumnSource[]) =>
    globs.filter((g) => hits.some((s) => sourceMatches(g, s))).map((g) => `"${g.pattern}"`);
  facts.statements.forEach((statement, si) => {
    statement.values.forEach((v, vi) => {
      const hit = globs.some((g) => sourceMatches(g, v.column));
      if (hit) {
        const { param, literal } = v;
        const column = label(v.column);
        verdict.values.push({
          statement: si,
          param,
          literal,
          value: vi,
          rule: rule.name,
          style: rule.mask.style,
          column,
        });
      }
    });
    if (statement.file_access || statement.program) verdict.deny ??= serverFilesMessage(rule);
    const statistics = statement.tables_read.find(holdsSampledValues);
    if (statistics) verdict.deny ??= statisticsMessage(rule, statistics);
    for (const flow of statement.flows) {
      const hits = RELABELS.has(flow.kind) ? unnamed(flow) : masked(flow.sources);
      if (hits.length > 0) verdict.deny ??= flowMessage(flow, hits, rule, patterns(hits));
    }
    const outputs = statement.outputs ?? [];
    const firstStar = outputs.findIndex((o) => o.star);
    const stars = outputs.filter((o) => o.star).length;
    outputs.forEach((o, oi) => {
      if (o.direct) return;
      const hits = masked(o.sources);
      if (hits.length === 0) return;
      if (o.star || (stars > 1 && oi > firstStar)) {
        verdict.deny ??= positionMessage(o, oi, hits, rule);
        return;
      }
      verdict.derived.push({
        statement: si,
        output: oi,
        name: o.name,
        rule: rule.name,
        style: rule.mask.style,
        columns: hits.map(label),
      });
    });
  });
  return verdict;
}

/**
 * A server error is raised wherever a value is used, WHERE clauses included (`email::int`,
 * `make_date(ascii(email), 13, 1)`, an XML parser's DETAIL), so lineage cannot tell which errors
 * carry masked data: any statement that touches a table the patterns may cover, or hides what it
 * touches, may quote one.
 */
function errorsMayQuote(globs: ColumnGlob[], statements: readonly SqlStatementFacts[]): number[] {
  const covers = (t: TableRef) =>
    globs.some(
      (g) =>
        g.table === null ||
        g.anyTable ||
        tableMatches(g.table, { schema: t.schema, table: t.name, column: '*' }),
    );
  return statements.flatMap((s, i) =>
    s.opaque ||
    s.outputs === null ||
    s.flows.some((f) => f.kind === 'untraceable') ||
    [...s.tables_read, ...s.tables_written].some(covers)
      ? [i]
      : [],
  );
}

/**
 * Whether the statements may carry values the analyzer cannot tie to columns: unparsed text,
 * hidden SQL (DO, EXECUTE, PREPARE), calls whose rows and arguments are not traced, and statements
 * too complex to trace. Their parameters are all masked (fail closed).
 */
export function valuesUntraceable(facts: SqlFacts): boolean {
  return (
    facts.unparseable !== null ||
    facts.statements.some(
      (s) => s.opaque || s.outputs === null || s.flows.some((f) => f.kind === 'untraceable'),
    )
  );
}

/**
 * The result field each output lands in, given the field count the server reported: exact before
 * the first `*`, counted back from the end after a single `*`; null for a `*` itself, after a
 * second `*`, and everywhere when the count cannot fit the outputs.
 */
export function fieldPositions(outputs: readonly OutputColumn[], fieldCount: number): Array<number | null> {
  const firstStar = outputs.findIndex((o) => o.star);
  const stars = outputs.filter((o) => o.star).length;
  const fits = firstStar < 0 ? fieldCount === outputs.length : fieldCount >= outputs.length - stars;
  return outputs.map((o, i) => {
    if (!fits) return null;
    if (firstStar < 0 || i < firstStar) return i;
    if (o.star || stars > 1) return null;
    return fieldCount - (outputs.length - i);
  });
}
