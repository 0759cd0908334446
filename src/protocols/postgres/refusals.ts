// How a refused statement keeps its place in the conversation: it goes to the target as text that
// cannot parse and carries a nonce, and the target's syntax error for it is swapped for Warden's.
import { randomBytes } from 'node:crypto';
import type { Command } from '../../gateway/session.js';
import { errorResponse } from './codec.js';

/** SQLSTATE for a statement Warden refused: insufficient_privilege, like a permission check. */
export const REFUSED = '42501';

/** The message a refused statement's client gets. */
export function refusalText(c: Command): string {
  const d = c.decision;
  const fallback = d.action === 'review' ? 'this statement needs approval' : 'refused by policy';
  return `${d.message ?? fallback} (warden)`;
}

/**
 * The markers sent in place of refused statements, oldest first. The target fails each exactly
 * where the real statement would have run: a transaction block is aborted, an extended-protocol
 * batch is skipped up to Sync, pipelined statements keep their order.
 */
export class Refusals {
  private readonly pending: Array<{ marker: string; error: Buffer }> = [];

  get size(): number {
    return this.pending.length;
  }

  /** A fresh marker for `text`, whose syntax error will be answered with our ErrorResponse instead. */
  add(text: string): string {
    const marker = `warden_refused_${randomBytes(8).toString('hex')}`;
    this.pending.push({ marker, error: errorResponse({ severity: 'ERROR', code: REFUSED, message: text }) });
    return marker;
  }

  /**
   * Our error for the target error whose message names a marker, or undefined when it names none.
   * Markers before it were skipped by the target (an earlier error in the same batch): dropped.
   */
  answer(targetMessage: string): Buffer | undefined {
    const i = this.pending.findIndex((r) => targetMessage.includes(r.marker));
    if (i < 0) return undefined;
    return this.pending.splice(0, i + 1)[i]!.error;
  }
}
