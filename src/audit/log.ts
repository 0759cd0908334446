// The audit appender: events are queued, written in batches inside one serialized
// transaction (so several gateways sharing a store still produce one unbroken chain), and
// retried, whatever the store's error, until written. Events are validated and encoded when
// queued, so a failing write is always the store's problem, never a poison event; an event is
// only refused when the bounded queue is full, and then the caller is told.
//
// Events nobody waits for (one per statement through a gateway) are gathered for a few
// milliseconds and written together: one transaction per batch, not per statement. An event a
// caller awaits is written at once, with whatever else is queued, unless the caller lets it wait
// for the next batch. A row change that belongs with an event is written in its transaction.
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { CompiledQuery, type Selectable } from 'kysely';
import { canonicalJson } from '../crypto/canonical.js';
import { timeOrderedId } from '../crypto/ids.js';
import { isUnavailable, type Store, StoreUnavailableError, type Tx } from '../store/store.js';
import type { AuditLogTable } from '../store/tables.js';
import { WriteScheduler } from '../store/write-scheduler.js';
import { isoTime } from '../time.js';
import {
  type AuditActor,
  type AuditEvent,
  type AuditOutcome,
  type AuditRecord,
  GENESIS_HASH,
  hashEncodedRecord,
} from './record.js';
import { recordFromRow } from './rows.js';

interface Pending {
  id: string;
  time: string;
  type: string;
  target: string | null;
  outcome: AuditOutcome;
  /** Canonical JSON of actor and payload, made once when queued, hashed and stored as is. */
  actorJson: string;
  payloadJson: string;
  /** Set when a caller awaits the written record. */
  waiter?: { resolve: (r: AuditRecord) => void; reject: (err: Error) => void };
  /** Replayed from the spool: it may already be in the store. */
  replayed?: boolean;
  alongside?: RowWrite;
  /** Its waiter does not hurry the write: it goes with the next batch. */
  batched?: boolean;
}

/** How append() writes an event. */
export interface AppendOptions {
  /** A row change written in the event's transaction (see RowWrite). */
  alongside?: RowWrite;
  /**
   * Written with the next batch (within `batchDelayMs`) instead of at once: for a caller that
   * wants to know the event is written but need not hold anything up for it.
   */
  batched?: boolean;
}

/**
 * A row change that belongs with an event (a session's row with its `session.opened` or
 * `session.closed`): written in the event's transaction, so both land or neither, retried and
 * spooled with it, and without a commit of its own. SQL and parameters in the store's dialect
 * (Kysely's compile()), so that it needs no builder to run and survives a restart in the spool.
 */
export interface RowWrite {
  sql: string;
  parameters: readonly unknown[];
}

/** A batch's new links (or records found already written), and the tail they continue. */
interface Written {
  links: Array<Link | AuditRecord>;
  tail: { seq: number; hash: string };
  replayed: boolean;
}

/** Most hashes kept for `vouches` (a run this long without a checkpoint starts over). */
const MAX_OWN = 1_000_000;

/** Where a new record went in the chain. */
interface Link {
  seq: number;
  prev_hash: string;
  hash: string;
}

/** An event as kept in the spool file between a shutdown and the next start. */
interface SpooledEvent {
  id: string;
  time: string;
  event: AuditEvent & { actor: AuditActor; payload: Record<string, unknown> };
  alongside?: RowWrite;
}

export interface AuditLogOptions {
  /** Most events held in memory while the store is unreachable. */
  maxQueue?: number;
  maxBatch?: number;
  /** How long events nobody waits for are gathered before a write (default 10 ms; 0: at once). */
  batchDelayMs?: number;
  onWritten?: (written: { count: number; lastSeq: number }) => void;
  onError?: (err: Error, queued: number) => void;
  /**
   * Where events still unwritten at close() are kept (JSON lines, mode 0600, outside the
   * store) so that the next start writes them: a shutdown while the store is down loses nothing.
   */
  spoolFile?: string;
}

export class AuditQueueFullError extends Error {
  override name = 'AuditQueueFullError';
}

const INSERT_COLUMNS =
  'seq, event_id, time, type, actor_json, target, outcome, payload_json, prev_hash, hash';

export class AuditLog {
  private queue: Pending[] = [];
  // Deliberately keeping the process up during a retry: while events wait to be written it stays
  // (close() gives up after its drain timeout and says which events were not written).
  private readonly writes: WriteScheduler;
  private closed = false;
  /** seq → hash of the unbroken run of records this log appended (see `vouches`). */
  private own = new Map<number, string>();
  /** Canonical JSON of actors that cannot change (frozen), so a session's is encoded once. */
  private readonly actorJson = new WeakMap<object, string>();
  /** Set while the last write failed: the store is not accepting audit events. */
  lastError: Error | undefined;

  constructor(
    private readonly store: Store,
    private readonly opts: AuditLogOptions = {},
  ) {
    this.writes = new WriteScheduler({
      write: () => this.flushLoop(),
      queued: () => this.queue.length,
      maxBatch: this.maxBatch,
      delayMs: opts.batchDelayMs ?? 10,
      urgent: () => this.queue.some((p) => p.waiter && !p.batched),
      unrefRetry: false,
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  private get maxBatch(): number {
    return this.opts.maxBatch ?? 500;
  }

  /**
   * Appends and resolves with the written record (its seq and hash). When the write fails the
   * caller hears so, and the event (with its `alongside` row change) stays queued, to be written
   * once the store takes it.
   */
  append(event: AuditEvent, opts: AppendOptions = {}): Promise<AuditRecord> {
    return new Promise<AuditRecord>((resolve, reject) => {
      const problem = this.enqueue(event, { resolve, reject }, opts);
      if (problem) reject(problem);
    });
  }

  /**
   * Appends without waiting; the event is retried until written. Never throws: an event that
   * cannot be encoded, or arrives while the queue is full, is reported to `onError` instead.
   */
  record(event: AuditEvent): void {
    const problem = this.enqueue(event, undefined, {});
    if (problem && !this.closed) this.opts.onError?.(problem, this.queue.length);
  }

  private enqueue(event: AuditEvent, waiter: Pending['waiter'], opts: AppendOptions): Error | undefined {
    if (this.closed) return new Error('audit log is closed');
    if (this.queue.length >= (this.opts.maxQueue ?? 100_000)) {
      return new AuditQueueFullError('audit queue is full: the store has not accepted events for too long');
    }
    let actorJson: string;
    let payloadJson: string;
    try {
      // Encoded now: the hashed bytes are exactly what is stored and read back, and an event
      // that cannot be encoded is refused to its caller instead of wedging the queue.
      actorJson = this.encodeActor(event.actor);
      payloadJson = canonicalJson(event.payload ?? {});
    } catch (err) {
      return new TypeError(`audit event ${event.type} cannot be encoded: ${(err as Error).message}`);
    }
    const now = Date.now();
    const pending: Pending = {
      id: timeOrderedId(now),
      time: isoTime(now),
      type: event.type,
      target: event.target ?? null,
      outcome: event.outcome,
      actorJson,
      payloadJson,
    };
    if (waiter) pending.waiter = waiter;
    if (opts.alongside) pending.alongside = storable(opts.alongside);
    if (opts.batched) pending.batched = true;
    this.queue.push(pending);
    this.writes.kick(waiter !== undefined && !opts.batched);
    return undefined;
  }

  private encodeActor(actor: AuditActor): string {
    const frozen = Object.isFrozen(actor);
    const known = frozen ? this.actorJson.get(actor) : undefined;
    if (known !== undefined) return known;
    const json = canonicalJson({ ...actor, chain: actor.chain ?? [] });
    if (frozen) this.actorJson.set(actor, json);
    return json;
  }

  /** Writes batches until the queue is empty (true) or the store refuses one (false: retried). */
  private async flushLoop(): Promise<boolean> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      let written: Written;
      try {
        written = this.store.embedded
          ? await this.store.writeSync((sql) => this.writeEmbedded(sql, batch))
          : await this.store.serialized((tx) => this.write(tx, batch));
      } catch (err) {
        const error = err as Error;
        this.lastError = error;
        this.opts.onError?.(error, this.queue.length);
        // Keep every event (too many clients, a cancelled query, a full disk and a dropped
        // connection all pass); tell waiting callers now, so their request fails, and retry.
        for (const p of batch) {
          if (p.waiter) {
            const why = isUnavailable(error) ? 'unavailable' : 'refusing writes';
            p.waiter.reject(new StoreUnavailableError(`audit store ${why}: ${error.message}`));
            delete p.waiter;
          }
        }
        return false;
      }
      this.queue.splice(0, batch.length);
      this.lastError = undefined;
      const { links } = written;
      this.remember(written);
      let lastSeq = 0;
      for (const [i, p] of batch.entries()) {
        const link = links[i]!;
        lastSeq = Math.max(lastSeq, link.seq);
        if (!p.waiter) continue;
        p.waiter.resolve('id' in link ? link : toRecord(p, link));
      }
      this.opts.onWritten?.({ count: batch.length, lastSeq });
    }
    return true;
  }

  /**
   * After a failure the previous attempt may have committed without us hearing back: events
   * already in the store are answered from it (as records), not written again.
   */
  private mayBeWritten(batch: readonly Pending[]): boolean {
    return this.lastError !== undefined || batch.some((p) => p.replayed);
  }

  /** The embedded store: prepared statements, synchronously inside one transaction. */
  private writeEmbedded(
    sql: Parameters<Parameters<Store['writeSync']>[0]>[0],
    batch: readonly Pending[],
  ): Written {
    const done = new Map<string, AuditRecord>();
    if (this.mayBeWritten(batch)) {
      const find = sql('select * from audit_log where event_id = ?');
      for (const p of batch) {
        const row = find.get(p.id) as Selectable<AuditLogTable> | undefined;
        if (row) done.set(p.id, recordFromRow(row));
      }
    }
    const tail = sql('select seq, hash from audit_log order by seq desc limit 1').get() as
      | { seq: number; hash: string }
      | undefined;
    const from = tail ?? { seq: 0, hash: GENESIS_HASH };
    const links = chain(batch, done, from);
    const insert = sql(`insert into audit_log (${INSERT_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    for (const [i, p] of batch.entries()) {
      const l = links[i]!;
      if ('id' in l) continue;
      if (p.alongside) sql(p.alongside.sql).run(...p.alongside.parameters);
      insert.run(
        l.seq,
        p.id,
        p.time,
        p.type,
        p.actorJson,
        p.target,
        p.outcome,
        p.payloadJson,
        l.prev_hash,
        l.hash,
      );
    }
    return { links, tail: from, replayed: done.size > 0 };
  }

  /** A shared (PostgreSQL) store, inside its advisory-locked transaction. */
  private async write(tx: Tx, batch: readonly Pending[]): Promise<Written> {
    const done = new Map<string, AuditRecord>();
    if (this.mayBeWritten(batch)) {
      const rows = await tx
        .selectFrom('audit_log')
        .selectAll()
        .where(
          'event_id',
          'in',
          batch.map((p) => p.id),
        )
        .execute();
      for (const row of rows) done.set(row.event_id, recordFromRow(row));
    }
    const tail = await tx
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const from = tail ? { seq: Number(tail.seq), hash: tail.hash } : { seq: 0, hash: GENESIS_HASH };
    const links = chain(batch, done, from);
    const rows = batch.flatMap((p, i) => {
      const l = links[i]!;
      if ('id' in l) return [];
      return [
        {
          seq: l.seq,
          event_id: p.id,
          time: p.time,
          type: p.type,
          actor_json: p.actorJson,
          target: p.target,
          outcome: p.outcome,
          payload_json: p.payloadJson,
          prev_hash: l.prev_hash,
          hash: l.hash,
        },
      ];
    });
    for (const [i, p] of batch.entries()) {
      if (p.alongside && !('id' in links[i]!)) {
        await tx.executeQuery(CompiledQuery.raw(p.alongside.sql, [...p.alongside.parameters]));
      }
    }
    for (let i = 0; i < rows.length; i += 100) {
      await tx
        .insertInto('audit_log')
        .values(rows.slice(i, i + 100))
        .execute();
    }
    return { links, tail: from, replayed: done.size > 0 };
  }

  /**
   * Keeps the hashes of the unbroken run of records this log appended, starting at the tail it
   * first linked to: a batch that links to anything else (another gateway wrote in between, or a
   * row was changed under us) starts a new run.
   */
  private remember(w: Written): void {
    if (this.own.get(w.tail.seq) !== w.tail.hash || this.own.size > MAX_OWN) {
      this.own = new Map([[w.tail.seq, w.tail.hash]]);
    }
    for (const l of w.links) if (!('id' in l)) this.own.set(l.seq, l.hash);
    // Records a lost acknowledgement left written were hashed by an earlier attempt: not vouched.
    if (w.replayed) this.own = new Map();
  }

  /**
   * Whether every record after `from` up to `to` was appended by this log in one unbroken run,
   * with exactly these hashes: then a checkpoint from `from` to `to` signs only what this gateway
   * hashed itself, and the store need not be read back to know the trail extends `from`.
   * Forgets the run before `from` (checkpoints only move forward).
   */
  vouches(from: { seq: number; hash: string }, to: { seq: number; hash: string }): boolean {
    if (this.own.get(from.seq) !== from.hash || this.own.get(to.seq) !== to.hash) return false;
    for (const seq of this.own.keys()) {
      if (seq >= from.seq) break;
      this.own.delete(seq);
    }
    return true;
  }

  /** Waits until everything queued so far is written (or the store refuses it). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      await this.writes.flush();
      if (this.queue.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Writes what is still queued after a last attempt to the spool file (when configured) and
   * stops. Returns how many events were spooled; without a spool file they are reported lost.
   */
  async close(drainMs = 10_000): Promise<{ spooled: number; lost: number }> {
    await this.drain(drainMs);
    this.closed = true;
    this.writes.stop();
    const left = this.queue;
    this.queue = [];
    if (left.length === 0) return { spooled: 0, lost: 0 };
    if (this.opts.spoolFile) {
      const lines = left.map((p) => {
        const { type, target, outcome } = p;
        const event = {
          type,
          target,
          outcome,
          actor: JSON.parse(p.actorJson),
          payload: JSON.parse(p.payloadJson),
        };
        const spooled: SpooledEvent = { id: p.id, time: p.time, event };
        if (p.alongside) spooled.alongside = p.alongside;
        return JSON.stringify(spooled);
      });
      appendFileSync(this.opts.spoolFile, `${lines.join('\n')}\n`, { mode: 0o600 });
      for (const p of left)
        p.waiter?.reject(
          new StoreUnavailableError('audit store unavailable: event spooled for the next start'),
        );
      return { spooled: left.length, lost: 0 };
    }
    for (const p of left) p.waiter?.reject(new Error('audit log closed before the event was written'));
    return { spooled: 0, lost: left.length };
  }

  /**
   * Writes the events a previous process spooled at shutdown (each exactly once: they keep
   * their ids and times), then removes the spool. Returns how many were replayed.
   */
  async replaySpool(): Promise<number> {
    const file = this.opts.spoolFile;
    if (!file || !existsSync(file)) return 0;
    const spooled = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as SpooledEvent);
    const written = spooled.map(
      (s) =>
        new Promise<AuditRecord>((resolve, reject) => {
          this.queue.push({
            id: s.id,
            time: s.time,
            type: s.event.type,
            target: s.event.target ?? null,
            outcome: s.event.outcome,
            actorJson: canonicalJson({ ...s.event.actor, chain: s.event.actor.chain ?? [] }),
            payloadJson: canonicalJson(s.event.payload ?? {}),
            waiter: { resolve, reject },
            replayed: true,
            ...(s.alongside ? { alongside: s.alongside } : {}),
          });
        }),
    );
    this.writes.kick(true);
    await Promise.all(written);
    rmSync(file, { force: true });
    return spooled.length;
  }
}

/**
 * `w` with U+0000 in its text parameters replaced by U+FFFD. PostgreSQL refuses a NUL in text
 * (a subject claim or a kill reason could carry one), and a row change it refuses would fail its
 * batch on every retry, holding up every event behind it. The events themselves are JSON, which
 * escapes it.
 */
function storable(w: RowWrite): RowWrite {
  if (!w.parameters.some((p) => typeof p === 'string' && p.includes('\u0000'))) return w;
  return {
    sql: w.sql,
    parameters: w.parameters.map((p) => (typeof p === 'string' ? p.replaceAll('\u0000', '\uFFFD') : p)),
  };
}

/** Seq and hashes for the batch's new records, continuing `tail`; records already written pass through. */
function chain(
  batch: readonly Pending[],
  done: ReadonlyMap<string, AuditRecord>,
  tail: { seq: number; hash: string } | undefined,
): Array<Link | AuditRecord> {
  let seq = tail ? tail.seq : 0;
  let prev = tail?.hash ?? GENESIS_HASH;
  return batch.map((p) => {
    const written = done.get(p.id);
    if (written) return written;
    seq += 1;
    const hash = hashEncodedRecord(
      { seq, id: p.id, time: p.time, type: p.type, target: p.target, outcome: p.outcome, prev_hash: prev },
      p.actorJson,
      p.payloadJson,
    );
    const link = { seq, prev_hash: prev, hash };
    prev = hash;
    return link;
  });
}

function toRecord(p: Pending, link: Link): AuditRecord {
  return {
    seq: link.seq,
    id: p.id,
    time: p.time,
    type: p.type,
    actor: JSON.parse(p.actorJson) as AuditActor,
    target: p.target,
    outcome: p.outcome,
    payload: JSON.parse(p.payloadJson) as Record<string, unknown>,
    prev_hash: link.prev_hash,
    hash: link.hash,
  };
}
