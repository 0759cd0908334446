// A server-sent-events stream opened with fetch in a test: every event it received so far, and a
// wait for the next one matching a predicate (bounded, so a missing event fails instead of hanging).
import { type ServerEvent, serverEvents } from '../cli/server-events.js';

export interface EventStreamClient {
  response: Response;
  /** Every event received so far, in order. */
  events: ServerEvent[];
  /** The first event received (from the start) that matches, waiting up to `timeoutMs` for it. */
  waitFor(match: (e: ServerEvent) => boolean, timeoutMs?: number): Promise<ServerEvent>;
  /** Waits until the server ends the stream (failing after `timeoutMs`); the names of all it sent. */
  ended(timeoutMs?: number): Promise<string[]>;
  close(): void;
}

export async function openEventStream(url: string, token: string): Promise<EventStreamClient> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: abort.signal,
  });
  const events: ServerEvent[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  if (response.body) {
    const body = response.body;
    void (async () => {
      try {
        for await (const e of serverEvents(body)) {
          events.push(e);
          for (const w of waiters) w();
        }
      } catch {
        // aborted by close(), or the server went away
      } finally {
        ended = true;
        for (const w of waiters) w();
      }
    })();
  } else {
    ended = true;
  }
  const client: EventStreamClient = {
    response,
    events,
    waitFor(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (found) done(() => resolve(found));
          else if (ended) done(() => reject(new Error(`stream ended; events: ${JSON.stringify(events)}`)));
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(new Error(`no matching event in ${timeoutMs} ms; got ${JSON.stringify(events)}`)),
            ),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async ended(timeoutMs) {
      const never = await client
        .waitFor(() => false, timeoutMs)
        .catch((err: Error) => {
          if (!err.message.startsWith('stream ended')) throw err;
        });
      if (never) throw new Error('an event matched a predicate that matches none');
      return events.map((e) => e.event);
    },
    close: () => abort.abort(),
  };
  return client;
}
