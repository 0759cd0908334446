// What changed between two rule sets, by rule name: the audit payload of a policy change and
// what `warden policy apply --dry-run` prints. Rules carry no secrets, so whole rules are kept.
import type { Rule } from '../config/rules.js';
import { canonicalJson } from '../crypto/canonical.js';

export interface RuleChange {
  name: string;
  /** Top-level fields that differ (`effect`, `when`, `match`, …). */
  fields: string[];
  before: Rule;
  after: Rule;
}

export interface RuleDiff {
  added: Rule[];
  removed: Rule[];
  changed: RuleChange[];
  /** True when only the order differs (order matters: the first deny names the decision). */
  reordered: boolean;
}

export function diffRules(before: readonly Rule[], after: readonly Rule[]): RuleDiff {
  const old = new Map(before.map((r) => [r.name, r]));
  const now = new Map(after.map((r) => [r.name, r]));
  const changed: RuleChange[] = [];
  for (const r of after) {
    const o = old.get(r.name);
    if (!o) continue;
    const a = r as Record<string, unknown>;
    const b = o as Record<string, unknown>;
    const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k]))
      .sort();
    if (fields.length > 0) changed.push({ name: r.name, fields, before: o, after: r });
  }
  const kept = (list: readonly Rule[], other: Map<string, Rule>) =>
    list.filter((r) => other.has(r.name)).map((r) => r.name);
  return {
    added: after.filter((r) => !old.has(r.name)),
    removed: before.filter((r) => !now.has(r.name)),
    changed,
    reordered: kept(before, now).join('\u0000') !== kept(after, old).join('\u0000'),
  };
}

export function isEmptyDiff(d: RuleDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0 && !d.reordered;
}

/** `+2 -1 ~1`, for tables and log lines. */
export function diffSummary(d: RuleDiff): string {
  const parts = [`+${d.added.length}`, `-${d.removed.length}`, `~${d.changed.length}`];
  if (d.reordered) parts.push('reordered');
  return parts.join(' ');
}
