// /api/policy: the rules in force, and "explain": what Warden would decide about a command on a
// connection for a given caller, with the facts and every matching rule, without running it.
import { z } from 'zod';
import { connectionName } from '../../config/connection.js';
import { analyzeCommand } from '../../policy/analyze.js';
import { decide } from '../../policy/decide.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import type { ZodApp } from '../server.js';

const decisionView = z.object({
  action: z.enum(['allow', 'deny', 'review']),
  rules: z.array(z.string()),
  decided_by: z.string().nullable(),
  message: z.string().nullable(),
  masks: z.array(z.record(z.string(), z.unknown())),
  /** SQL result columns computed from masked columns, which the engine masks by position. */
  derived: z.array(z.record(z.string(), z.unknown())),
  limits: z.object({ rows: z.number().nullable(), duration_ms: z.number().nullable() }),
  review: z.record(z.string(), z.unknown()).nullable(),
});

export function policyRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/policy/rules',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['policy'],
        summary: 'The rules in force and the default for commands no rule decides',
        response: {
          200: z.object({
            default: z.enum(['allow', 'deny']),
            rules: z.array(z.record(z.string(), z.unknown())),
          }),
        },
      },
    },
    async () => ({
      default: ctx.config.policy.default,
      rules: ctx.config.policy.rules.map((r) => ({ ...r })),
    }),
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
        }),
        response: { 200: z.object({ facts: z.record(z.string(), z.unknown()), decision: decisionView }) },
      },
    },
    async (req) => {
      const conn = await ctx.connections.get(req.body.connection);
      if (!conn) throw notFound(`connection "${req.body.connection}" does not exist`);
      const facts = analyzeCommand(conn.protocol, req.body.command);
      const d = decide(
        ctx.config.policy.rules,
        {
          connection: {
            name: conn.name,
            tags: conn.tags,
            protocol: conn.protocol,
            default: ctx.config.policy.default,
          },
          caller: req.body.as,
        },
        facts,
      );
      return {
        facts: { ...facts },
        decision: {
          action: d.action,
          rules: d.rules,
          decided_by: d.decidedBy,
          message: d.message,
          masks: d.masks.map((m) => ({ ...m })),
          derived: d.derived.map((m) => ({ ...m })),
          limits: { rows: d.limits.rows, duration_ms: d.limits.durationMs },
          review: d.review ? { ...d.review } : null,
        },
      };
    },
  );
}
