// Terminal recordings in asciicast v2 (newline-delimited JSON: a header object, then one
// [seconds, code, data] array per event), as asciinema-player replays them. Pure: no I/O.
import { StringDecoder } from 'node:string_decoder';

export const ASCIICAST_MEDIA_TYPE = 'application/x-asciicast';

export interface AsciicastHeader {
  version: 2;
  /** Initial terminal size, in columns and rows. */
  width: number;
  height: number;
  /** Unix time (whole seconds) the recording started. */
  timestamp?: number;
  duration?: number;
  idle_time_limit?: number;
  command?: string;
  title?: string;
  env?: Record<string, string>;
}

/** o: output, i: input (keystrokes), r: resize ("COLSxROWS"), m: marker (a label). */
export type AsciicastCode = 'o' | 'i' | 'r' | 'm';
export type AsciicastEvent = [seconds: number, code: AsciicastCode, data: string];

export interface Asciicast {
  header: AsciicastHeader;
  events: AsciicastEvent[];
}

/** Malformed asciicast text; `line` is 1-based, the header being line 1. */
export class AsciicastError extends Error {
  override name = 'AsciicastError';
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`asciicast line ${line}: ${problem}`);
  }
}

const CODES: ReadonlySet<string> = new Set(['o', 'i', 'r', 'm']);
const positiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

export function formatHeader(header: AsciicastHeader): string {
  return `${JSON.stringify(header)}\n`;
}

export function formatEvent(event: AsciicastEvent): string {
  return `${JSON.stringify(event)}\n`;
}

export function formatAsciicast(cast: Asciicast): string {
  return formatHeader(cast.header) + cast.events.map(formatEvent).join('');
}

/** Parses and validates asciicast v2 text; throws AsciicastError naming the first bad line. */
export function parseAsciicast(text: string): Asciicast {
  const lines = text.split('\n');
  // One trailing newline ends the last line; it does not start an empty one.
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new AsciicastError(1, 'empty: expected a header object');
  const header = parseHeader(lines[0]!);
  const events: AsciicastEvent[] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    const event = parseEvent(lines[i]!, i + 1);
    if (event[0] < last) {
      throw new AsciicastError(i + 1, `time ${event[0]} is before the previous event's ${last}`);
    }
    last = event[0];
    events.push(event);
  }
  return { header, events };
}

function json(line: string, n: number): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    throw new AsciicastError(n, `not JSON (${(err as Error).message})`);
  }
}

function parseHeader(line: string): AsciicastHeader {
  const h = json(line, 1) as Record<string, unknown>;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) {
    throw new AsciicastError(1, 'the header must be a JSON object');
  }
  if (h.version !== 2) throw new AsciicastError(1, `version must be 2, not ${JSON.stringify(h.version)}`);
  for (const key of ['width', 'height'] as const) {
    if (!positiveInt(h[key])) throw new AsciicastError(1, `${key} must be a positive integer`);
  }
  if (h.timestamp !== undefined && !Number.isInteger(h.timestamp)) {
    throw new AsciicastError(1, 'timestamp must be an integer (Unix seconds)');
  }
  for (const key of ['duration', 'idle_time_limit'] as const) {
    if (h[key] !== undefined && typeof h[key] !== 'number')
      throw new AsciicastError(1, `${key} must be a number`);
  }
  for (const key of ['command', 'title'] as const) {
    if (h[key] !== undefined && typeof h[key] !== 'string')
      throw new AsciicastError(1, `${key} must be a string`);
  }
  if (
    h.env !== undefined &&
    (typeof h.env !== 'object' ||
      h.env === null ||
      Array.isArray(h.env) ||
      !Object.values(h.env).every((v) => typeof v === 'string'))
  ) {
    throw new AsciicastError(1, 'env must be an object of strings');
  }
  return h as unknown as AsciicastHeader;
}

function parseEvent(line: string, n: number): AsciicastEvent {
  const e = json(line, n);
  if (!Array.isArray(e) || e.length !== 3) {
    throw new AsciicastError(n, 'an event must be a [time, code, data] array');
  }
  const [time, code, data] = e as unknown[];
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) {
    throw new AsciicastError(n, 'time must be a number of seconds, zero or more');
  }
  if (typeof code !== 'string' || !CODES.has(code)) {
    throw new AsciicastError(n, `code must be one of o, i, r, m, not ${JSON.stringify(code)}`);
  }
  if (typeof data !== 'string') throw new AsciicastError(n, 'data must be a string');
  if (code === 'r' && !/^[1-9]\d*x[1-9]\d*$/.test(data)) {
    throw new AsciicastError(n, `a resize must read COLSxROWS, not ${JSON.stringify(data)}`);
  }
  return [time, code as AsciicastCode, data];
}

export interface AsciicastWriterOptions {
  /** Record keystrokes ("i")? Off by default: what a person types may be a password. */
  recordInput?: boolean;
  /** Bytes of event lines after which the recording stops, with one marker saying so. */
  maxBytes?: number;
  /** Longest data of one event, in UTF-16 units; longer output is split (default 16 Ki). */
  maxEventChars?: number;
}

/**
 * Turns a terminal's byte stream into asciicast events. Bytes are decoded as UTF-8 with a
 * decoder per direction, so a character split across two chunks is carried, not mangled.
 */
export class AsciicastWriter {
  private readonly out = new StringDecoder('utf8');
  private readonly in = new StringDecoder('utf8');
  private last = 0;
  /** Bytes of event lines produced so far (the header not counted). */
  bytes = 0;
  truncated = false;

  constructor(private readonly opts: AsciicastWriterOptions = {}) {}

  /** The time of the latest event, in seconds from the start. */
  get seconds(): number {
    return this.last;
  }

  /** Events for `chunk` of output that arrived `seconds` after the start. */
  output(chunk: Uint8Array, seconds: number): string[] {
    return this.text('o', this.out.write(chunk as Buffer), seconds);
  }

  /** Events for keystrokes; none unless input is recorded. */
  input(chunk: Uint8Array, seconds: number): string[] {
    if (!this.opts.recordInput) return [];
    return this.text('i', this.in.write(chunk as Buffer), seconds);
  }

  resize(width: number, height: number, seconds: number): string[] {
    if (!positiveInt(width) || !positiveInt(height)) {
      throw new RangeError(`terminal size must be positive integers, not ${width}x${height}`);
    }
    return this.emit('r', `${width}x${height}`, seconds);
  }

  marker(label: string, seconds: number): string[] {
    return this.emit('m', label, seconds);
  }

  /** Events for bytes still held by the decoders (an incomplete character ends as U+FFFD). */
  end(seconds: number): string[] {
    const input = this.opts.recordInput ? this.in.end() : '';
    return [...this.text('o', this.out.end(), seconds), ...this.text('i', input, seconds)];
  }

  private text(code: 'o' | 'i', text: string, seconds: number): string[] {
    const max = Math.max(2, this.opts.maxEventChars ?? 16_384);
    const lines: string[] = [];
    for (let at = 0; at < text.length; ) {
      let cut = Math.min(at + max, text.length);
      // Never between the two halves of a surrogate pair.
      if (cut < text.length && /[\uDC00-\uDFFF]/.test(text[cut]!)) cut--;
      lines.push(...this.emit(code, text.slice(at, cut), seconds));
      at = cut;
    }
    return lines;
  }

  private emit(code: AsciicastCode, data: string, seconds: number): string[] {
    if (this.truncated) return [];
    // Times never go backwards, whatever the caller's clock did; microseconds are plenty.
    this.last = Math.max(this.last, Math.round(seconds * 1e6) / 1e6);
    const line = formatEvent([this.last, code, data]);
    const size = Buffer.byteLength(line);
    const max = this.opts.maxBytes;
    if (max !== undefined && this.bytes + size > max) {
      this.truncated = true;
      const note = formatEvent([
        this.last,
        'm',
        `recording truncated: over ${max} bytes, the rest was not kept`,
      ]);
      this.bytes += Buffer.byteLength(note);
      return [note];
    }
    this.bytes += size;
    return [line];
  }
}
