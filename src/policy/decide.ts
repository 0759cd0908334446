// decide(): every rule whose `match` and `when` hold applies; the most restrictive effect
// wins (deny > review > limit/mask > allow), masks and limits accumulate, and the decision
// names every rule that matched. Pure: no I/O, so every protocol engine can call it.
// A mask rule also follows SQL column lineage (./lineage.ts): it masks derived result columns
// and denies, as itself, statements that would copy masked columns where masking cannot follow.

import type { Rule, RuleMatch, RuleWhen } from '../config/rules.js';
import type { Facts, SqlFacts, TableRef } from './facts.js';
import { globMatch } from './glob.js';
import { type DerivedMask, lineageVerdict, type MaskedValue, valuesUntraceable } from './lineage.js';
import { type MaskRuleSpec, maskSpecOf } from './mask/mask-set.js';

export interface DecisionContext {
  connection: { name: string; tags: string[]; protocol: string; default: 'allow' | 'deny' };
  caller: { subject: string; groups: string[]; kind: string; chain: string[] };
}

type MaskRule = Extract<Rule, { effect: 'mask' }>;
type ReviewRule = Extract<Rule, { effect: 'review' }>;

export interface Decision {
  action: 'allow' | 'deny' | 'review';
  /** Every rule that matched, in rule order. */
  rules: string[];
  /** The rule that decided a deny or review (the first of the winning effect). */
  decidedBy: string | null;
  message: string | null;
  review: ReviewRule['review'] | null;
  masks: Array<MaskRule['mask'] & { rule: string }>;
  /**
   * SQL result columns computed from a masked column (`upper(ssn)`), which the result metadata
   * cannot name; the engine masks them by position. Direct columns stay with `masks`.
   */
  derived: DerivedMask[];
  /**
   * Bind parameters and text constants that stand for a masked column's value (`WHERE ssn = $1`,
   * `VALUES ('123-45-6789')`), one per parameter or span, the first matching rule's style: the
   * recording and the audit trail keep them masked. Empty without column masks.
   */
  values: MaskedValue[];
  /**
   * A column mask applies but the analyzer cannot tell which values the statement ties to columns
   * (unparsed, opaque or untraceable SQL): every parameter is masked (fail closed).
   */
  valuesUntraceable: boolean;
  /**
   * Column mask rules under which a statement's server errors are withheld from the client and the
   * recording, since they could quote a masked value; `statement` null for every statement.
   */
  errorsWithheld: Array<{ statement: number | null; rule: string }>;
  limits: { rows: number | null; durationMs: number | null };
  /** The rule that set `limits.rows` (the tightest), for the notice a stopped result carries. */
  rowLimitRule: string | null;
  /** The rule that set `limits.durationMs` (the tightest), for the error a stopped statement gets. */
  durationLimitRule: string | null;
}

const anyGlob = (patterns: string[] | undefined, values: string[]): boolean =>
  patterns === undefined || patterns.some((p) => values.some((v) => globMatch(p, v)));

function matches(m: RuleMatch, ctx: DecisionContext): boolean {
  const depth = ctx.caller.chain.length;
  return (
    anyGlob(m.connections, [ctx.connection.name]) &&
    (m.tags === undefined || m.tags.some((t) => ctx.connection.tags.includes(t))) &&
    anyGlob(m.protocols, [ctx.connection.protocol]) &&
    anyGlob(m.subjects, [ctx.caller.subject]) &&
    (m.groups === undefined || m.groups.some((g) => ctx.caller.groups.includes(g))) &&
    (m.kinds === undefined || m.kinds.includes(ctx.caller.kind as 'human')) &&
    (m.chain_depth?.min === undefined || depth >= m.chain_depth.min) &&
    (m.chain_depth?.max === undefined || depth <= m.chain_depth.max)
  );
}

/** `users` matches an unqualified or any-schema users; `public.users` only that schema. */
function tableNames(t: TableRef): string[] {
  return t.schema ? [`${t.schema}.${t.name}`, t.name] : [t.name, `public.${t.name}`];
}

function sqlHolds(c: NonNullable<RuleWhen['sql']>, f: SqlFacts): boolean {
  if (c.unparseable !== undefined && (f.unparseable !== null) !== c.unparseable) return false;
  if (c.multi_statement !== undefined && f.multi_statement !== c.multi_statement) return false;
  const statementLevel =
    c.statements ||
    c.objects ||
    c.tables ||
    c.tables_written ||
    c.functions ||
    c.where ||
    c.opaque !== undefined ||
    c.program !== undefined ||
    c.file_access !== undefined;
  if (!statementLevel) return true;
  return f.statements.some(
    (s) =>
      // A statement matches as its own kind and as every data change it makes: a DELETE in a
      // CTE leaves the outer kind `select`, and must not slip past a rule on delete.
      anyGlob(c.statements, [s.kind, ...s.changes]) &&
      (c.objects === undefined || (s.object !== undefined && anyGlob(c.objects, [s.object]))) &&
      (c.tables === undefined ||
        anyGlob(c.tables, [...s.tables_read, ...s.tables_written].flatMap(tableNames))) &&
      (c.tables_written === undefined || anyGlob(c.tables_written, s.tables_written.flatMap(tableNames))) &&
      (c.functions === undefined || anyGlob(c.functions, s.functions)) &&
      (c.where === undefined || s.where_absent) &&
      (c.opaque === undefined || s.opaque === c.opaque) &&
      (c.program === undefined || s.program === c.program) &&
      (c.file_access === undefined || s.file_access === c.file_access),
  );
}

/** Whether the command's facts satisfy every condition the rule states (no `when`: always). */
export function holds(when: RuleWhen | undefined, facts: Facts): boolean {
  if (!when) return true;
  switch (facts.protocol_kind) {
    case 'sql':
      return when.sql !== undefined && sqlHolds(when.sql, facts);
    case 'shell': {
      const c = when.shell;
      if (!c) return false;
      return (
        anyGlob(
          c.programs,
          facts.commands.map((x) => x.program),
        ) &&
        anyGlob(
          c.flags,
          facts.commands.flatMap((x) => x.flags),
        ) &&
        (c.opaque === undefined || facts.opaque === c.opaque) &&
        (c.pipeline === undefined || facts.pipeline === c.pipeline) &&
        (c.redirections === undefined || facts.redirections.length > 0 === c.redirections) &&
        (c.unparseable === undefined || (facts.unparseable !== null) === c.unparseable)
      );
    }
    case 'k8s': {
      const c = when.k8s;
      if (!c) return false;
      return (
        anyGlob(c.verbs, [facts.verb]) &&
        (c.groups === undefined || c.groups.includes(facts.api_group)) &&
        anyGlob(c.resources, [facts.resource]) &&
        (c.subresources === undefined ||
          (facts.subresource !== null && anyGlob(c.subresources, [facts.subresource]))) &&
        (c.namespaces === undefined || (facts.namespace !== null && anyGlob(c.namespaces, [facts.namespace])))
      );
    }
    case 'http': {
      const c = when.http;
      if (!c) return false;
      return (
        (c.methods === undefined || c.methods.some((m) => m.toUpperCase() === facts.method)) &&
        anyGlob(c.paths, [facts.path])
      );
    }
  }
}

/** Whether the statements send rows in binary COPY format (no types: values cannot be read). */
const binaryOutput = (facts: Facts): boolean =>
  facts.protocol_kind === 'sql' && facts.statements.some((s) => s.binary_output);

/** Whether a mask rule looks at values (detectors), not only at named columns. */
function scansValues(mask: MaskRuleSpec): boolean {
  const detectors = maskSpecOf(mask).detectors;
  return detectors === undefined || detectors.length > 0;
}

function binaryCopyMessage(rule: string, what: string): string {
  return (
    `COPY in binary format carries no types, so the gateway ${what} (rule "${rule}"). ` +
    `Use FORMAT text or csv, or ask for an exception to rule "${rule}".`
  );
}

/** One entry per parameter and per span: an earlier rule's style wins, as for result columns. */
function addValues(into: MaskedValue[], found: readonly MaskedValue[]): void {
  if (found.length === 0) return;
  const key = (v: MaskedValue) =>
    v.param !== null ? `${v.statement}$${v.param}` : `${v.statement}@${v.value}`;
  const taken = new Set(into.map(key));
  for (const v of found) {
    const k = key(v);
    if (!taken.has(k)) {
      taken.add(k);
      into.push(v);
    }
  }
}

const RANK: Record<Rule['effect'], number> = { allow: 0, mask: 1, limit: 1, review: 2, deny: 3 };

/** A decision with nothing but its action: no rule, mask or limit behind it. */
export function plainDecision(
  action: Decision['action'],
  rules: string[] = [],
  message: string | null = null,
): Decision {
  return {
    action,
    rules,
    decidedBy: null,
    message,
    review: null,
    masks: [],
    derived: [],
    values: [],
    valuesUntraceable: false,
    errorsWithheld: [],
    limits: { rows: null, durationMs: null },
    rowLimitRule: null,
    durationLimitRule: null,
  };
}

/**
 * Statements whose rows come from a query decided before: a cursor's (FETCH) or a prepared
 * statement's (SQL EXECUTE). The tables and kinds that query reads are not in the statement.
 */
const READS_ELSEWHERE = new Set(['fetch', 'execute']);

/**
 * Whether a mask rule applies to a statement that reads rows through a name: its `when` cannot be
 * judged from the statement, so the rule applies (its masks name columns, which the result's own
 * description resolves, so other columns pass as they are). Conditions that do not look inside
 * statements still count. Limit rules are not carried over: a row limit on one table would cut
 * every cursor's FETCH (psql's FETCH_COUNT stops at a short one).
 */
function governsRowsReadElsewhere(r: Rule, facts: Facts): boolean {
  if (r.effect !== 'mask') return false;
  if (facts.protocol_kind !== 'sql' || !r.when?.sql) return false;
  if (!facts.statements.some((s) => READS_ELSEWHERE.has(s.kind))) return false;
  const { unparseable, multi_statement } = r.when.sql;
  return holds({ ...r.when, sql: { unparseable, multi_statement } }, facts);
}

export function decide(rules: Rule[], ctx: DecisionContext, facts: Facts): Decision {
  const matched = rules.filter(
    (r) => matches(r.match, ctx) && (holds(r.when, facts) || governsRowsReadElsewhere(r, facts)),
  );
  const decision = plainDecision(
    'allow',
    matched.map((r) => r.name),
  );
  // Mask rules that refuse the statement because of where its masked columns would go.
  const lineageDenials = new Map<string, string>();
  for (const r of matched) {
    if (r.effect === 'mask') {
      decision.masks.push({ ...r.mask, rule: r.name });
      if (facts.protocol_kind === 'sql') {
        const verdict = lineageVerdict(r, facts);
        decision.derived.push(...verdict.derived);
        addValues(decision.values, verdict.values);
        if ((r.mask.columns ?? []).length > 0 && valuesUntraceable(facts)) decision.valuesUntraceable = true;
        const quoting = verdict.errorsQuote === 'all' ? [null] : verdict.errorsQuote;
        for (const statement of quoting) decision.errorsWithheld.push({ statement, rule: r.name });
        if (verdict.deny !== null) lineageDenials.set(r.name, verdict.deny);
        if (verdict.deny === null && scansValues(r.mask) && binaryOutput(facts)) {
          lineageDenials.set(r.name, binaryCopyMessage(r.name, 'cannot scan its values for masking'));
        }
      }
    }
    if (r.effect === 'limit') {
      const { rows, duration } = r.limit;
      if (rows !== undefined && rows < (decision.limits.rows ?? Number.POSITIVE_INFINITY)) {
        decision.limits.rows = rows;
        decision.rowLimitRule = r.name;
      }
      if (rows !== undefined && binaryOutput(facts)) {
        lineageDenials.set(
          r.name,
          binaryCopyMessage(r.name, `cannot count its rows for the limit of ${rows}`),
        );
      }
      if (duration !== undefined && duration < (decision.limits.durationMs ?? Number.POSITIVE_INFINITY)) {
        decision.limits.durationMs = duration;
        decision.durationLimitRule = r.name;
      }
    }
  }
  const denies = (r: Rule) => r.effect === 'deny' || lineageDenials.has(r.name);
  const rank = (r: Rule) => (denies(r) ? RANK.deny : RANK[r.effect]);
  const top = matched.reduce((best, r) => Math.max(best, rank(r)), -1);
  const winner = matched.find((r) => rank(r) === top && (denies(r) || r.effect === 'review'));
  if (winner && denies(winner)) {
    decision.action = 'deny';
    decision.decidedBy = winner.name;
    decision.message =
      winner.effect === 'deny'
        ? (winner.message ?? `blocked by rule "${winner.name}"`)
        : (lineageDenials.get(winner.name) ?? null);
  } else if (winner?.effect === 'review') {
    decision.action = 'review';
    decision.decidedBy = winner.name;
    decision.message = winner.message ?? `held for approval by rule "${winner.name}"`;
    decision.review = winner.review;
  } else if (matched.length === 0 && ctx.connection.default === 'deny') {
    decision.action = 'deny';
    decision.message = `no rule allows this on connection "${ctx.connection.name}" (its default is deny)`;
  } else if (
    facts.protocol_kind === 'sql' &&
    facts.unparseable !== null &&
    !matched.some((r) => r.effect === 'allow')
  ) {
    // Unparseable SQL is denied unless a rule explicitly allows it: what cannot be read cannot be judged.
    decision.action = 'deny';
    decision.message = `the statement could not be parsed, so it cannot be checked: ${facts.unparseable}`;
  }
  return decision;
}

/**
 * decide() with a cache: the same facts (analyzers hand out one frozen object per statement
 * text) for the same connection and caller give the same decision, so a repeated statement
 * costs a lookup. Entries live as long as their facts object does.
 */
export class Decider {
  private readonly cache = new WeakMap<Facts, Map<string, Decision>>();
  /** Each frozen context's key, made once (a session decides every statement with the same one). */
  private readonly keys = new WeakMap<DecisionContext, string>();

  constructor(readonly rules: Rule[]) {}

  /** A context that cannot change (see frozenContext) is keyed once; any other on every call. */
  private keyOf(ctx: DecisionContext): string {
    if (!isFrozenContext(ctx)) return contextKey(ctx);
    let key = this.keys.get(ctx);
    if (key === undefined) {
      key = contextKey(ctx);
      this.keys.set(ctx, key);
    }
    return key;
  }

  decide(ctx: DecisionContext, facts: Facts): Decision {
    const key = this.keyOf(ctx);
    let byContext = this.cache.get(facts);
    const hit = byContext?.get(key);
    if (hit) return hit;
    const decision = Object.freeze(decide(this.rules, ctx, facts));
    if (!byContext) {
      byContext = new Map();
      this.cache.set(facts, byContext);
    }
    if (byContext.size < 256) byContext.set(key, decision);
    return decision;
  }
}

/** `ctx` with it and everything in it frozen: a Decider then makes its key once. */
export function frozenContext(ctx: DecisionContext): DecisionContext {
  const { connection: c, caller: u } = ctx;
  return Object.freeze({
    connection: Object.freeze({ ...c, tags: Object.freeze([...c.tags]) as string[] }),
    caller: Object.freeze({
      ...u,
      groups: Object.freeze([...u.groups]) as string[],
      chain: Object.freeze([...u.chain]) as string[],
    }),
  });
}

function isFrozenContext(ctx: DecisionContext): boolean {
  const { connection: c, caller: u } = ctx;
  return (
    Object.isFrozen(ctx) &&
    Object.isFrozen(c) &&
    Object.isFrozen(c.tags) &&
    Object.isFrozen(u) &&
    Object.isFrozen(u.groups) &&
    Object.isFrozen(u.chain)
  );
}

/**
 * Every field, each string quoted (JSON): a group named `a,x` and groups `a` and `x` must not share
 * a key (an LDAP group's distinguished name has commas), or one caller's decision would be another's.
 */
function contextKey({ connection: c, caller: u }: DecisionContext): string {
  return JSON.stringify([c.name, c.protocol, c.default, c.tags, u.subject, u.kind, u.groups, u.chain]);
}
