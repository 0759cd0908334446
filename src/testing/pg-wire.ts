// A bare PostgreSQL protocol client for tests: logs in with a password, then writes whatever
// bytes the test wants and collects the replies, so tests can send what no driver would.
import { connect, type Socket } from 'node:net';
import {
  Back,
  Front,
  type Message,
  MessageFramer,
  message,
  PROTOCOL_V3,
} from '../protocols/postgres/codec.js';

export interface RawSession {
  socket: Socket;
  /** What the server sent after the password, up to and including the first ReadyForQuery. */
  startup: Message[];
  /** Resolves with every reply up to and including the first message of `type`. */
  until(type: number): Promise<Message[]>;
  send(bytes: Buffer): boolean;
  /** Resolves when the server closes the connection, with what it sent last. */
  closed: Promise<Message[]>;
}

/** A bare protocol client: startup, password, then whatever the test writes; collects replies. */
export async function rawSession(
  port: number,
  database: string,
  password: string,
  params: Record<string, string> = {},
): Promise<RawSession> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((r) => socket.once('connect', r));
  const framer = new MessageFramer();
  const inbox: Message[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    inbox.push(...framer.push(chunk));
    wake?.();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<Message[]>((resolve) => socket.once('close', () => resolve(inbox.splice(0))));
  let ended = false;
  socket.once('close', () => {
    ended = true;
    wake?.();
  });
  const until = async (type: number): Promise<Message[]> => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(0, i + 1);
      if (ended) throw new Error(`connection closed before a message of type ${String.fromCharCode(type)}`);
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  };
  const fields = Object.entries({ user: 'raw', database, ...params }).flatMap(([k, v]) => [k, v]);
  const body = Buffer.from(`${fields.join('\u0000')}\u0000\u0000`);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length);
  head.writeInt32BE(PROTOCOL_V3, 4);
  socket.write(Buffer.concat([head, body]));
  await until(Back.Authentication);
  socket.write(message(Front.PasswordMessage, password));
  const startup = await until(Back.ReadyForQuery);
  return { socket, startup, until, send: (b: Buffer) => socket.write(b), closed };
}
