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
    if (this.lastSeq < 0 || tailSeq - this.lastSeq >= this.opts.every) {
      this.checkpoint().catch((err) => this.opts.onError?.(err as Error));
    }
  }

  /** Signs the current tail unless it is already checkpointed. */
  checkpoint(): Promise<AuditCheckpoint | undefined> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<AuditCheckpoint | undefined> {
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
    if (!tail || Number(tail.seq) <= this.lastSeq) return undefined;
    // With several gateways the tail moves; only checkpoint when `every` records are due or the timer fired.
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
