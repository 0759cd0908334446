// /api/audit: read, export and verify the hash-chained audit trail (auditors), fetch the
// public key that verifies it offline, and force a signed checkpoint (admins).
import { Readable } from 'node:stream';
import { z } from 'zod';
import { WitnessMismatchError } from '../../audit/checkpoints.js';
import { exportLines } from '../../audit/export.js';
import { recordFromRow } from '../../audit/rows.js';
import { findNode, holds, type Trace, TraceNotFound, Tracer } from '../../audit/trace.js';
import { storeCheckpoints, storeRecords, verifyTrail } from '../../audit/verify.js';
import { parseDuration } from '../../config/duration.js';
import { actorOf, hasRole } from '../../identity/identity.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ApiError, badRequest, notFound } from '../errors.js';
import { auditCheckpoint, auditRecord, verifyReport } from '../schemas.js';
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
          /** Records before this seq: with `tail`, the page older than one already shown. */
          before_seq: z.coerce.number().int().min(1).optional(),
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
      if (q.before_seq !== undefined) query = query.where('seq', '<', q.before_seq);
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

  const tracer = new Tracer(ctx.store);
  app.get(
    '/api/audit/trace/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['audit'],
        summary:
          'The delegation tree a session, token or API key belongs to: from the root credential through every delegate, each with its sessions and their commands in time order',
        params: z.object({ id: z.string().min(1).max(128) }),
      },
    },
    async (req) => {
      const who = caller(req);
      let trace: Trace;
      try {
        trace = await tracer.trace(req.params.id);
      } catch (err) {
        if (err instanceof TraceNotFound) throw notFound(err.message);
        throw err;
      }
      if (hasRole(who, 'auditor')) return trace;
      // The root itself (not one of its delegates) sees its whole tree; a delegate sees only the
      // part under its own token, like the sessions API shows it only its own sessions.
      if (who.chain.length === 0 && who.subject === trace.root_subject) return trace;
      const own = who.via === 'warden_token' && who.tokenId ? findNode(trace.root, who.tokenId) : undefined;
      if (own && holds(own, req.params.id)) return { ...trace, root: own };
      throw notFound(`${req.params.id} is not a session, token or API key known to this Warden`);
    },
  );

  app.get(
    '/api/audit/verify',
    {
      config: { auth: 'auditor' },
      schema: {
        tags: ['audit'],
        summary: "Verify the whole trail in the store, anchored at the gateway's witness checkpoint",
        response: { 200: verifyReport },
      },
    },
    async (req) => {
      const who = caller(req);
      // The witness lives outside the store, so deleting checkpoint rows does not unanchor the
      // trail. Nothing is signed first: that would vouch for whatever the store holds now.
      const witness = ctx.checkpointer.witness();
      const report = await verifyTrail({
        records: storeRecords(ctx.store),
        checkpoints: await storeCheckpoints(ctx.store),
        anchors: witness ? [witness] : [],
        keys: new Map([[ctx.signingKey.kid, ctx.signingKey.publicKey]]),
      });
      ctx.audit.record({
        type: 'audit.verified',
        actor: actorOf(who, req.ip),
        target: 'audit',
        outcome: report.ok ? 'success' : 'failure',
        payload: {
          records: report.records,
          last_seq: report.last_seq,
          anchored_seq: report.anchored_seq,
          problem: report.problem,
        },
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
        summary:
          'Sign a checkpoint of the current tail now; answers the latest checkpoint (null on an empty trail)',
        response: { 200: z.object({ checkpoint: auditCheckpoint.nullable(), signed_now: z.boolean() }) },
      },
    },
    async () => {
      await ctx.audit.drain();
      try {
        const signed = await ctx.checkpointer.checkpoint();
        if (signed) return { checkpoint: signed, signed_now: true };
        const latest = await ctx.checkpointer.latestValid();
        return { checkpoint: latest ?? null, signed_now: false };
      } catch (err) {
        if (err instanceof WitnessMismatchError) throw new ApiError(409, 'audit_tampered', err.message);
        throw err;
      }
    },
  );
}
