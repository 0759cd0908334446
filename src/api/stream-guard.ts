// Bounds on the API's live streams (server-sent events): how many one caller and everyone may
// hold open, and a re-check that ends a stream once its credential is no longer accepted.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PeriodicCheck } from '../gateway/periodic-check.js';
import { bearerFrom } from '../identity/authenticate.js';
import { AuthError } from '../identity/errors.js';
import type { Identity } from '../identity/identity.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';

export interface StreamLimits {
  perSubject: number;
  total: number;
}

/** A person with a few tabs open holds a handful; more is a script gone wrong. */
const DEFAULT_STREAM_LIMITS: StreamLimits = { perSubject: 20, total: 1000 };

/** Open streams counted per subject and in all, shared by every streaming route of one API. */
export class StreamSeats {
  private readonly bySubject = new Map<string, number>();
  private count = 0;

  constructor(private readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS) {}

  /** A seat for `subject`, or 429; the returned function gives it back (once, however often called). */
  take(subject: string): () => void {
    const held = this.bySubject.get(subject) ?? 0;
    if (held >= this.limits.perSubject)
      throw new ApiError(
        429,
        'too_many_streams',
        `${subject} already holds ${held} live streams (at most ${this.limits.perSubject}); close one first`,
      );
    if (this.count >= this.limits.total)
      throw new ApiError(
        429,
        'too_many_streams',
        `this gateway serves ${this.count} live streams, its limit`,
      );
    this.bySubject.set(subject, held + 1);
    this.count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.count--;
      const left = (this.bySubject.get(subject) ?? 1) - 1;
      if (left <= 0) this.bySubject.delete(subject);
      else this.bySubject.set(subject, left);
    };
  }

  get open(): number {
    return this.count;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The open live streams of this API (see installStreamSeats). */
    streamSeats: StreamSeats;
  }
}

export function installStreamSeats(app: FastifyInstance, limits?: StreamLimits): void {
  app.decorate('streamSeats', new StreamSeats(limits));
}

/** How often an open stream's credential is checked again (revocation, a disabled subject). */
const RECHECK_MS = 10_000;

/**
 * Ends `stream` when the credential that opened it expires or is refused (revoked, its subject
 * disabled). The stream ends without a final event, so the client reconnects and hears why.
 * A store that cannot answer does not end it: that is no verdict on the credential.
 */
function endWhenCredentialEnds(
  ctx: ApiContext,
  req: FastifyRequest,
  who: Identity,
  stream: EventStream,
  recheckMs = RECHECK_MS,
): void {
  const credential = bearerFrom(req.headers.authorization);
  const left = who.expiresAt ? who.expiresAt.getTime() - Date.now() : Number.POSITIVE_INFINITY;
  // Beyond a timer's range (about 24 days) the periodic check sees the expiry instead.
  const expiry = left < 2 ** 31 - 1 ? setTimeout(() => stream.end(), Math.max(0, left)) : undefined;
  expiry?.unref();
  const check = new PeriodicCheck(
    async () => {
      try {
        await ctx.authenticator.authenticate(credential);
      } catch (err) {
        if (err instanceof AuthError) stream.end();
        else throw err;
      }
    },
    recheckMs,
    (err) => ctx.log.debug({ err: err.message }, 'live stream: the credential could not be checked now'),
  );
  stream.whenClosed(() => {
    clearTimeout(expiry);
    check.stop();
  });
}

/**
 * The open streams of one route: each takes a seat, owns its socket (the reply is hijacked), ends
 * with its credential, and is ended when the server closes (a stream never ends by itself, and
 * the server's close would wait for it).
 */
export class LiveStreams {
  private readonly open = new Set<EventStream>();

  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: ApiContext,
  ) {
    app.addHook('preClose', async () => {
      for (const s of this.open) s.end();
    });
  }

  /** The stream for this request, or 429 (thrown before anything is written) when seats are out. */
  start(req: FastifyRequest, reply: FastifyReply, who: Identity, opts?: EventStreamOptions): EventStream {
    const release = this.app.streamSeats.take(who.subject);
    // From here on fastify neither serializes nor ends the reply: the stream owns the socket.
    reply.hijack();
    const stream = new EventStream(reply.raw, opts);
    this.open.add(stream);
    stream.whenClosed(() => {
      this.open.delete(stream);
      release();
    });
    endWhenCredentialEnds(this.ctx, req, who, stream);
    return stream;
  }
}
