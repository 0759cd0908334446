// The PostgreSQL v3 wire format, as pure functions: a framer that cuts a byte stream into
// messages (keeping the unfinished tail), readers for the few messages Warden inspects, and
// builders for the messages it writes itself. Messages it does not inspect are never decoded.

/** Message type bytes a client sends. */
export enum Front {
  Query = 0x51, // 'Q'
  Parse = 0x50, // 'P'
  Bind = 0x42, // 'B'
  Describe = 0x44, // 'D'
  Execute = 0x45, // 'E'
  Sync = 0x53, // 'S'
  Flush = 0x48, // 'H'
  Close = 0x43, // 'C'
  Terminate = 0x58, // 'X'
  /** Also SASLInitialResponse and SASLResponse: the type is the same, the context tells. */
  PasswordMessage = 0x70, // 'p'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyFail = 0x66, // 'f'
  FunctionCall = 0x46, // 'F'
}

/** Message type bytes a server sends. */
export enum Back {
  Authentication = 0x52, // 'R'
  BackendKeyData = 0x4b, // 'K'
  ParameterStatus = 0x53, // 'S'
  ReadyForQuery = 0x5a, // 'Z'
  RowDescription = 0x54, // 'T'
  DataRow = 0x44, // 'D'
  CommandComplete = 0x43, // 'C'
  EmptyQueryResponse = 0x49, // 'I'
  ErrorResponse = 0x45, // 'E'
  NoticeResponse = 0x4e, // 'N'
  NotificationResponse = 0x41, // 'A'
  ParseComplete = 0x31, // '1'
  BindComplete = 0x32, // '2'
  CopyInResponse = 0x47, // 'G'
  CopyOutResponse = 0x48, // 'H'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  NegotiateProtocolVersion = 0x76, // 'v'
  ParameterDescription = 0x74, // 't'
  NoData = 0x6e, // 'n'
  PortalSuspended = 0x73, // 's'
  CloseComplete = 0x33, // '3'
  FunctionCallResponse = 0x56, // 'V'
}

/** Startup-phase request codes (the int32 after the length of a packet with no type byte). */
export const PROTOCOL_V3 = 196608; // 3.0
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

export const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export interface Message {
  readonly type: number;
  /** The payload after type and length: a view into the received chunk, not a copy. */
  readonly body: Buffer;
  /** The whole message as received (type, length, payload), for forwarding untouched. */
  readonly raw: Buffer;
}

/**
 * A message where it lies in a received chunk. Its views are made on first use only: most
 * messages a gateway relays (result rows) are never looked into, and a view per row is, at a
 * million rows, a large share of the relay's time and garbage.
 */
export class Frame implements Message {
  private rawView: Buffer | undefined;
  private bodyView: Buffer | undefined;

  constructor(
    readonly type: number,
    /** The chunk the message lies in, from `start` to `end`. */
    readonly chunk: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get raw(): Buffer {
    this.rawView ??= this.chunk.subarray(this.start, this.end);
    return this.rawView;
  }

  get body(): Buffer {
    this.bodyView ??= this.chunk.subarray(this.start + 5, this.end);
    return this.bodyView;
  }
}

/** The type of a RowRun: no PostgreSQL message has it (types are one byte). */
export const ROW_RUN = 0x100;

/**
 * DataRows (or CopyData messages) that lie back to back in one chunk, framed as one piece (a framer
 * made with `rowRuns`): a result of a million rows is then some hundreds of runs, each passed whole
 * when nothing needs to read its rows, instead of a Frame and a trip through every stage per row.
 * Its type is no real message's: the stages that look at messages one by one would treat it as an
 * unknown message and pass it unmasked, so the engine takes each run whole or cuts it into rows
 * (`rows()`) before them, and its row-by-row path refuses one.
 */
export class RowRun extends Frame {
  constructor(
    /** Back.DataRow or Back.CopyData: the type of every message in the run. */
    readonly rowType: number,
    chunk: Buffer,
    start: number,
    end: number,
    /** Messages in the run, two or more. */
    readonly count: number,
  ) {
    super(ROW_RUN, chunk, start, end);
  }

  /** The run's messages, each a Frame of the chunk. */
  rows(): Frame[] {
    const rows: Frame[] = [];
    for (let at = this.start; at < this.end; ) {
      const end = this.endOf(at);
      rows.push(new Frame(this.rowType, this.chunk, at, end));
      at = end;
    }
    return rows;
  }

  /** Where the run's message starting at `at` ends (its length was checked when framed). */
  endOf(at: number): number {
    return at + 1 + this.chunk.readInt32BE(at + 1);
  }
}

/**
 * Cuts a stream into typed messages. Messages inside a chunk are views of it; only a message
 * split across chunks is copied, once, when its last byte arrives (its parts are held until
 * then), so memory is bounded by the largest message, which is capped.
 */
export class MessageFramer {
  /** Parts of a message split across chunks (copies: the chunks are not ours to keep). */
  private parts: Buffer[] = [];
  private held = 0;

  constructor(
    private readonly maxMessage = DEFAULT_MAX_MESSAGE,
    /** Whether DataRows (CopyData) back to back in a chunk come out as one RowRun (the target's side). */
    private readonly rowRuns = false,
  ) {}

  /** Complete messages in `chunk` (plus what was held back); throws ProtocolError on a bad length. */
  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    let at = 0;
    if (this.held > 0) {
      at = this.finishHeld(chunk, out);
      if (at < 0) return out;
    }
    /** Where the rows of one type seen since the last other message start, and how many there are. */
    let rowsFrom = -1;
    let rows = 0;
    let rowType = 0;
    while (chunk.length - at >= 5) {
      const total = this.lengthAt(chunk, at) + 1;
      if (chunk.length - at < total) break;
      const type = chunk[at]!;
      if (type !== rowType && rows > 0) {
        out.push(rowsOf(rowType, chunk, rowsFrom, at, rows));
        rows = 0;
      }
      if ((type === Back.DataRow || type === Back.CopyData) && this.rowRuns) {
        if (rows++ === 0) {
          rowsFrom = at;
          rowType = type;
        }
      } else out.push(new Frame(type, chunk, at, at + total));
      at += total;
    }
    if (rows > 0) out.push(rowsOf(rowType, chunk, rowsFrom, at, rows));
    if (at < chunk.length) this.hold(chunk.subarray(at));
    return out;
  }

  /** Bytes held for an unfinished message. */
  get pending(): number {
    return this.held;
  }

  /**
   * Completes the held message with the start of `chunk`: returns where the rest of the chunk
   * begins, or -1 when the whole chunk went to the held message and it is still unfinished.
   */
  private finishHeld(chunk: Buffer, out: Frame[]): number {
    let at = 0;
    if (this.held < 5) {
      // Not even the length yet: gather the 5-byte header first (a few bytes at most).
      at = Math.min(5 - this.held, chunk.length);
      this.hold(chunk.subarray(0, at));
      if (this.held < 5) return -1;
    }
    const head = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held);
    this.parts = [head];
    const total = this.lengthAt(head, 0) + 1;
    const missing = total - this.held;
    if (chunk.length - at < missing) {
      this.hold(chunk.subarray(at));
      return -1;
    }
    this.hold(chunk.subarray(at, at + missing));
    const whole = Buffer.concat(this.parts, this.held);
    this.parts = [];
    this.held = 0;
    out.push(new Frame(whole[0]!, whole, 0, total));
    return at + missing;
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.parts.push(Buffer.from(bytes));
    this.held += bytes.length;
  }

  private lengthAt(buf: Buffer, at: number): number {
    const len = buf.readInt32BE(at + 1);
    if (len < 4 || len > this.maxMessage) {
      throw new ProtocolError(
        `invalid message length ${len} for message type ${JSON.stringify(String.fromCharCode(buf[at]!))}`,
      );
    }
    return len;
  }
}

/** One row as a Frame, more as a RowRun. */
const rowsOf = (type: number, chunk: Buffer, start: number, end: number, count: number): Frame =>
  count === 1 ? new Frame(type, chunk, start, end) : new RowRun(type, chunk, start, end, count);

/** A cursor over a message body; every read checks bounds and throws ProtocolError past the end. */
export class Reader {
  private at = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.at;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.at);
    this.at += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.at);
    this.at += 4;
    return v;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.at);
    if (end < 0) throw new ProtocolError('string without its terminating NUL');
    const s = this.buf.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolError(`negative length ${n}`);
    this.need(n);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw new ProtocolError('message ends early');
  }
}

// ---- builders -------------------------------------------------------------------------------

/** A typed message from its payload parts (strings are written NUL-terminated). */
export function message(type: number, ...parts: Array<Buffer | string | Int32 | Int16>): Buffer {
  const bufs = parts.map((p) => {
    if (typeof p === 'string') return Buffer.from(`${p}\u0000`, 'utf8');
    if (Buffer.isBuffer(p)) return p;
    const b = Buffer.alloc(p.size);
    if (p.size === 4) b.writeInt32BE(p.value);
    else b.writeInt16BE(p.value);
    return b;
  });
  const len = bufs.reduce((n, b) => n + b.length, 4);
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeInt32BE(len, 1);
  return Buffer.concat([head, ...bufs]);
}

export interface Int32 {
  size: 4;
  value: number;
}
export interface Int16 {
  size: 2;
  value: number;
}
export const int32 = (value: number): Int32 => ({ size: 4, value });
export const int16 = (value: number): Int16 => ({ size: 2, value });

/** A big-endian int32 written at `b[at]` byte by byte: for hot paths, where Buffer#writeInt32BE checks its range on every call. */
export function int32Into(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 24;
  b[at + 1] = (value >>> 16) & 0xff;
  b[at + 2] = (value >>> 8) & 0xff;
  b[at + 3] = value & 0xff;
}

/** Fields of an ErrorResponse or NoticeResponse, by their one-letter codes. */
export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  /** SQLSTATE, five characters. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** The names an error is about: schema `s`, table `t`, column `c`, data type `d`, constraint `n`. */
  names?: ReadonlyArray<[code: 's' | 't' | 'c' | 'd' | 'n', name: string]>;
}

function noticeFields(f: ErrorFields): Buffer[] {
  const parts: Array<[string, string | undefined]> = [
    ['S', f.severity],
    ['V', f.severity],
    ['C', f.code],
    ['M', f.message],
    ['D', f.detail],
    ['H', f.hint],
    ...(f.names ?? []),
  ];
  const out = parts.flatMap(([k, v]) => (v === undefined ? [] : [Buffer.from(`${k}${v}\u0000`, 'utf8')]));
  return [...out, Buffer.from([0])];
}

export const errorResponse = (f: ErrorFields): Buffer => message(Back.ErrorResponse, ...noticeFields(f));
export const noticeResponse = (f: ErrorFields): Buffer => message(Back.NoticeResponse, ...noticeFields(f));
export const authenticationOk = (): Buffer => message(Back.Authentication, int32(0));
export const authenticationCleartextPassword = (): Buffer => message(Back.Authentication, int32(3));
export const parameterStatus = (name: string, value: string): Buffer =>
  message(Back.ParameterStatus, name, value);
export const backendKeyData = (pid: number, secret: number): Buffer =>
  message(Back.BackendKeyData, int32(pid), int32(secret));
/** `I` idle, `T` in a transaction, `E` in a failed transaction. */
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer =>
  message(Back.ReadyForQuery, Buffer.from(status, 'latin1'));

/** The newest protocol version the server speaks (a full version number) and the options it ignored. */
export const negotiateProtocolVersion = (newest: number, unrecognized: string[]): Buffer =>
  message(Back.NegotiateProtocolVersion, int32(newest), int32(unrecognized.length), ...unrecognized);

/** A StartupMessage's name/value pairs (the payload after length and version), ended by an empty name. */
export function readStartupParams(payload: Buffer): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const r = new Reader(payload);
  try {
    for (let name = r.cstring(); name !== ''; name = r.cstring()) pairs.push([name, r.cstring()]);
  } catch {
    // PostgreSQL's wording, whichever string ran off the end.
    throw new ProtocolError('invalid startup packet layout: expected terminator as last byte');
  }
  if (r.remaining !== 0)
    throw new ProtocolError('invalid startup packet layout: expected terminator as last byte');
  return pairs;
}

/** Reads the fields of an ErrorResponse or NoticeResponse body into a map keyed by field code. */
export function readNoticeFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  const r = new Reader(body);
  while (r.remaining > 0) {
    const code = r.bytes(1)[0]!;
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring());
  }
  return fields;
}

/** The SQL text of a simple Query message. */
export const readQuery = (body: Buffer): string => new Reader(body).cstring();

/** A Parse message: statement name, SQL text and declared parameter type OIDs. */
export function readParse(body: Buffer): { name: string; text: string; paramTypes: number[] } {
  const r = new Reader(body);
  const name = r.cstring();
  const text = r.cstring();
  const n = r.int16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.int32());
  return { name, text, paramTypes };
}

/** A Bind message, without its parameter values: which portal, from which statement, in which result formats. */
export function readBind(body: Buffer): { portal: string; statement: string; resultFormats: number[] } {
  const r = new Reader(body);
  const portal = r.cstring();
  const statement = r.cstring();
  const nf = r.int16();
  for (let i = 0; i < nf; i++) r.int16();
  const np = r.int16();
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    if (len > 0) r.bytes(len);
  }
  const nr = r.int16();
  const resultFormats: number[] = [];
  for (let i = 0; i < nr; i++) resultFormats.push(r.int16());
  return { portal, statement, resultFormats };
}

/** A Bind's parameter values with the format of each (0 text, 1 binary); null is SQL NULL. */
export function readBindParams(body: Buffer): Array<{ format: number; value: Buffer | null }> {
  const r = new Reader(body);
  r.cstring();
  r.cstring();
  const formats: number[] = [];
  const nf = r.int16();
  for (let i = 0; i < nf; i++) formats.push(r.int16());
  const np = r.int16();
  const out: Array<{ format: number; value: Buffer | null }> = [];
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
    out.push({ format, value: len < 0 ? null : r.bytes(len) });
  }
  return out;
}

/** A fast-path FunctionCall: the function's OID and its arguments with the format of each. */
export function readFunctionCall(body: Buffer): {
  oid: number;
  args: Array<{ format: number; value: Buffer | null }>;
} {
  const r = new Reader(body);
  const oid = r.int32() >>> 0;
  const formats: number[] = [];
  const nf = r.int16();
  for (let i = 0; i < nf; i++) formats.push(r.int16());
  const na = r.int16();
  const args: Array<{ format: number; value: Buffer | null }> = [];
  for (let i = 0; i < na; i++) {
    const len = r.int32();
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
    args.push({ format, value: len < 0 ? null : r.bytes(len) });
  }
  return { oid, args };
}

/** Describe or Close: `S` for a prepared statement or `P` for a portal, and its name. */
export function readTarget(body: Buffer): { kind: 'S' | 'P'; name: string } {
  const r = new Reader(body);
  const kind = String.fromCharCode(r.bytes(1)[0]!);
  if (kind !== 'S' && kind !== 'P')
    throw new ProtocolError(`invalid describe/close target ${JSON.stringify(kind)}`);
  return { kind, name: r.cstring() };
}

/** The portal an Execute runs. */
export const readExecute = (body: Buffer): string => new Reader(body).cstring();

/** One field of a RowDescription. */
export interface FieldDescription {
  name: string;
  /** OID of the table the column comes from; 0 for an expression. */
  tableOid: number;
  column: number;
  typeOid: number;
  /** 0 text, 1 binary (always 0 in the answer to a Describe of a statement). */
  format: number;
}

export function readRowDescription(body: Buffer): FieldDescription[] {
  const r = new Reader(body);
  const n = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableOid = r.int32() >>> 0;
    const column = r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16(); // type size
    r.int32(); // type modifier
    fields.push({ name, tableOid, column, typeOid, format: r.int16() });
  }
  return fields;
}

/** A DataRow's values as views into the message (null for SQL NULL). */
export function readDataRow(body: Buffer): Array<Buffer | null> {
  const r = new Reader(body);
  const n = r.int16();
  const values: Array<Buffer | null> = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    values.push(len < 0 ? null : r.bytes(len));
  }
  return values;
}

export function dataRow(values: ReadonlyArray<Buffer | null>): Buffer {
  const parts: Array<Buffer | Int32 | Int16> = [int16(values.length)];
  for (const v of values) parts.push(...(v === null ? [int32(-1)] : [int32(v.length), v]));
  return message(Back.DataRow, ...parts);
}

/** CopyOutResponse: overall format (0 text, 1 binary) and each column's. */
export function readCopyResponse(body: Buffer): { format: number; columns: number[] } {
  const r = new Reader(body);
  const format = r.bytes(1)[0]!;
  const n = r.int16();
  const columns: number[] = [];
  for (let i = 0; i < n; i++) columns.push(r.int16());
  return { format, columns };
}

/** The command tag of a CommandComplete (`SELECT 5`, `INSERT 0 1`). */
export const readCommandTag = (body: Buffer): string => new Reader(body).cstring();
