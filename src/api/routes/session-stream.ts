// GET /api/sessions/:id/stream: one session live, as server-sent events, for the console's session
// page. It reads the store, not this gateway's memory, so it follows sessions carried by any gateway.
import { z } from 'zod';
import { PeriodicCheck } from '../../gateway/periodic-check.js';
import type { SessionEvent } from '../../store/session-events.js';
import type { SessionView } from '../../store/sessions.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { EVENT_STREAM_RESPONSE, type EventStream } from '../event-stream.js';
import type { ZodApp } from '../server.js';
import { visibleSession } from '../session-visibility.js';
import { LiveStreams } from '../stream-guard.js';

/** Statements in the snapshot at most (as GET /api/sessions/:id/events answers by default). */
const SNAPSHOT_EVENTS = 1000;
/**
 * Bytes of statements the snapshot and each poll send at most: a session of large statements or
 * samples arrives over several polls, and a reader that falls behind is waited for, not flooded.
 */
const SEND_BUDGET = 256 * 1024;
/** Statements read per poll: a long backlog drains over several polls instead of one huge read. */
const EVENTS_PER_POLL = 500;
const POLL_MS = 1000;
/**
 * Quiet polls after the session ended before `end`: the recorder writes its last statements a
 * moment after the session is marked ended, longer when its queue is backed up or retrying.
 */
const QUIET_POLLS_TO_END = 5;
/** One statement alone may be larger than the budget; the stream's own bound must still hold it. */
const MAX_UNREAD = 8 * 1024 * 1024;

/** The fields whose change is news to a viewer; the rest of a session never changes. */
const changeOf = (s: SessionView): string =>
  JSON.stringify([s.status, s.ended_at, s.end_reason, s.orphaned_at]);

export function sessionStreamRoute(app: ZodApp, ctx: ApiContext): void {
  const live = new LiveStreams(app, ctx);
  app.get(
    '/api/sessions/:id/stream',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: 'One session live (server-sent events): a snapshot, then each new statement and change',
        description:
          '`event: snapshot` with `{"session": {...}, "events": [...]}` (the session and its first ' +
          'recorded statements, up to 1000 or 256 KiB), then `event: statement` (id: its seq) with ' +
          'every statement after those, as it is recorded, and `event: session` with the session ' +
          'whenever its status, ended_at, end_reason or orphaned_at changes, on any gateway sharing ' +
          'the store (polled each second). Once the session has ended and no statement came for 5 s, ' +
          '`event: end` with `{}` and the stream closes. It also closes, without `end`, when your ' +
          'credential expires or is revoked (a reconnect then says why); at most 20 open streams ' +
          'per caller (429). A `: ping` comment every 15 s. A ' +
          'reconnecting client gets a fresh snapshot (Last-Event-ID is ignored). Someone else’s ' +
          'session answers 404 unless you are an auditor.',
        params: z.object({ id: z.string().min(1) }),
        response: EVENT_STREAM_RESPONSE,
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const session = await visibleSession(ctx, who, req.params.id);
      const events = withinBudget(await ctx.sessionEvents.list(session.id, SNAPSHOT_EVENTS));
      const stream = live.start(req, reply, who, { maxBufferedBytes: MAX_UNREAD });
      stream.send('snapshot', { session, events });
      const follow = new SessionFollower(ctx, stream, session, events.at(-1)?.seq ?? 0);
      const poll = new PeriodicCheck(
        () => follow.poll(),
        POLL_MS,
        (err) =>
          ctx.log.warn(
            { err: err.message, session: session.id },
            'session stream: reading the store failed; retrying',
          ),
      );
      stream.whenClosed(() => poll.stop());
      return reply;
    },
  );
}

/** What one stream has sent of its session, and the poll that sends the rest. */
class SessionFollower {
  private readonly sessionId: string;
  private lastChange: string;
  /** Polls in a row that found the session ended and nothing new. */
  private quietSinceEnd = 0;

  constructor(
    private readonly ctx: ApiContext,
    private readonly stream: EventStream,
    session: SessionView,
    private lastSeq: number,
  ) {
    this.sessionId = session.id;
    this.lastChange = changeOf(session);
  }

  async poll(): Promise<void> {
    // A reader still busy with what was sent is waited for: nothing more piles up behind it.
    if (!this.stream.isOpen || this.stream.unread > SEND_BUDGET) return;
    // The session first: statements recorded before it ended are then in the read that follows.
    const session = await this.ctx.sessions.get(this.sessionId);
    if (!session) return void this.stream.end(); // no longer in the store
    const read = await this.ctx.sessionEvents.list(session.id, EVENTS_PER_POLL, this.lastSeq);
    const events = withinBudget(read);
    for (const e of events) {
      this.lastSeq = e.seq;
      this.stream.send('statement', e, String(e.seq));
    }
    const change = changeOf(session);
    if (change !== this.lastChange) {
      this.lastChange = change;
      this.stream.send('session', session);
    }
    if (session.status === 'active' || read.length > 0) {
      this.quietSinceEnd = 0;
      return;
    }
    if (++this.quietSinceEnd < QUIET_POLLS_TO_END) return;
    this.stream.send('end', {});
    this.stream.end();
  }
}

/** The leading statements that fit SEND_BUDGET bytes, and always at least one (so a huge one passes). */
function withinBudget(events: SessionEvent[]): SessionEvent[] {
  let bytes = 0;
  for (const [i, e] of events.entries()) {
    bytes += JSON.stringify(e).length;
    if (bytes > SEND_BUDGET && i > 0) return events.slice(0, i);
  }
  return events;
}
