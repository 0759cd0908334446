// Drives one PostgreSQL session after both handshakes: relays messages both ways with
// backpressure, asks the session about every statement (simple Query and extended Parse), and
// answers a refused one with PostgreSQL's own error flow so the connection stays usable.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Command, Session } from '../../gateway/session.js';
import {
  Back,
  errorResponse,
  Front,
  type Message,
  MessageFramer,
  message,
  ProtocolError,
  readNoticeFields,
  readParse,
  readQuery,
} from './codec.js';

export interface EngineOptions {
  maxMessage?: number;
  onClose?: (reason: 'client' | 'target' | 'error' | 'killed', detail?: string) => void;
}

export interface EngineHandle {
  /** Ends the session now: the client gets a FATAL with `message`, the target connection closes. */
  kill(message: string): void;
}

/** SQLSTATE for a statement Warden refused: insufficient_privilege, like a permission check. */
export const REFUSED = '42501';

/**
 * A refused statement is replaced, on its way to the target, by text that cannot parse and
 * carries a nonce. The target then fails it exactly where the real one would have run: a
 * transaction block is aborted, an extended-protocol batch is skipped up to Sync, pipelined
 * statements keep their order. The target's syntax error for the marker is swapped for ours.
 */
function marker(): string {
  return `warden_refused_${randomBytes(8).toString('hex')}`;
}

function refusalText(c: Command): { message: string; hint?: string } {
  const d = c.decision;
  if (d.action === 'review') {
    return {
      message: `${d.message ?? 'this statement needs approval'} (warden)`,
      hint: 'Approval of single statements is not available yet; ask an approver for an exception.',
    };
  }
  return { message: `${d.message ?? 'refused by policy'} (warden)` };
}

export function runEngine(
  client: Socket,
  target: Socket,
  session: Session,
  opts: EngineOptions & { clientRest?: Buffer; targetRest?: Buffer } = {},
): EngineHandle {
  const fromClient = new MessageFramer(opts.maxMessage);
  const fromTarget = new MessageFramer(opts.maxMessage);
  /** Markers sent to the target, oldest first, with the error the client gets instead. */
  const refusals: Array<{ marker: string; error: Buffer }> = [];
  let ended = false;
  /** The client said goodbye (Terminate): whoever's socket closes first, the client ended it. */
  let terminated = false;

  const end = (reason: 'client' | 'target' | 'error' | 'killed', detail?: string) => {
    if (ended) return;
    ended = true;
    if (terminated && reason !== 'error') reason = 'client';
    client.end();
    target.end();
    opts.onClose?.(reason, detail);
  };

  const refuse = (c: Command, rewrite: (text: string) => Buffer): Buffer => {
    const m = marker();
    const { message: text, hint } = refusalText(c);
    refusals.push({
      marker: m,
      error: errorResponse({ severity: 'ERROR', code: REFUSED, message: text, ...(hint ? { hint } : {}) }),
    });
    return rewrite(m);
  };

  /** The client's message as it goes to the target: unchanged, or a refused statement's marker. */
  const outbound = (m: Message): Buffer => {
    if (m.type === Front.Query) {
      const c = session.decide(readQuery(m.body));
      return c.decision.action === 'allow' ? m.raw : refuse(c, (mk) => message(Front.Query, mk));
    }
    if (m.type === Front.Parse) {
      const p = readParse(m.body);
      const c = session.decide(p.text);
      if (c.decision.action === 'allow') return m.raw;
      return refuse(c, (mk) => message(Front.Parse, p.name, mk, Buffer.from([0, 0])));
    }
    if (m.type === Front.FunctionCall) {
      // A function called by OID names neither function nor arguments the policy could judge:
      // refused (fail closed) rather than let it bypass the rules. SELECT the function instead.
      const c = session.refuse(
        '(FunctionCall message)',
        'the FunctionCall message is not supported through Warden; call the function with SELECT',
      );
      return refuse(c, (mk) => message(Front.Query, mk));
    }
    return m.raw;
  };

  /** The target's message as it goes to the client: our error in place of a marker's syntax error. */
  const inbound = (m: Message): Buffer => {
    if (m.type !== Back.ErrorResponse || refusals.length === 0) return m.raw;
    const text = readNoticeFields(m.body).get('M') ?? '';
    const i = refusals.findIndex((r) => text.includes(r.marker));
    if (i < 0) return m.raw;
    // Markers the target skipped (an earlier error in the same batch) will never come back.
    return refusals.splice(0, i + 1)[i]!.error;
  };

  const relay = (
    from: Socket,
    to: Socket,
    framer: MessageFramer,
    map: (m: Message) => Buffer,
    side: 'client' | 'target',
  ) => {
    const onData = (chunk: Buffer) => {
      let messages: Message[];
      const out: Buffer[] = [];
      let changed = false;
      try {
        messages = framer.push(chunk);
        for (const m of messages) {
          const b = map(m);
          if (b !== m.raw) changed = true;
          out.push(b);
          if (side === 'client' && m.type === Front.Terminate) {
            terminated = true;
            break;
          }
        }
      } catch (err) {
        // A malformed message (bad length, a string without its NUL) ends the session with a word.
        if (side === 'client' && err instanceof ProtocolError) {
          client.write(errorResponse({ severity: 'FATAL', code: '08P01', message: err.message }));
        }
        end('error', (err as Error).message);
        return;
      }
      if (messages.length === 0) return;
      // Unchanged messages are contiguous in one buffer: one write, no copy.
      const first = messages[0]!.raw;
      const last = messages[messages.length - 1]!.raw;
      const data = changed
        ? Buffer.concat(out)
        : Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset);
      if (!to.write(data)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    from.on('data', onData);
  };

  relay(client, target, fromClient, outbound, 'client');
  relay(target, client, fromTarget, inbound, 'target');
  client.on('close', () => end('client'));
  target.on('close', () => end('target'));
  client.on('error', (err) => end('error', err.message));
  target.on('error', (err) => end('error', err.message));
  if (opts.targetRest?.length) target.emit('data', opts.targetRest);
  if (opts.clientRest?.length) client.emit('data', opts.clientRest);
  client.resume();
  target.resume();
  return {
    kill(text: string) {
      if (ended) return;
      // What PostgreSQL sends on pg_terminate_backend: admin_shutdown, then the connection ends.
      client.write(errorResponse({ severity: 'FATAL', code: '57P01', message: `${text} (warden)` }));
      end('killed', text);
    },
  };
}
