// The sqlcommenter-style comment that carries a session's trace to the database in each statement
// (`tracing.sql_comments`), put before a trailing semicolon so it stays in the statement it names.
import { Front, message } from './codec.js';

/** `/*traceparent='…'*\/` for Warden's span of the trace (values are hex and dashes: nothing to escape). */
export function traceComment(traceparent: string): string {
  return `/*traceparent='${traceparent}'*/`;
}

/** `text` with the comment added at its end: before a trailing `;`, after a newline if it ends in a `--` comment. */
export function withComment(text: string, comment: string): string {
  const tail = /;?\s*$/.exec(text);
  const at = tail ? tail.index : text.length;
  const body = text.slice(0, at);
  const lastLine = body.slice(body.lastIndexOf('\n') + 1);
  const gap = lastLine.includes('--') ? '\n' : ' ';
  return `${body}${gap}${comment}${text.slice(at)}`;
}

/** A simple Query message for `text` with the comment added. */
export function commentedQuery(text: string, comment: string): Buffer {
  return message(Front.Query, withComment(text, comment));
}

/** A Parse message with the comment added to its statement text, name and parameter types kept. */
export function commentedParse(body: Buffer, p: { name: string; text: string }, comment: string): Buffer {
  const typesAt = Buffer.byteLength(p.name) + 1 + Buffer.byteLength(p.text) + 1;
  return message(Front.Parse, p.name, withComment(p.text, comment), body.subarray(typesAt));
}
