// Masks detector matches in a byte stream (terminal output) whose secrets may straddle chunk boundaries.
// It holds back a bounded tail and never emits text that could still become part of a match.
import { StringDecoder } from 'node:string_decoder';
import { PEM_BEGIN, type Span } from './detectors.js';
import { REDACTED } from './styles.js';
import type { Masker } from './values.js';

export interface StreamMaskerOptions {
  /**
   * Characters always held back at the tail (default 4096): longer than any bounded match
   * (emails ≤ 320, cards ≤ 37, IBANs ≤ 42, cloud keys ≤ 270). Unbounded kinds (JWTs, bearer tokens) are
   * safe up to this length; a longer one may be emitted masked before it ends, and the part arriving
   * after that is then masked only if it matches on its own.
   */
  holdBack?: number;
  /**
   * Longest PEM private-key block held whole (default 16384, enough for an 8192-bit RSA key).
   * Beyond it the stream fails closed: one `[masked]` marker, then everything is dropped until the
   * matching END line (or the end of the stream).
   */
  pemLimit?: number;
}

export interface StreamMasker {
  push(chunk: Buffer): Buffer;
  /**
   * Emits what is held back, masked, without ending the stream: for an engine to call when output
   * has paused (a shell prompt waiting for input would otherwise stay held). An open private-key
   * block stays held. The trade-off: a secret cut exactly at the pause is judged in two halves.
   */
  flush(): Buffer;
  end(): Buffer;
  /** Characters currently held back (plus undecoded bytes of a split UTF-8 character). */
  readonly held: number;
  /** Upper bound on `held` after any `push`: max(2 × holdBack, pemLimit). */
  readonly maxHeld: number;
}

export const DEFAULT_HOLD_BACK = 4096;
export const DEFAULT_PEM_LIMIT = 16384;
// Emitted text kept as look-behind context so boundary assertions see what came before.
const CONTEXT = 64;
const PEM_END = /-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----/;

export function createStreamMasker(masker: Masker, options: StreamMaskerOptions = {}): StreamMasker {
  const hold = Math.max(1, options.holdBack ?? DEFAULT_HOLD_BACK);
  const pemLimit = Math.max(hold, options.pemLimit ?? DEFAULT_PEM_LIMIT);
  // Re-scanning the held tail on every tiny chunk would be quadratic-ish; wait for some slack first.
  const slack = Math.min(1024, hold);
  const watchPem = masker.detectors.includes('pem');
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let ctx = '';
  let inPem = false;
  let decoderBytes = 0;

  function openPem(text: string, base: number, spans: readonly Span[]): { at: number; len: number } | null {
    if (!watchPem) return null;
    PEM_BEGIN.lastIndex = base;
    for (let m = PEM_BEGIN.exec(text); m !== null; m = PEM_BEGIN.exec(text)) {
      const at = m.index;
      if (!spans.some((s) => s.detector === 'pem' && s.start <= at && at < s.end))
        return { at, len: m[0].length };
    }
    return null;
  }

  function emit(text: string, base: number, cut: number, spans: readonly Span[]): string {
    const local: Span[] = [];
    for (const s of spans) {
      if (s.end <= base || s.start >= cut) continue;
      local.push({
        start: Math.max(s.start, base) - base,
        end: Math.min(s.end, cut) - base,
        detector: s.detector,
      });
    }
    return masker.applySpans(text.slice(base, cut), local);
  }

  /** `push`: keep the tail; `flush`: emit all but an open key block; `end`: emit everything. */
  function drain(mode: 'push' | 'flush' | 'end'): string {
    const final = mode === 'end';
    let out = '';
    for (;;) {
      if (inPem) {
        const end = PEM_END.exec(pending);
        if (end) {
          pending = pending.slice(end.index + end[0].length);
          inPem = false;
          ctx = '';
          continue;
        }
        // Keep enough to recognise an END line split across chunks; drop the key material.
        pending = final ? '' : pending.slice(-CONTEXT);
        return out;
      }
      if (mode === 'push' && pending.length <= hold + slack) return out;
      const text = ctx + pending;
      const base = ctx.length;
      let spans = masker.spans(text);
      let cut = mode === 'push' ? text.length - hold : text.length;
      const pem = openPem(text, base, spans);
      if (pem && final) {
        // A truncated key block is still a key: mask it to the end.
        spans = [
          ...spans.filter((s) => s.end <= pem.at),
          { start: pem.at, end: text.length, detector: 'pem' },
        ];
      } else if (pem) {
        if (text.length - pem.at > pemLimit) {
          out += emit(text, base, pem.at, spans) + REDACTED;
          pending = text.slice(pem.at + pem.len);
          ctx = '';
          inPem = true;
          continue;
        }
        cut = Math.min(cut, pem.at);
      }
      if (mode === 'push') {
        for (let i = spans.length - 1; i >= 0; i--) {
          const s = spans[i]!;
          if (s.start >= cut || s.end < cut) continue;
          // A match touching the cut may still grow: hold it whole. One too long to hold is emitted
          // masked to its current end; only a continuation beyond that end could then pass unmasked.
          const limit = s.detector === 'pem' ? pemLimit : 2 * hold;
          cut = text.length - s.start <= limit ? s.start : s.end;
        }
        const c = text.charCodeAt(cut - 1);
        if (c >= 0xd800 && c <= 0xdbff) cut--;
      }
      if (cut <= base) return out;
      out += emit(text, base, cut, spans);
      ctx = text.slice(Math.max(0, cut - CONTEXT), cut);
      pending = text.slice(cut);
      return out;
    }
  }

  return {
    push(chunk: Buffer): Buffer {
      pending += decoder.write(chunk);
      decoderBytes = trailingPartial(chunk);
      return Buffer.from(drain('push'), 'utf8');
    },
    flush(): Buffer {
      return Buffer.from(drain('flush'), 'utf8');
    },
    end(): Buffer {
      pending += decoder.end();
      decoderBytes = 0;
      const out = drain('end');
      pending = '';
      ctx = '';
      return Buffer.from(out, 'utf8');
    },
    get held() {
      return pending.length + decoderBytes;
    },
    maxHeld: Math.max(2 * hold, pemLimit),
  };
}

/** Bytes at the end of `chunk` that begin a UTF-8 character not yet complete (0–3). */
function trailingPartial(chunk: Buffer): number {
  for (let back = 1; back <= Math.min(3, chunk.length); back++) {
    const b = chunk[chunk.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}
