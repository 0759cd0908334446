// /api/audit: read, export and verify the hash-chained audit trail (auditors), fetch the
// public key that verifies it offline, and force a signed checkpoint (admins).
import { Readable } from 'node:stream';
import { z } from 'zod';
import { exportLines } from '../../audit/export.js';
import { recordFromRow } from '../../audit/rows.js';
import { storeCheckpoints, storeRecords, verifyTrail } from '../../audit/verify.js';
import { parseDuration } from '../../config/duration.js';
import { actorOf } from '../../identity/identity.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { badRequest } from '../errors.js';
import { auditRecord, verifyReport } from '../schemas.js';
import type { ZodApp } from '../server.js';

/** ISO-8601 time, or an age ("15m", "7d") meaning that long ago. */
export function parseTime(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const age = parseDuration(value);
  if (age !== undefined) return new Date(Date.now() - age).toISOString();
  const t = new Date(value);
  if (Number.isNaN(t.getTime()))
    throw badRequest(`${name}: expected an ISO-8601 time or an age like "15m", got "${value}"`);
  return t.toISOString();
}

export function auditRoutes(app: ZodApp, ctx: ApiContext): void {
  app.get(
    '/api/audit',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['audit'],
        summary: 'Audit records in seq order',
        querystring: z.strictObject({
          after_seq: z.coerce.number().int().min(0).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          /** The newest records instead of the oldest. */
          tail: z.enum(['true', 'false']).optional(),
          type: z.string().optional(),
          subject: z.string().optional(),
          since: z.string().optional(),
          until: z.string().optional(),
        }),
        response: { 200: z.object({ records: z.array(auditRecord), last_seq: z.number().int() }) },
      },
    },
    async (req) => {
      const q = req.query;
      let query = ctx.store.db.selectFrom('audit_log').selectAll();
      if (q.after_seq !== undefined) query = query.where('seq', '>', q.after_seq);
      if (q.type)
        query = q.type.endsWith('*')
          ? query.where('type', 'like', `${q.type.slice(0, -1)}%`)
          : query.where('type', '=', q.type);
      if (q.subject) query = query.where('actor_json', 'like', `%"subject":${JSON.stringify(q.subject)}%`);
      const since = parseTime(q.since, 'since');
      const until = parseTime(q.until, 'until');
      if (since) query = query.where('time', '>=', since);
      if (until) query = query.where('time', '<=', until);
      const tail = q.tail === 'true';
      let rows = await query
        .orderBy('seq', tail ? 'desc' : 'asc')
        .limit(q.limit)
        .execute();
      if (tail) rows = rows.reverse();
      const last = await ctx.store.db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.max('seq').as('m'))
        .executeTakeFirst();
      return { records: rows.map(recordFromRow), last_seq: Number(last?.m ?? 0) };
    },
  );

  app.get(
    '/api/audit/export',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['audit'],
        summary: 'Export the trail as JSON lines (header, checkpoints, records) for offline verification',
        querystring: z.strictObject({ since: z.string().optional(), until: z.string().optional() }),
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const range = {
        since: parseTime(req.query.since, 'since'),
        until: parseTime(req.query.until, 'until'),
      };
      ctx.audit.record({
        type: 'audit.exported',
        actor: actorOf(who, req.ip),
        target: 'audit',
        outcome: 'success',
        payload: { since: range.since ?? null, until: range.until ?? null },
      });
      reply.type('application/x-ndjson');
      return reply.send(Readable.from(exportLines(ctx.store, range, ctx.signingKey.kid)));
    },
  );

  app.get(
    '/api/audit/verify',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['audit'],
        summary: 'Verify the whole trail in the store',
        response: { 200: verifyReport },
      },
    },
    async (req) => {
      const who = caller(req);
      const report = await verifyTrail({
        records: storeRecords(ctx.store),
        checkpoints: await storeCheckpoints(ctx.store),
        keys: new Map([[ctx.signingKey.kid, ctx.signingKey.publicKey]]),
      });
      ctx.audit.record({
        type: 'audit.verified',
        actor: actorOf(who, req.ip),
        target: 'audit',
        outcome: report.ok ? 'success' : 'failure',
        payload: { records: report.records, last_seq: report.last_seq, problem: report.problem },
      });
      return report;
    },
  );

  app.get(
    '/api/audit/public-key',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['audit'],
        summary: 'The Ed25519 public key that verifies checkpoints (and Warden tokens)',
        response: {
          200: z.object({ key_id: z.string(), pem: z.string(), jwk: z.record(z.string(), z.unknown()) }),
        },
      },
    },
    async () => ({
      key_id: ctx.signingKey.kid,
      pem: ctx.signingKey.publicPem,
      jwk: { ...ctx.signingKey.publicJwk },
    }),
  );

  app.post(
    '/api/audit/checkpoint',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'Sign a checkpoint of the current tail now',
        response: {
          200: z.object({
            checkpoint: z
              .object({ seq: z.number().int(), hash: z.string(), time: z.string(), key_id: z.string() })
              .nullable(),
          }),
        },
      },
    },
    async () => {
      await ctx.audit.drain();
      const c = await ctx.checkpointer.checkpoint();
      return { checkpoint: c ? { seq: c.seq, hash: c.hash, time: c.time, key_id: c.key_id } : null };
    },
  );
}
