// The audit appender: events are queued, written in batches inside one serialized
// transaction (so several gateways sharing a store still produce one unbroken chain), and
// retried, whatever the store's error, until written. Events are validated when queued, so a
// failing write is always the store's problem, never a poison event; an event is only refused
// when the bounded queue is full, and then the caller is told.
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { canonicalJson } from '../crypto/canonical.js';
import { isUnavailable, type Store, StoreUnavailableError, type Tx } from '../store/store.js';
import {
  type AuditActor,
  type AuditEvent,
  type AuditRecord,
  GENESIS_HASH,
  hashEncodedRecord,
  hashRecord,
} from './record.js';
import { recordFromRow } from './rows.js';

interface Pending {
  id: string;
  event: AuditEvent & { actor: AuditActor; payload: Record<string, unknown> };
  time: string;
  /** Canonical JSON of actor and payload, made once when queued and stored as is. */
  actorJson?: string;
  payloadJson?: string;
  resolve: (r: AuditRecord) => void;
  reject: (err: Error) => void;
  /** Whether someone awaits the result; unobserved rejections must not crash the process. */
  observed: boolean;
  /** Replayed from the spool: it may already be in the store. */
  replayed?: boolean;
}

/** An event as kept in the spool file between a shutdown and the next start. */
interface SpooledEvent {
  id: string;
  time: string;
  event: Pending['event'];
}

export interface AuditLogOptions {
  /** Most events held in memory while the store is unreachable. */
  maxQueue?: number;
  maxBatch?: number;
  onWritten?: (records: AuditRecord[]) => void;
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

export class AuditLog {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 100;
  private closed = false;
  /** Set while the last write failed: the store is not accepting audit events. */
  lastError: Error | undefined;

  constructor(
    private readonly store: Store,
    private readonly opts: AuditLogOptions = {},
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  /** Appends and resolves with the written record (its seq and hash). */
  append(event: AuditEvent): Promise<AuditRecord> {
    return this.enqueue(event, true);
  }

  /** Appends without waiting; the event is retried until written. Never throws. */
  record(event: AuditEvent): void {
    this.enqueue(event, false).catch(() => undefined);
  }

  private enqueue(event: AuditEvent, observed: boolean): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new Error('audit log is closed'));
    if (this.queue.length >= (this.opts.maxQueue ?? 100_000)) {
      return Promise.reject(
        new AuditQueueFullError('audit queue is full: the store has not accepted events for too long'),
      );
    }
    let normalized: Pending['event'];
    let actorJson: string;
    let payloadJson: string;
    try {
      // Round-trip through JSON now: the hashed value is exactly what will be read back, and
      // an event that cannot be encoded is refused to its caller instead of wedging the queue.
      actorJson = canonicalJson({ ...event.actor, chain: event.actor.chain ?? [] });
      payloadJson = canonicalJson(event.payload ?? {});
      normalized = {
        ...event,
        actor: JSON.parse(actorJson) as AuditActor,
        payload: JSON.parse(payloadJson) as Record<string, unknown>,
      };
    } catch (err) {
      return Promise.reject(
        new TypeError(`audit event ${event.type} cannot be encoded: ${(err as Error).message}`),
      );
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.queue.push({
        id: randomUUID(),
        event: normalized,
        time: new Date().toISOString(),
        actorJson,
        payloadJson,
        resolve,
        reject,
        observed,
      });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing || this.retryTimer) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0 && !this.retryTimer) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.opts.maxBatch ?? 500);
      let written: AuditRecord[];
      try {
        written = await this.store.serialized((tx) => this.write(tx, batch));
      } catch (err) {
        const error = err as Error;
        this.lastError = error;
        this.opts.onError?.(error, this.queue.length);
        // Keep every event (too many clients, a cancelled query, a full disk and a dropped
        // connection all pass); tell waiting callers now, so their request fails, and retry.
        for (const p of batch) {
          if (p.observed) {
            const why = isUnavailable(error) ? 'unavailable' : 'refusing writes';
            p.reject(new StoreUnavailableError(`audit store ${why}: ${error.message}`));
            p.observed = false;
          }
        }
        this.scheduleRetry();
        return;
      }
      this.queue.splice(0, batch.length);
      this.lastError = undefined;
      this.retryDelay = 100;
      for (const [i, p] of batch.entries()) p.resolve(written[i]!);
      this.opts.onWritten?.(written);
    }
  }

  // Deliberately not unref'd: while events wait to be written the process stays up
  // (close() gives up after its drain timeout and says which events were not written).
  private scheduleRetry(): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, 5_000);
  }

  private async write(tx: Tx, all: Pending[]): Promise<AuditRecord[]> {
    // After a failure the previous attempt may have committed without us hearing back:
    // events already in the store are answered from it, not written again.
    const done = new Map<string, AuditRecord>();
    if (this.lastError || all.some((p) => p.replayed)) {
      const rows = await tx
        .selectFrom('audit_log')
        .selectAll()
        .where(
          'event_id',
          'in',
          all.map((p) => p.id),
        )
        .execute();
      for (const row of rows) done.set(row.event_id, recordFromRow(row));
    }
    const batch = all.filter((p) => !done.has(p.id));
    const tail = await tx
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    let seq = tail ? Number(tail.seq) : 0;
    let prev = tail?.hash ?? GENESIS_HASH;
    const records: AuditRecord[] = batch.map((p) => {
      seq += 1;
      const base = {
        seq,
        id: p.id,
        time: p.time,
        type: p.event.type,
        actor: p.event.actor,
        target: p.event.target ?? null,
        outcome: p.event.outcome,
        payload: p.event.payload,
        prev_hash: prev,
      };
      const record = {
        ...base,
        hash:
          p.actorJson !== undefined && p.payloadJson !== undefined
            ? hashEncodedRecord(base, p.actorJson, p.payloadJson)
            : hashRecord(base),
      };
      prev = record.hash;
      return record;
    });
    for (let i = 0; i < records.length; i += 100) {
      await tx
        .insertInto('audit_log')
        .values(
          records.slice(i, i + 100).map((r, j) => {
            const p = batch[i + j]!;
            return {
              seq: r.seq,
              event_id: r.id,
              time: r.time,
              type: r.type,
              actor_json: p.actorJson ?? canonicalJson(r.actor),
              target: r.target,
              outcome: r.outcome,
              payload_json: p.payloadJson ?? canonicalJson(r.payload),
              prev_hash: r.prev_hash,
              hash: r.hash,
            };
          }),
        )
        .execute();
    }
    const fresh = new Map(records.map((r) => [r.id, r]));
    return all.map((p) => done.get(p.id) ?? fresh.get(p.id)!);
  }

  /** Waits until everything queued so far is written (or the store refuses it). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.kick();
      }
      await (this.flushing ?? Promise.resolve());
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
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const left = this.queue;
    this.queue = [];
    if (left.length === 0) return { spooled: 0, lost: 0 };
    if (this.opts.spoolFile) {
      const lines = left.map((p) =>
        JSON.stringify({ id: p.id, time: p.time, event: p.event } satisfies SpooledEvent),
      );
      appendFileSync(this.opts.spoolFile, `${lines.join('\n')}\n`, { mode: 0o600 });
      for (const p of left)
        p.reject(new StoreUnavailableError('audit store unavailable: event spooled for the next start'));
      return { spooled: left.length, lost: 0 };
    }
    for (const p of left) p.reject(new Error('audit log closed before the event was written'));
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
            event: s.event,
            time: s.time,
            resolve,
            reject,
            observed: true,
            replayed: true,
          });
        }),
    );
    this.kick();
    await Promise.all(written);
    rmSync(file, { force: true });
    return spooled.length;
  }
}
