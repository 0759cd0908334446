// Signed checkpoints: every N records or T seconds the tail (seq, hash) is signed with the
// gateway's Ed25519 key, so rewriting history (or cutting the tail) needs a key the store never holds.
import type { SigningKey } from '../crypto/signing.js';
import { signDetached } from '../crypto/signing.js';
import type { Store } from '../store/store.js';
import { type AuditCheckpoint, checkpointMessage } from './record.js';

export interface CheckpointerOptions {
  every: number;
  intervalMs: number;
  onError?: (err: Error) => void;
  onCheckpoint?: (c: AuditCheckpoint) => void;
}

export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<AuditCheckpoint | undefined> | undefined;
  /** Seq of the last checkpoint seen in the store; -1 until it has been read. */
  private lastSeq = -1;

  constructor(
    private readonly store: Store,
    private readonly key: SigningKey,
    private readonly opts: CheckpointerOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.checkpoint().catch((err) => this.opts.onError?.(err as Error));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Called after records are written: checkpoints once `every` records have passed the last one. */
  noteWritten(tailSeq: number): void {
    // Until the store has been read the last checkpoint is unknown: let run() decide.
    if (this.lastSeq >= 0 && tailSeq - this.lastSeq < this.opts.every) return;
    this.enqueue(this.opts.every).catch((err) => this.opts.onError?.(err as Error));
  }

  /** Signs the current tail unless it is already checkpointed. */
  checkpoint(): Promise<AuditCheckpoint | undefined> {
    return this.enqueue(1);
  }

  /** Resolves once no checkpoint is being taken (before closing the store). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  // Runs one after another: a run that read the tail before the latest write must not
  // answer for a later request.
  private enqueue(due: number): Promise<AuditCheckpoint | undefined> {
    const run = (this.running ?? Promise.resolve()).catch(() => undefined).then(() => this.run(due));
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** Signs the tail if at least `due` records follow the last checkpoint in the store. */
  private async run(due: number): Promise<AuditCheckpoint | undefined> {
    const db = this.store.db;
    const last = await db
      .selectFrom('audit_checkpoints')
      .select('seq')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const tail = await db
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    this.lastSeq = last ? Number(last.seq) : 0;
    // With several gateways the tail moves and another one may have just signed it: re-check against the store.
    if (!tail || Number(tail.seq) - this.lastSeq < due) return undefined;
    const base = {
      seq: Number(tail.seq),
      hash: tail.hash,
      time: new Date().toISOString(),
      key_id: this.key.kid,
    };
    const checkpoint: AuditCheckpoint = {
      ...base,
      signature: signDetached(this.key, checkpointMessage(base)),
    };
    await db
      .insertInto('audit_checkpoints')
      .values(checkpoint)
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
    this.lastSeq = checkpoint.seq;
    this.opts.onCheckpoint?.(checkpoint);
    return checkpoint;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
