// How the API answers when something goes wrong: one JSON shape, the right status, a message
// a person can act on, and internal details only in the server log (with the request id).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type AuditLog, AuditQueueFullError } from '../audit/log.js';
import { SealError } from '../crypto/seal.js';
import { AuthError } from '../identity/errors.js';
import { actorOf, type Identity } from '../identity/identity.js';
import { redactCredentials } from '../logging.js';
import { DecisionForbiddenError } from '../reviews/deciders.js';
import { ConflictError, NotFoundError } from '../store/connections.js';
import { isUnavailable } from '../store/store.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const forbidden = (message: string) => new ApiError(403, 'forbidden', message);
export const notFound = (message: string) => new ApiError(404, 'not_found', message);
export const badRequest = (message: string, details?: unknown) =>
  new ApiError(400, 'bad_request', message, details);

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function describeValidation(err: FastifyError): { message: string; details: unknown } {
  const issues = (err.validation ?? []) as ValidationIssue[];
  const ctx = err.validationContext ?? 'request';
  const lines = issues.map((i) => {
    const path = (i.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
    return `${ctx}${path ? `.${path}` : ''}: ${i.message ?? 'invalid'}`;
  });
  return { message: lines.join('; ') || err.message, details: lines };
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    reply.code(404).send({
      error: {
        code: 'not_found',
        message: `no route ${req.method} ${redactCredentials(req.url.split('?')[0] ?? '')}`,
      },
    });
  });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const send = (status: number, code: string, message: string, details?: unknown) =>
      reply.code(status).send({ error: { code, message, ...(details === undefined ? {} : { details }) } });
    if (err instanceof ApiError) return send(err.status, err.code, err.message, err.details);
    if (err.validation) {
      const { message, details } = describeValidation(err);
      return send(400, 'validation_failed', message, details);
    }
    if (err instanceof AuthError) {
      // The description is a quoted-string: escape quotes and backslashes, and keep it to one ASCII line.
      const description = err.message.replace(/[^\x20-\x7e]/g, ' ').replace(/["\\]/g, '\\$&');
      reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${description}"`);
      return send(401, 'unauthenticated', err.message);
    }
    if (err instanceof NotFoundError) return send(404, 'not_found', err.message);
    if (err instanceof ConflictError) return send(409, 'conflict', err.message);
    // Before the RangeError branch: fastify's body-too-large error is itself a RangeError.
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return send(413, 'body_too_large', 'request body is too large');
    if (err instanceof RangeError) return send(400, 'bad_request', err.message);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return send(415, 'unsupported_media_type', err.message);
    if (
      err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
      err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
      err instanceof SyntaxError
    ) {
      return send(400, 'malformed_json', `request body is not valid JSON: ${err.message}`);
    }
    if (isUnavailable(err) || err instanceof AuditQueueFullError) {
      req.log.warn({ err: err.message }, 'store unavailable');
      return send(503, 'store_unavailable', 'the store is not reachable; try again shortly');
    }
    if (err instanceof SealError) {
      req.log.error({ err: err.message }, 'sealed secret could not be opened');
      return send(500, 'seal_error', `${err.message} (request ${req.id})`);
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return send(err.statusCode, (err.code ?? 'bad_request').toLowerCase(), err.message);
    }
    req.log.error({ err }, 'internal error');
    return send(500, 'internal', `internal error (request ${req.id}); the server log has the details`);
  });
}

/**
 * Runs a desk's decision for `who`; a refusal (DecisionForbiddenError) is audited as
 * `<type>.refused` against `target` and answered 403 with its message.
 */
export async function refusedAsForbidden<T>(
  audit: AuditLog,
  who: Identity,
  refusal: { type: string; target: string; payload: Record<string, unknown>; address?: string | null },
  f: () => Promise<T>,
): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (!(err instanceof DecisionForbiddenError)) throw err;
    audit.record({
      type: `${refusal.type}.refused`,
      actor: actorOf(who, refusal.address),
      target: refusal.target,
      outcome: 'denied',
      payload: { ...refusal.payload, message: err.message },
    });
    throw forbidden(err.message);
  }
}
