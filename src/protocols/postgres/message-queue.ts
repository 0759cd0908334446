// Reads a PostgreSQL connection message by message during a handshake, then steps aside: the
// socket goes to its next owner paused, with the bytes read past the handshake handed over too.
import type net from 'node:net';
import { type Message, MessageFramer } from './codec.js';

/** Messages as they arrive, one at a time; detach() hands back what was not read, raw. */
export class MessageQueue {
  private readonly framer = new MessageFramer();
  private readonly queue: Message[] = [];
  /** The bytes the framer holds back: always a suffix of what it was given. */
  private tail: Buffer = Buffer.alloc(0);
  private failure: Error | null = null;
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void } | null = null;

  /** `lost` makes the error every pending and later next() fails with once the socket errs or closes. */
  constructor(
    private readonly socket: net.Socket,
    private readonly lost: (err: Error | null) => Error,
  ) {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  next(): Promise<Message> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Stops listening and returns the unread bytes; the socket is left paused for its next owner. */
  detach(): Buffer {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    return Buffer.concat([...this.queue.map((m) => Buffer.from(m.raw)), this.tail]);
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.queue.push(...this.framer.push(chunk));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    const held = this.framer.pending;
    this.tail =
      held <= chunk.length
        ? chunk.subarray(chunk.length - held)
        : Buffer.concat([this.tail, chunk]).subarray(-held);
    this.tail = Buffer.from(this.tail); // the chunk may be reused; keep only what we need
    this.wake();
  };

  private readonly onError = (err: Error): void => this.fail(this.lost(err));
  private readonly onClose = (): void => this.fail(this.lost(null));

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const m = this.queue.shift();
    if (m) {
      this.waiter = null;
      w.resolve(m);
    } else if (this.failure) {
      this.waiter = null;
      w.reject(this.failure);
    }
  }
}
