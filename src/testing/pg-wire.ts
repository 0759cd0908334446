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
  /** Resolves with every reply up to and including the first message of `type`. */
  until(type: number): Promise<Message[]>;
  send(bytes: Buffer): boolean;
  /** Resolves when the server closes the connection, with what it sent last. */
  closed: Promise<Message[]>;
}

/** A bare protocol client: startup, password, then whatever the test writes; collects replies. */
export async function rawSession(port: number, database: string, password: string): Promise<RawSession> {
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
  const params = Buffer.from(`user\u0000raw\u0000database\u0000${database}\u0000\u0000`);
  const startup = Buffer.alloc(8);
  startup.writeInt32BE(8 + params.length);
  startup.writeInt32BE(PROTOCOL_V3, 4);
  socket.write(Buffer.concat([startup, params]));
  await until(Back.Authentication);
  socket.write(message(Front.PasswordMessage, password));
  await until(Back.ReadyForQuery);
  return { socket, until, send: (b: Buffer) => socket.write(b), closed };
}
