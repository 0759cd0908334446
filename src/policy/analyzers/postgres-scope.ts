// Name resolution for column lineage: what a FROM item offers, and which table columns a column
// reference may mean without the catalog (every candidate is kept, erring towards masking).

import type { ColumnSource, OutputColumn, TableRef } from '../facts.js';
import { isRecord } from './postgres-walker.js';

export type Fields = Record<string, unknown>;

/** A name column references can qualify: a FROM item, a CTE reference, a DML target. */
export interface RangeItem {
  /** The alias, else the relation name; '' for items nothing can qualify. */
  alias: string;
  /** The base relation, whose columns are unknown without the catalog. */
  table: TableRef | null;
  /** Result columns in order; a base relation is one `*` of unknown width. */
  columns: OutputColumn[];
  /** Column aliases on a base relation (`users AS u(a, b)`): those names stand for unknown columns. */
  renamed: ReadonlySet<string>;
}

/** One query level: its FROM items and what a bare `*` expands to. */
export interface Level {
  items: RangeItem[];
  expansion: OutputColumn[];
}

export interface Resolved {
  sources: ColumnSource[];
  /** Every candidate is a column the result metadata will name as itself. */
  direct: boolean;
}

export function strings(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((i) =>
    isRecord(i) && isRecord(i.String) && typeof i.String.sval === 'string' ? [i.String.sval] : [],
  );
}

export function uniqueSources(sources: readonly ColumnSource[]): ColumnSource[] {
  const seen = new Map<string, ColumnSource>();
  for (const s of sources) seen.set(`${s.schema ?? ''}\u0000${s.table ?? ''}\u0000${s.column}`, s);
  return [...seen.values()];
}

export function allSources(outputs: readonly OutputColumn[]): ColumnSource[] {
  return uniqueSources(outputs.flatMap((o) => o.sources));
}

export function star(sources: ColumnSource[], direct = false): OutputColumn {
  return { name: '*', direct, star: true, sources: uniqueSources(sources) };
}

export function baseItem(table: TableRef, alias: string, colnames: string[] = []): RangeItem {
  const renamed = new Set(colnames);
  const whole = { schema: table.schema, table: table.name, column: '*' };
  return { alias, table, renamed, columns: [star([whole], renamed.size === 0)] };
}

export function derivedItem(alias: string, columns: OutputColumn[]): RangeItem {
  return { alias, table: null, renamed: new Set(), columns };
}

/** Applies a column alias list: leading columns take the new names; past a `*` positions are unknown. */
export function renameColumns(columns: OutputColumn[], names: string[]): OutputColumn[] {
  let next = 0;
  let lost = false;
  return columns.map((c) => {
    if (lost || next >= names.length) return c;
    if (c.star) {
      lost = true;
      return { ...c, direct: false };
    }
    const name = names[next++] ?? c.name;
    return name === c.name ? c : { ...c, name, direct: false };
  });
}

/** What `name` means inside one item: an exact column (definite), or a column hidden in a `*` (possible). */
function lookup(item: RangeItem, name: string): (Resolved & { definite: boolean }) | null {
  const exact = item.columns.filter((c) => !c.star && c.name === name);
  if (exact.length > 0)
    return { sources: allSources(exact), direct: exact.every((c) => c.direct), definite: true };
  const stars = item.columns.filter((c) => c.star);
  if (stars.length === 0) return null;
  const hidden = item.renamed.has(name);
  // A base table's own `*` holds the named column itself; any other `*` (a function's, a set
  // operation's) may compute it from anything it read, so it keeps all of its sources.
  const own = (c: OutputColumn) => !hidden && (c.direct || item.table !== null);
  const sources = stars.flatMap((c) =>
    own(c) ? c.sources.map((s) => (s.column === '*' ? { ...s, column: name } : s)) : c.sources,
  );
  return { sources, direct: stars.every(own), definite: false };
}

function findItem(qualifier: string[], levels: readonly Level[]): RangeItem | undefined {
  const [name, schema] = [qualifier.at(-1), qualifier.at(-2)];
  for (let i = levels.length - 1; i >= 0; i--) {
    const hit = levels[i]?.items.find(
      (it) => it.alias === name && (schema === undefined || !it.table?.schema || it.table.schema === schema),
    );
    if (hit) return hit;
  }
  return undefined;
}

/** The columns `*` or `q.*` stands for. */
export function starColumns(qualifier: string[], levels: readonly Level[]): OutputColumn[] {
  if (qualifier.length === 0) return [...(levels.at(-1)?.expansion ?? [])];
  const item = findItem(qualifier, levels);
  if (item) return [...item.columns];
  // Out of scope, `q` is a row variable of a routine (NEW, a parameter): its table is unknown.
  return [star([UNKNOWN_ROW])];
}

/** A row of a table the statement does not name: it meets every mask pattern. */
const UNKNOWN_ROW: ColumnSource = { schema: null, table: null, column: '*' };

/**
 * The sources of a column reference `[schema.][table.]column`. Unqualified, it may belong to any
 * base table in scope (their columns are unknown), so each is a candidate, and outer levels are
 * searched until a level knows the name for certain. A bare name that is also an item's alias may
 * be that item's whole row (`SELECT u FROM users u`).
 */
export function resolveColumn(names: string[], levels: readonly Level[]): Resolved {
  const column = names.at(-1);
  if (column === undefined) return { sources: [], direct: false };
  const qualifier = names.slice(0, -1);
  if (qualifier.length > 0) {
    const item = findItem(qualifier, levels);
    if (item) return lookup(item, column) ?? { sources: [], direct: false };
    // `t.composite.field` reads a field of column `composite`.
    const owner = qualifier.length >= 2 ? findItem(qualifier.slice(0, 1), levels) : undefined;
    const field = owner && lookup(owner, qualifier[1] ?? '');
    if (field) return { sources: field.sources, direct: false };
    // No table in scope has that name, which only a routine allows: `NEW.ssn` in a trigger function
    // or a rule, `u.ssn` of a parameter `u users`. The row's table is unknown.
    return { sources: [{ schema: null, table: null, column }], direct: false };
  }
  const sources: ColumnSource[] = [];
  let direct = true;
  let found = false;
  for (let i = levels.length - 1; i >= 0; i--) {
    let definite = false;
    for (const item of levels[i]?.items ?? []) {
      const hit = lookup(item, column);
      if (hit) {
        sources.push(...hit.sources);
        direct &&= hit.direct;
        definite ||= hit.definite;
        found = true;
      }
      if (item.alias === column) {
        sources.push(...allSources(item.columns));
        direct = false;
        found = true;
      }
    }
    if (definite) break;
  }
  if (!found) {
    // A trigger's or a rule's whole NEW or OLD row, of a table the statement does not name.
    const row = column === 'new' || column === 'old';
    return { sources: [row ? UNKNOWN_ROW : { schema: null, table: null, column }], direct: false };
  }
  return { sources: uniqueSources(sources), direct };
}

// Small readers of parse-tree nodes, shared by the lineage tracers.

/** `{SelectStmt: {...}}` → ['SelectStmt', {...}]. */
export function unwrap(v: unknown): [string, Fields] | null {
  const [entry] = isRecord(v) ? Object.entries(v) : [];
  return entry && isRecord(entry[1]) && /^[A-Z]/.test(entry[0]) ? [entry[0], entry[1]] : null;
}

export function fieldsOf(v: unknown): Fields {
  return isRecord(v) ? v : {};
}

export function items(v: unknown): unknown[] {
  const inner = isRecord(v) && isRecord(v.List) ? v.List.items : v;
  return Array.isArray(inner) ? inner : [];
}

export function relation(v: unknown): TableRef | null {
  const body = isRecord(v) && isRecord(v.RangeVar) ? v.RangeVar : v;
  if (!isRecord(body) || typeof body.relname !== 'string') return null;
  return { schema: typeof body.schemaname === 'string' ? body.schemaname : null, name: body.relname };
}

export function aliasOf(v: unknown): { name: string | undefined; columns: string[] } {
  const alias = isRecord(v) && isRecord(v.alias) ? v.alias : {};
  return {
    name: typeof alias.aliasname === 'string' ? alias.aliasname : undefined,
    columns: strings(alias.colnames),
  };
}

/** The DML target in scope under its alias, and as `excluded`, `old` and `new` where those apply. */
export function targetLevel(v: unknown): Level {
  const table = relation(v);
  if (!table) return { items: [], expansion: [] };
  const item = baseItem(table, aliasOf(v).name ?? table.name);
  return { items: [item, { ...item, alias: 'old' }, { ...item, alias: 'new' }], expansion: item.columns };
}
