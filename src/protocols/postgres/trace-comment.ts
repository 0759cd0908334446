// The sqlcommenter-style comment that carries a session's trace to the database in each statement
// (`tracing.sql_comments`), put before a trailing semicolon so it stays in the statement it names.
// It is spliced into the statement's bytes as the client sent them, whatever its client_encoding.
import { Front, message } from './codec.js';

/** `/*traceparent='…'*\/` for Warden's span of the trace (values are hex and dashes: nothing to escape). */
export function traceComment(traceparent: string): string {
  return `/*traceparent='${traceparent}'*/`;
}

const SEMICOLON = 0x3b;
const NEWLINE = 0x0a;
const isSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/**
 * `text` with the comment added at its end: before a trailing `;`, after a newline if its last
 * line has a `--` comment. Only ASCII bytes are looked at, which mean the same in every server
 * encoding PostgreSQL accepts from clients.
 */
export function withComment(text: Buffer, comment: string): Buffer {
  let at = text.length;
  while (at > 0 && isSpace(text[at - 1]!)) at--;
  if (at > 0 && text[at - 1] === SEMICOLON) at--;
  const lastLine = text.subarray(text.lastIndexOf(NEWLINE, at - 1) + 1, at);
  const gap = lastLine.includes('--') ? '\n' : ' ';
  return Buffer.concat([text.subarray(0, at), Buffer.from(`${gap}${comment}`, 'latin1'), text.subarray(at)]);
}

/** A simple Query message (its body: the text and a NUL) with the comment added. */
export function commentedQuery(body: Buffer, comment: string): Buffer {
  const end = body.indexOf(0);
  return message(Front.Query, withComment(body.subarray(0, end), comment), body.subarray(end));
}

/** A Parse message (name, text, parameter types) with the comment added to its text. */
export function commentedParse(body: Buffer, comment: string): Buffer {
  const textAt = body.indexOf(0) + 1;
  const textEnd = body.indexOf(0, textAt);
  return message(
    Front.Parse,
    body.subarray(0, textAt),
    withComment(body.subarray(textAt, textEnd), comment),
    body.subarray(textEnd),
  );
}
