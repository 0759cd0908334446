// Which statement each result on the wire belongs to: the client's messages queue up what the
// target will answer, in protocol order, and each answer is matched to its command and row shape.
import {
  Back,
  type FieldDescription,
  Front,
  type Message,
  readBind,
  readExecute,
  readParse,
  readRowDescription,
  readTarget,
} from './codec.js';

/** One result the target is producing: rows of one statement (or of one portal, across its Executes). */
export interface Result<C> {
  readonly command: C;
  /** Index of the statement in the command's text (simple queries may hold several). */
  readonly statement: number;
  /** The row shape, when a RowDescription for it was seen; null otherwise. */
  fields: FieldDescription[] | null;
}

/** What a target message means for results. */
export type ResultEvent<C> =
  | { kind: 'fields' | 'row' | 'end' | 'suspended' | 'copy' | 'copy-data' | 'error'; result: Result<C> }
  | { kind: 'other' };

interface Statement<C> {
  command: C;
  fields: FieldDescription[] | null;
}

interface Portal<C> {
  statement: Statement<C>;
  formats: number[];
  result: Result<C>;
  described: boolean;
}

type Expectation<C> =
  | { kind: 'simple'; command: C; statement: number; result: Result<C> | null }
  | { kind: 'close'; target: 'S' | 'P'; name: string }
  // `copy`: the Query or Execute before it, when only Syncs, Flushes and CopyData came between.
  | { kind: 'sync'; copy: Expectation<C> | null }
  // A fast-path FunctionCall: FunctionCallResponse or ErrorResponse, then ReadyForQuery.
  | { kind: 'function'; result: Result<C> }
  // `result`: the statement a Parse or Bind error fails (recorded as that statement's outcome).
  | { kind: 'parse'; result: Result<C>; name: string; statement: Statement<C> }
  // `portal`: the portal as the client's statements named it when it was sent.
  | {
      kind: 'bind';
      result: Result<C> | null;
      name: string;
      statement: string;
      portal: Portal<C> | null;
      formats: number[];
    }
  | { kind: 'describe'; target: 'S' | 'P'; name: string }
  // `sent`: the portal as the client's statements named it; `portal`: the target's, once it answers.
  | { kind: 'execute'; name: string; sent: Portal<C> | null; portal?: Portal<C> | null };

/** The format of field `i` as a Bind's result-format list gives it (none: text; one: all). */
function formatOf(formats: readonly number[], i: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

/**
 * A pure state machine: `sent` for every client message (with the command decided for Query and
 * Parse), `received` for every target message, in order. No I/O, no timers.
 */
export class ResultTracker<C> {
  /** @param touchesPortals whether a command may close or open portals by name (DECLARE, CLOSE, a DO block). */
  constructor(private readonly touchesPortals: (command: C) => boolean = () => true) {}

  private readonly expected: Expectation<C>[] = [];
  /** Statements and portals as the client's messages leave them, for what is known when sending. */
  private readonly statements = new Map<string, Statement<C>>();
  /**
   * Portals the client's Binds made, while nothing can have replaced them with one SQL made: a
   * Query, a FunctionCall or an Execute of a statement that `touchesPortals` (SQL CLOSE then
   * DECLARE of the name) forgets them. A Sync does not: a portal its transaction ends is gone on
   * the target, and only SQL can make another of that name (pgJDBC's fetchSize loop Executes one
   * portal across Syncs, with other statements in between).
   */
  private readonly portals = new Map<string, Portal<C>>();
  /**
   * Statements and portals as the target has them: changed only by its answers. They differ from
   * the client's after a Parse, Bind or Close the target failed or skipped (an error earlier in
   * the batch): a Parse that failed leaves the statement of that name as it was. Results are
   * attributed from these, so rows are never taken for a statement the target did not run.
   */
  private readonly targetStatements = new Map<string, Statement<C>>();
  private readonly targetPortals = new Map<string, Portal<C>>();
  private lastRow: { kind: 'row'; result: Result<C> } | null = null;
  /**
   * The newest Query or Execute while the client has sent only Syncs, Flushes and CopyData after
   * it. Should it start a COPY FROM STDIN, the target reads those Syncs as part of the copy and
   * ignores them (as the protocol says, for clients that send Sync after every Execute): no
   * ReadyForQuery answers them.
   */
  private copyFrom: Expectation<C> | null = null;
  /** Whether the target answered `copyFrom` with CopyInResponse: a Sync the client sends now is ignored. */
  private copyingIn = false;

  /** Expectations not yet answered (for tests and diagnostics). */
  get pending(): number {
    return this.expected.length;
  }

  /** ReadyForQuery messages the target still owes: one per Query, Sync and FunctionCall it will answer. */
  get owed(): number {
    return this.expected.filter((e) => e.kind === 'simple' || e.kind === 'sync' || e.kind === 'function')
      .length;
  }

  /**
   * Whether the client's Parse and Bind messages made portal `name` (not SQL: PREPARE, DECLARE) and
   * nothing since can have replaced it.
   */
  knowsPortal(name: string): boolean {
    return this.portals.has(name);
  }

  /**
   * The command of the Query, Execute or FunctionCall sent last, while it is the newest expectation (null: the
   * last message was something else, or an Execute of a portal this tracker does not know).
   */
  lastCommand(): C | null {
    const e = this.expected[this.expected.length - 1];
    if (e?.kind === 'simple') return e.command;
    if (e?.kind === 'function') return e.result.command;
    return e?.kind === 'execute' && e.sent ? e.sent.statement.command : null;
  }

  /** A handle on the newest expectation, for progress(): take it right after sending a statement. */
  newest(): object | undefined {
    return this.expected[this.expected.length - 1];
  }

  /**
   * Where the statement behind a handle stands: 'running' when no earlier Query or Execute is
   * unanswered (the target runs it, or is about to), 'queued' behind one, 'done' once answered.
   * Scans from the oldest expectation: for a statement being timed, not for every message.
   */
  progress(handle: object): 'running' | 'queued' | 'done' {
    let behind = false;
    for (const e of this.expected) {
      if (e === handle) return behind ? 'queued' : 'running';
      if (e.kind === 'simple' || e.kind === 'execute' || e.kind === 'function') behind = true;
    }
    return 'done';
  }

  /**
   * For a Bind of a known statement, returns the result its portal will produce, and for a
   * FunctionCall with its command, the call's (else null).
   */
  sent(m: Message, command: C | null): Result<C> | null {
    const copyFrom = this.copyFrom;
    if (m.type !== Front.Sync && m.type !== Front.Flush && m.type !== Front.CopyData) {
      this.copyFrom = null;
      this.copyingIn = false;
    }
    switch (m.type) {
      case Front.Query:
        // It may end or replace any portal (a simple query destroys the unnamed one).
        this.portals.clear();
        if (command === null) return null;
        this.expected.push({ kind: 'simple', command, statement: 0, result: null });
        this.copyFrom = this.expected[this.expected.length - 1]!;
        // A simple query destroys the unnamed statement.
        this.statements.delete('');
        return null;
      case Front.Parse: {
        if (command === null) return null;
        const name = readParse(m.body).name;
        const statement: Statement<C> = { command, fields: null };
        this.statements.set(name, statement);
        this.expected.push({
          kind: 'parse',
          result: { command, statement: 0, fields: null },
          name,
          statement,
        });
        return null;
      }
      case Front.Bind: {
        const b = readBind(m.body);
        const statement = this.statements.get(b.statement);
        let portal: Portal<C> | null = null;
        if (statement) {
          const result = { command: statement.command, statement: 0, fields: null };
          portal = { statement, formats: b.resultFormats, result, described: false };
          this.portals.set(b.portal, portal);
        } else this.portals.delete(b.portal);
        this.expected.push({
          kind: 'bind',
          result: portal?.result ?? null,
          name: b.portal,
          statement: b.statement,
          portal,
          formats: b.resultFormats,
        });
        return portal?.result ?? null;
      }
      case Front.Describe: {
        const t = readTarget(m.body);
        this.expected.push({ kind: 'describe', target: t.kind, name: t.name });
        return null;
      }
      case Front.Execute: {
        const name = readExecute(m.body);
        const sent = this.portals.get(name) ?? null;
        if (sent && this.touchesPortals(sent.statement.command)) {
          for (const other of this.portals.keys()) if (other !== name) this.portals.delete(other);
        }
        this.expected.push({ kind: 'execute', name, sent });
        this.copyFrom = this.expected[this.expected.length - 1]!;
        return null;
      }
      case Front.Close: {
        const t = readTarget(m.body);
        (t.kind === 'S' ? this.statements : this.portals).delete(t.name);
        this.expected.push({ kind: 'close', target: t.kind, name: t.name });
        return null;
      }
      case Front.Sync:
        if (!this.copyingIn) this.expected.push({ kind: 'sync', copy: copyFrom });
        return null;
      case Front.FunctionCall: {
        this.portals.clear();
        // Ends with a ReadyForQuery of its own, like a Sync; without a command, only that is tracked.
        if (command === null) {
          this.expected.push({ kind: 'sync', copy: null });
          return null;
        }
        const result: Result<C> = { command, statement: 0, fields: null };
        this.expected.push({ kind: 'function', result });
        return result;
      }
      default:
        return null;
    }
  }

  /** The event of DataRows or CopyData messages received (a RowRun's: they all belong to one result). */
  receivedRows(type: number): ResultEvent<C> {
    const head = this.expected[0];
    if (!head) return { kind: 'other' };
    return this.event(type === Back.CopyData ? 'copy-data' : 'row', head);
  }

  received(m: Message): ResultEvent<C> {
    const head = this.expected[0];
    if (!head) return { kind: 'other' };
    switch (m.type) {
      case Back.ParseComplete:
      case Back.BindComplete:
      case Back.CloseComplete:
        if (head.kind === 'parse' || head.kind === 'bind' || head.kind === 'close') {
          this.done(head);
          this.expected.shift();
        }
        return { kind: 'other' };
      case Back.ParameterDescription:
        return { kind: 'other' };
      case Back.NoData:
        if (head.kind === 'describe') this.expected.shift();
        return { kind: 'other' };
      case Back.RowDescription:
        return this.rowDescription(head, m);
      case Back.DataRow:
        return this.event('row', head);
      case Back.CopyInResponse:
        // The Syncs sent since the COPY's Query or Execute were read by the target as copy data.
        for (let i = this.expected.length - 1; i > 0; i--) {
          const e = this.expected[i]!;
          if (e.kind === 'sync' && e.copy === head) this.expected.splice(i, 1);
        }
        this.copyingIn = head === this.copyFrom;
        return { kind: 'other' };
      case Back.CopyOutResponse:
        return this.event('copy', head);
      case Back.CopyData:
        return this.event('copy-data', head);
      case Back.CommandComplete:
      case Back.EmptyQueryResponse: {
        const ev = this.event('end', head);
        if (head.kind === 'simple') {
          head.statement++;
          head.result = null;
        } else if (head.kind === 'execute') this.expected.shift();
        return ev;
      }
      case Back.FunctionCallResponse:
        return head.kind === 'function' ? { kind: 'end', result: head.result } : { kind: 'other' };
      case Back.PortalSuspended: {
        const ev = this.event('suspended', head);
        if (head.kind === 'execute') this.expected.shift();
        return ev;
      }
      case Back.ErrorResponse: {
        const failed = this.failed(head);
        // The target skips the rest of an extended batch up to Sync; a simple query just ends.
        if (head.kind !== 'simple' && head.kind !== 'function') {
          while (this.expected[0] && this.expected[0].kind !== 'sync') this.expected.shift();
        }
        return failed ? { kind: 'error', result: failed } : { kind: 'other' };
      }
      case Back.ReadyForQuery: {
        const i = this.expected.findIndex(
          (e) => e.kind === 'simple' || e.kind === 'sync' || e.kind === 'function',
        );
        // A simple query destroys the unnamed statement and portal.
        if (this.expected[i]?.kind === 'simple') {
          this.targetStatements.delete('');
          this.targetPortals.delete('');
        }
        this.expected.splice(0, i + 1);
        return { kind: 'other' };
      }
      default:
        return { kind: 'other' };
    }
  }

  /** The result an ErrorResponse ends, when the expectation it answers has one. */
  private failed(head: Expectation<C>): Result<C> | null {
    if (head.kind === 'simple') {
      return head.result ?? { command: head.command, statement: head.statement, fields: null };
    }
    if (head.kind === 'parse' || head.kind === 'bind') return head.result;
    if (head.kind === 'function') return head.result;
    if (head.kind === 'execute') return this.portalOf(head)?.result ?? null;
    return null;
  }

  /** What a Parse, Bind or Close the target completed changes on it. */
  private done(e: Extract<Expectation<C>, { kind: 'parse' | 'bind' | 'close' }>): void {
    if (e.kind === 'parse') this.targetStatements.set(e.name, e.statement);
    else if (e.kind === 'close')
      (e.target === 'S' ? this.targetStatements : this.targetPortals).delete(e.name);
    else {
      const statement = this.targetStatements.get(e.statement);
      if (!statement) this.targetPortals.delete(e.name);
      // The portal as sent, unless the target bound another statement of that name than the client's.
      else if (e.portal?.statement === statement) this.targetPortals.set(e.name, e.portal);
      else {
        const result = { command: statement.command, statement: 0, fields: null };
        this.targetPortals.set(e.name, { statement, formats: e.formats, result, described: false });
      }
    }
  }

  /** The target's portal an Execute runs, looked up when the target answers it. */
  private portalOf(e: Extract<Expectation<C>, { kind: 'execute' }>): Portal<C> | null {
    if (e.portal === undefined) e.portal = this.targetPortals.get(e.name) ?? null;
    return e.portal;
  }

  private rowDescription(head: Expectation<C>, m: Message): ResultEvent<C> {
    if (head.kind === 'describe') {
      const fields = readRowDescription(m.body);
      const statement = head.target === 'S' ? this.targetStatements.get(head.name) : undefined;
      const portal = head.target === 'P' ? this.targetPortals.get(head.name) : undefined;
      if (statement) statement.fields = fields;
      if (portal) {
        portal.result.fields = fields;
        portal.described = true;
      }
      this.expected.shift();
      return { kind: 'other' };
    }
    if (head.kind === 'simple') {
      head.result = { command: head.command, statement: head.statement, fields: readRowDescription(m.body) };
      return { kind: 'fields', result: head.result };
    }
    return { kind: 'other' };
  }

  private event(
    kind: 'row' | 'end' | 'suspended' | 'copy' | 'copy-data',
    head: Expectation<C>,
  ): ResultEvent<C> {
    if (head.kind === 'simple') {
      head.result ??= { command: head.command, statement: head.statement, fields: null };
      return kind === 'row' ? this.rowOf(head.result) : { kind, result: head.result };
    }
    const p = head.kind === 'execute' ? this.portalOf(head) : null;
    if (p) {
      // Without a Describe of the portal, the statement's shape with the formats Bind asked for.
      if (!p.described && p.result.fields === null && p.statement.fields) {
        p.result.fields = p.statement.fields.map((f, i) => ({ ...f, format: formatOf(p.formats, i) }));
      }
      return kind === 'row' ? this.rowOf(p.result) : { kind, result: p.result };
    }
    return { kind: 'other' };
  }

  /** The row event of `result`: one object for all its rows (events are only read), not one per row. */
  private rowOf(result: Result<C>): ResultEvent<C> {
    if (this.lastRow?.result !== result) this.lastRow = { kind: 'row', result };
    return this.lastRow;
  }
}
