// W3C Trace Context (traceparent) for sessions: a caller's trace is read where its protocol can
// carry one, kept on the session, and continued to the target under a span of Warden's own.
import { randomBytes } from 'node:crypto';

/** version-traceid-parentid-flags; version ff is invalid, all-zero ids are invalid. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export interface TraceContext {
  /** What the caller sent, normalised to lower case. */
  received: string;
  traceId: string;
  /** The span Warden's session is in the trace: what targets are told is their parent. */
  outgoing: string;
}

/**
 * The trace a `traceparent` value names, or undefined when it is not one (a caller's malformed
 * header is ignored, as the W3C recommendation says, not refused).
 */
export function parseTraceparent(value: string | undefined | null): TraceContext | undefined {
  if (!value || value.length > 256) return undefined;
  const v = value.trim().toLowerCase();
  const m = TRACEPARENT.exec(v);
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || /^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  // Version 00 has exactly four fields; later versions may append more, which we don't read.
  if (version === '00' && rest !== undefined) return undefined;
  const received = `${version}-${traceId}-${parentId}-${flags}`;
  const span = randomBytes(8).toString('hex');
  return { received, traceId, outgoing: `00-${traceId}-${span}-${flags}` };
}
