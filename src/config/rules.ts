// The policy rule language (here, beside the config schema that embeds it; policy/ evaluates it): who and where a rule applies to (`match`), what about the command makes
// it fire (`when`, over analyzer facts), and what happens then (`effect`). One zod schema
// validates rules from the config file and from the API alike.
import { z } from 'zod';
import { ALL_DETECTORS, type DetectorName } from '../policy/mask/detectors.js';
import { duration } from './duration.js';

/** Review waits: a timer longer than about 24.8 days would fire at once, and a day is plenty. */
const atMostADay = duration.refine((ms) => ms <= 86_400_000, { message: 'at most 24h' });

const names = z.array(z.string().min(1)).min(1);

export const ruleMatch = z.strictObject({
  /** Connection name globs (`orders-*`). */
  connections: names.optional(),
  /** Any of these connection tags. */
  tags: names.optional(),
  protocols: names.optional(),
  subjects: names.optional(),
  groups: names.optional(),
  kinds: z
    .array(z.enum(['human', 'service', 'agent']))
    .min(1)
    .optional(),
  /** How many delegation hops stand between the root identity and the caller. */
  chain_depth: z
    .strictObject({ min: z.number().int().min(0).optional(), max: z.number().int().min(0).optional() })
    .optional(),
});
export type RuleMatch = z.infer<typeof ruleMatch>;

export const sqlCondition = z.strictObject({
  /** Statement kinds (select, insert, update, delete, drop, truncate, …). */
  statements: names.optional(),
  /** Object types for drop/create/alter (table, view, schema, function, …). */
  objects: names.optional(),
  /** Tables read or written (`users`, `public.users`, `audit_*`): any statement touching one. */
  tables: names.optional(),
  tables_written: names.optional(),
  functions: names.optional(),
  /** `absent`: an UPDATE or DELETE without WHERE. */
  where: z.enum(['absent']).optional(),
  multi_statement: z.boolean().optional(),
  unparseable: z.boolean().optional(),
  opaque: z.boolean().optional(),
  program: z.boolean().optional(),
  file_access: z.boolean().optional(),
});
export type SqlCondition = z.infer<typeof sqlCondition>;

export const shellCondition = z.strictObject({
  programs: names.optional(),
  flags: names.optional(),
  opaque: z.boolean().optional(),
  pipeline: z.boolean().optional(),
  redirections: z.boolean().optional(),
  unparseable: z.boolean().optional(),
});

export const k8sCondition = z.strictObject({
  verbs: names.optional(),
  groups: z.array(z.string()).min(1).optional(),
  resources: names.optional(),
  subresources: names.optional(),
  namespaces: names.optional(),
});

export const httpCondition = z.strictObject({
  methods: names.optional(),
  /** Path globs: `*` within a segment, `**` across segments. */
  paths: names.optional(),
});

export const ruleWhen = z.strictObject({
  sql: sqlCondition.optional(),
  shell: shellCondition.optional(),
  k8s: k8sCondition.optional(),
  http: httpCondition.optional(),
});
export type RuleWhen = z.infer<typeof ruleWhen>;

export const MASK_STYLES = ['redact', 'keep-last-4', 'tokenize'] as const;

const ruleBase = {
  name: z
    .string()
    .regex(
      /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/,
      'expected a rule name of lowercase letters, digits and hyphens',
    ),
  description: z.string().max(1000).default(''),
  match: ruleMatch.default({}),
  when: ruleWhen.optional(),
};

export const rule = z.discriminatedUnion('effect', [
  z.strictObject({ ...ruleBase, effect: z.literal('allow') }),
  z.strictObject({
    ...ruleBase,
    effect: z.literal('deny'),
    message: z.string().min(1).max(1000).optional(),
  }),
  z.strictObject({
    ...ruleBase,
    effect: z.literal('review'),
    message: z.string().min(1).max(1000).optional(),
    review: z
      .strictObject({
        approvers: names,
        approvals: z.number().int().min(1).default(1),
        /** How long the command is held on the wire; `false`: refuse now, allow once approved. */
        hold: z.union([atMostADay, z.literal(false)]).prefault('5m'),
        /**
         * With `hold: false`: how long an approval lets the caller run the same statement again,
         * and how long a review waits for approvers.
         */
        ttl: atMostADay.prefault('15m'),
        /** Whether the requester may run the command at once with a reason (audited as an alert). */
        break_glass: z.boolean().default(true),
      })
      .prefault({ approvers: ['approver'] }),
  }),
  z.strictObject({
    ...ruleBase,
    effect: z.literal('mask'),
    mask: z.strictObject({
      /** `table.column` or bare `column` globs, masked whole. */
      columns: names.optional(),
      /** Content detectors run on other values. Omitted: none when `columns` is set, else all of them. */
      detectors: z
        .array(z.enum(ALL_DETECTORS as [DetectorName, ...DetectorName[]]))
        .min(1)
        .optional(),
      style: z
        .union([z.enum(MASK_STYLES), z.strictObject({ keep_last: z.number().int().min(0).max(64) })])
        .default('redact'),
    }),
  }),
  z.strictObject({
    ...ruleBase,
    effect: z.literal('limit'),
    limit: z
      .strictObject({ rows: z.number().int().min(1).optional(), duration: duration.optional() })
      .refine((l) => l.rows !== undefined || l.duration !== undefined, 'a limit needs rows or duration'),
  }),
]);
export type Rule = z.infer<typeof rule>;
export type Effect = Rule['effect'];

export const ruleSet = z.array(rule).superRefine((rules, ctx) => {
  const seen = new Set<string>();
  for (const [i, r] of rules.entries()) {
    if (seen.has(r.name))
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name "${r.name}"` });
    seen.add(r.name);
  }
});
