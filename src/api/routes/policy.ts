// /api/policy: the rules in force (config file + the versioned set applied through the API),
// applying a new set (audited with its diff), the history, and "explain": what Warden would
// decide about a command on a connection for a given caller, without running it.
import { z } from 'zod';
import { connectionName } from '../../config/connection.js';
import { describeIssue } from '../../config/load.js';
import { type Rule, ruleSet } from '../../config/rules.js';
import { actorOf } from '../../identity/identity.js';
import { analyzeCommand } from '../../policy/analyze.js';
import type { Decision } from '../../policy/decide.js';
import { diffRules, diffSummary, isEmptyDiff, type RuleDiff } from '../../policy/diff.js';
import type { Facts } from '../../policy/facts.js';
import { fieldPositions } from '../../policy/lineage.js';
import { type DerivedField, MaskSet } from '../../policy/mask/mask-set.js';
import { ConflictError } from '../../store/connections.js';
import type { PolicyVersion } from '../../store/policy-versions.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ApiError, notFound } from '../errors.js';
import type { ZodApp } from '../server.js';

const decisionView = z.object({
  action: z.enum(['allow', 'deny', 'review']),
  rules: z.array(z.string()),
  decided_by: z.string().nullable(),
  message: z.string().nullable(),
  masks: z.array(z.record(z.string(), z.unknown())),
  /** SQL result columns computed from masked columns, which the engine masks by position. */
  derived: z.array(z.record(z.string(), z.unknown())),
  /** The tightest limits, each with the rule that set it (named in the notice or error it causes). */
  limits: z.object({
    rows: z.number().nullable(),
    rows_rule: z.string().nullable(),
    duration_ms: z.number().nullable(),
    duration_rule: z.string().nullable(),
  }),
  review: z.record(z.string(), z.unknown()).nullable(),
});

const anyRecord = z.record(z.string(), z.unknown());
const diffView = z.object({
  added: z.array(anyRecord),
  removed: z.array(anyRecord),
  changed: z.array(
    z.object({ name: z.string(), fields: z.array(z.string()), before: anyRecord, after: anyRecord }),
  ),
  reordered: z.boolean(),
  summary: z.string(),
});
const versionSummary = z.object({
  version: z.number().int(),
  created_at: z.string(),
  actor: anyRecord,
  comment: z.string(),
  rules: z.number().int(),
});

const plain = (r: Rule): Record<string, unknown> => ({ ...r });
const diffBody = (d: RuleDiff) => ({
  added: d.added.map(plain),
  removed: d.removed.map(plain),
  changed: d.changed.map((c) => ({ ...c, before: plain(c.before), after: plain(c.after) })),
  reordered: d.reordered,
  summary: diffSummary(d),
});
const summaryOf = (v: PolicyVersion) => ({
  version: v.version,
  created_at: v.created_at,
  actor: v.actor,
  comment: v.comment,
  rules: v.rules.length,
});

/** `schema.table.column` → table `schema.table`; a bare name has no table (only `*.col` rules meet it). */
function columnRef(text: string): { table: string | null; name: string } {
  const dot = text.lastIndexOf('.');
  return dot < 0 ? { table: null, name: text } : { table: text.slice(0, dot), name: text.slice(dot + 1) };
}

/** Derived masks placed on a result of `fieldCount` fields: the last statement that returns rows (what psql shows). */
function derivedFields(facts: Facts, d: Decision, fieldCount: number): DerivedField[] {
  if (facts.protocol_kind !== 'sql') return [];
  const index = facts.statements.findLastIndex((s) => (s.outputs?.length ?? 0) > 0);
  const outputs = facts.statements[index]?.outputs;
  if (!outputs) return [];
  const positions = fieldPositions(outputs, fieldCount);
  return d.derived.flatMap((m) => {
    const field = m.statement === index ? positions[m.output] : null;
    return field === null || field === undefined ? [] : [{ field, style: m.style }];
  });
}

/** Validates a rule set as sent; problems are named by index and key (`rules[2].effect: …`). */
function parseRules(input: unknown[]): Rule[] {
  const parsed = ruleSet.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const p = describeIssue(
      { ...issue, path: ['rules', ...issue.path] },
      'rules',
      new Map(),
      () => undefined,
    );
    return `${p.path}: ${p.message}`;
  });
  throw new ApiError(400, 'validation_failed', lines.join('; '), lines);
}

export function policyRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/policy/rules',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['policy'],
        summary: 'The rules in force (config file first, then the applied version) and the default',
        response: {
          200: z.object({
            default: z.enum(['allow', 'deny']),
            version: z.number().int(),
            rules: z.array(anyRecord),
            shadowed: z.array(z.string()),
          }),
        },
      },
    },
    async () => {
      await ctx.policy.refresh();
      return {
        default: ctx.config.policy.default,
        version: ctx.policy.version,
        rules: ctx.policy.rules.map((r) => ({ ...r })),
        shadowed: [...ctx.policy.shadowed],
      };
    },
  );

  app.put(
    '/api/policy/rules',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['policy'],
        summary: 'Replace the API-managed rule set; a change becomes a new version, audited with its diff',
        body: z.strictObject({
          rules: z.array(z.unknown()).max(10_000),
          /** Apply only if the version in force is still this one. */
          if_version: z.number().int().min(0).optional(),
          comment: z.string().max(1000).default(''),
          dry_run: z.boolean().default(false),
        }),
        response: {
          200: z.object({
            version: z.number().int(),
            changed: z.boolean(),
            dry_run: z.boolean(),
            diff: diffView,
          }),
        },
      },
    },
    async (req) => {
      const { rules: input, if_version: ifVersion, comment, dry_run: dryRun } = req.body;
      const rules = parseRules(input);
      const fromConfig = new Set(ctx.config.policy.rules.map((r) => r.name));
      const clash = rules.filter((r) => fromConfig.has(r.name)).map((r) => r.name);
      if (clash.length > 0) {
        throw new ConflictError(
          `rule name${clash.length > 1 ? 's' : ''} ${clash.map((n) => `"${n}"`).join(', ')} already defined in the config file; rename the rule or change it there`,
        );
      }
      if (dryRun) {
        const current = await ctx.policyVersions.current();
        const diff = diffRules(current?.rules ?? [], rules);
        return {
          version: current?.version ?? 0,
          changed: !isEmptyDiff(diff),
          dry_run: true,
          diff: diffBody(diff),
        };
      }
      const actor = actorOf(caller(req), req.ip);
      let diff: RuleDiff = diffRules([], []);
      const result = await ctx.policyVersions.append(input, { actor, comment, ifVersion }, (previous) => {
        diff = diffRules(previous?.rules ?? [], rules);
        return !isEmptyDiff(diff);
      });
      if (result.written) {
        await ctx.audit.append({
          type: 'policy.changed',
          actor,
          target: `policy:v${result.version}`,
          outcome: 'success',
          payload: {
            version: result.version,
            previous_version: result.previous?.version ?? 0,
            comment,
            diff: diffBody(diff),
          },
        });
      }
      await ctx.policy.refresh();
      return { version: result.version, changed: result.written, dry_run: false, diff: diffBody(diff) };
    },
  );

  app.get(
    '/api/policy/versions',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['policy'],
        summary: 'Applied rule-set versions, newest first',
        response: { 200: z.object({ versions: z.array(versionSummary) }) },
      },
    },
    async () => ({ versions: (await ctx.policyVersions.list()).map(summaryOf) }),
  );

  app.get(
    '/api/policy/versions/:version',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['policy'],
        summary: 'One version: its rules and what changed from the version before it',
        params: z.object({ version: z.coerce.number().int().min(1) }),
        response: { 200: versionSummary.extend({ rule_set: z.array(anyRecord), diff: diffView }) },
      },
    },
    async (req) => {
      const v = await ctx.policyVersions.get(req.params.version);
      if (!v) throw notFound(`policy version ${req.params.version} does not exist`);
      const before = v.version > 1 ? await ctx.policyVersions.get(v.version - 1) : undefined;
      return {
        ...summaryOf(v),
        rule_set: v.rules.map(plain),
        diff: diffBody(diffRules(before?.rules ?? [], v.rules)),
      };
    },
  );

  app.post(
    '/api/policy/test',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['policy'],
        summary: 'Explain the decision for a command on a connection as a given caller (nothing runs)',
        body: z.strictObject({
          connection: connectionName,
          command: z.string().min(1).max(1_000_000),
          as: z.strictObject({
            subject: z.string().min(1),
            groups: z.array(z.string()).default([]),
            kind: z.enum(['human', 'service', 'agent']).default('human'),
            chain: z.array(z.string()).default([]),
          }),
          /** Result rows to mask as this decision would: columns as `table.column` or bare `column`. */
          sample: z
            .strictObject({
              columns: z.array(z.string().min(1)).min(1).max(1000),
              rows: z.array(z.array(z.string().nullable())).max(1000),
            })
            .optional(),
          /** Free text (terminal output, a response body) to mask as this decision would. */
          sample_text: z.string().max(1_000_000).optional(),
        }),
        response: {
          200: z.object({
            facts: z.record(z.string(), z.unknown()),
            decision: decisionView,
            masked_sample: z
              .object({ columns: z.array(z.string()), rows: z.array(z.array(z.string().nullable())) })
              .optional(),
            masked_text: z.string().optional(),
          }),
        },
      },
    },
    async (req) => {
      const conn = await ctx.connections.get(req.body.connection);
      if (!conn) throw notFound(`connection "${req.body.connection}" does not exist`);
      const facts = analyzeCommand(conn.protocol, req.body.command);
      await ctx.policy.refresh();
      const d = ctx.policy.decide(
        {
          connection: {
            name: conn.name,
            tags: conn.tags,
            protocol: conn.protocol,
            default: conn.policy_default ?? ctx.config.policy.default,
          },
          caller: req.body.as,
        },
        facts,
      );
      const masks = new MaskSet(d.masks, ctx.tokenizeKey);
      const { sample, sample_text: sampleText } = req.body;
      let maskedSample: { columns: string[]; rows: Array<Array<string | null>> } | undefined;
      if (sample) {
        const bad = sample.rows.findIndex((r) => r.length !== sample.columns.length);
        if (bad >= 0) {
          throw new ApiError(
            400,
            'validation_failed',
            `sample.rows[${bad}] has ${sample.rows[bad]?.length} values for ${sample.columns.length} columns`,
          );
        }
        const plan = masks.plan(
          sample.columns.map(columnRef),
          derivedFields(facts, d, sample.columns.length),
        );
        maskedSample = { columns: sample.columns, rows: sample.rows.map((r) => plan.mask(r)) };
      }
      return {
        ...(maskedSample ? { masked_sample: maskedSample } : {}),
        ...(sampleText === undefined ? {} : { masked_text: masks.maskText(sampleText) }),
        facts: { ...facts },
        decision: {
          action: d.action,
          rules: d.rules,
          decided_by: d.decidedBy,
          message: d.message,
          masks: d.masks.map((m) => ({ ...m })),
          derived: d.derived.map((m) => ({ ...m })),
          limits: {
            rows: d.limits.rows,
            rows_rule: d.rowLimitRule,
            duration_ms: d.limits.durationMs,
            duration_rule: d.durationLimitRule,
          },
          review: d.review ? { ...d.review } : null,
        },
      };
    },
  );
}
