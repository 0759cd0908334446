// A server-sent-events response (text/event-stream) written straight to the socket of a
// hijacked fastify reply: frames, a comment heartbeat, and a bound on what an idle reader costs.
import type { ServerResponse } from 'node:http';
import { z } from 'zod';

/** The OpenAPI answer of a streaming route: text/event-stream, described in its own words. */
export const EVENT_STREAM_RESPONSE = {
  200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string() } } },
};

export interface EventStreamOptions {
  /** A `: ping` comment this often keeps proxies and load balancers from closing an idle stream. */
  heartbeatMs?: number;
  /** A client that leaves more than this unread is cut off: a stream must not grow without bound. */
  maxBufferedBytes?: number;
}

export class EventStream {
  private readonly heartbeat: NodeJS.Timeout;
  private readonly maxBuffered: number;
  private closed = false;
  private readonly onEnd: Array<() => void> = [];

  constructor(
    private readonly res: ServerResponse,
    opts: EventStreamOptions = {},
  ) {
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // nginx and its kin buffer responses by default; an event stream must pass through at once.
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    this.heartbeat = setInterval(() => this.write(': ping\n\n'), opts.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
    res.on('close', () => this.finish());
    // The client may have left while the snapshot was read: its 'close' has been and gone.
    if (res.destroyed || !res.socket || res.socket.destroyed) this.finish();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Bytes written but not yet taken by the client: a producer that can wait should, above a bound. */
  get unread(): number {
    return this.res.writableLength;
  }

  /** Runs `fn` once when the stream ends, whoever ends it (the client, the bound, the server). */
  whenClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.onEnd.push(fn);
  }

  /** One event; `data` is sent as one JSON line (JSON never holds a raw newline). */
  send(event: string, data: unknown, id?: string): void {
    const head = id === undefined ? '' : `id: ${id.replace(/[\r\n]/g, '')}\n`;
    this.write(`${head}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream; the client's EventSource would reconnect, and gets a fresh snapshot. */
  end(): void {
    if (this.closed) return;
    this.res.end();
    this.finish();
  }

  private write(frame: string): void {
    if (this.closed) return;
    this.res.write(frame);
    // write() returning false is ordinary back-pressure; a reader that stays that far behind is gone.
    if (this.res.writableLength > this.maxBuffered) {
      this.res.destroy();
      this.finish();
    }
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const fn of this.onEnd.splice(0)) fn();
  }
}
