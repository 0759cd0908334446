// Reads a rules file for `warden policy apply`: YAML (or JSON) holding `rules: [...]`, or the
// list alone, validated locally with the rule schema so mistakes are named by file:line.
import { z } from 'zod';
import { ConfigError, describeIssue, readYamlFile } from './load.js';
import { type Rule, ruleSet } from './rules.js';

const wrapped = z.strictObject({ rules: ruleSet });

/** The rules as written (what is sent and stored) and as parsed (what is enforced). */
export function loadRulesFile(file: string): { input: unknown[]; rules: Rule[] } {
  const { value, locate } = readYamlFile(file);
  const bare = Array.isArray(value);
  const parsed = bare ? ruleSet.safeParse(value) : wrapped.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => describeIssue(issue, file, new Map(), locate)));
  }
  const input = (bare ? value : (value as { rules: unknown[] }).rules) as unknown[];
  return { input, rules: Array.isArray(parsed.data) ? parsed.data : parsed.data.rules };
}
