// /api/sessions/:id/recording: a terminal session's recording as asciicast v2, the text
// asciinema-player replays. Visible to whoever may see the session itself.
import { Readable } from 'node:stream';
import { z } from 'zod';
import { ASCIICAST_MEDIA_TYPE } from '../../recording/asciicast.js';
import { TerminalRecordings } from '../../store/terminal-recordings.js';
import { caller } from '../auth.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import { errorBody } from '../schemas.js';
import type { ZodApp } from '../server.js';
import { visibleSession } from '../session-visibility.js';

export function recordingRoutes(app: ZodApp, ctx: ApiContext): void {
  const recordings = new TerminalRecordings(ctx.store);
  app.get(
    '/api/sessions/:id/recording',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sessions'],
        summary: `A terminal session's recording as asciicast v2 (${ASCIICAST_MEDIA_TYPE}); 404 for a session without one, such as a PostgreSQL session (its statements are at /events)`,
        params: z.object({ id: z.string().min(1) }),
        response: {
          200: {
            description: 'The recording, for asciinema-player',
            content: {
              [ASCIICAST_MEDIA_TYPE]: {
                schema: z
                  .string()
                  .describe(
                    'asciicast v2: a JSON header line {version: 2, width, height, timestamp, title?, env?}, then one [seconds, "o"|"i"|"r"|"m", data] line per event',
                  ),
              },
            },
          },
          404: errorBody,
        },
      },
    },
    async (req, reply) => {
      const s = await visibleSession(ctx, caller(req), req.params.id);
      if (!(await recordings.exists(s.id))) throw notFound(`session ${s.id} has no terminal recording`);
      reply.type(ASCIICAST_MEDIA_TYPE);
      // HEAD asks only whether there is one (the console's session page does, to offer a replay).
      if (req.method === 'HEAD') return reply.send('');
      // A stream is sent as it is read, past the (string) response schema's serializer.
      return reply.send(Readable.from(recordings.text(s.id)) as unknown as string);
    },
  );
}
