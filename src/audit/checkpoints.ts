// Signed checkpoints: every N records or T seconds the tail (seq, hash) is signed with the
// gateway's Ed25519 key, so rewriting history (or cutting the tail) needs a key the store never holds.
// The newest one is also kept in a witness file outside the store, where deleting rows cannot reach it.
import { readFileSync } from 'node:fs';
import { writeSecretFile } from '../crypto/secret-file.js';
import type { SigningKey } from '../crypto/signing.js';
import { signDetached, verifyDetached } from '../crypto/signing.js';
import type { Store } from '../store/store.js';
import {
  type AuditCheckpoint,
  type AuditRecord,
  auditCheckpointSchema,
  checkpointMessage,
  schemaProblem,
} from './record.js';
import { storeRecords, verifyTrail } from './verify.js';

export interface CheckpointerOptions {
  every: number;
  intervalMs: number;
  onError?: (err: Error) => void;
  onCheckpoint?: (c: AuditCheckpoint) => void;
  /**
   * A file outside the store (in the gateway's data dir) that keeps the newest checkpoint this
   * gateway signed or saw. Live verification uses it as an anchor, and no checkpoint is signed
   * or witnessed for a trail that no longer extends it.
   */
  witnessFile?: string;
  /**
   * Whether this gateway appended every record from one checkpoint to the next itself, with these
   * hashes (AuditLog.vouches): the trail then extends the witness by construction and is not read
   * back. The signature covers the hashes this gateway computed, so a row changed in the store
   * afterwards still fails `warden audit verify` at its seq.
   */
  vouch?: (from: { seq: number; hash: string }, to: { seq: number; hash: string }) => boolean;
}

/** The store's trail contradicts the witness: it was rewritten or cut (or the store was replaced). */
export class ForgedCheckpointError extends Error {
  override name = 'ForgedCheckpointError';
}

export class WitnessMismatchError extends Error {
  override name = 'WitnessMismatchError';
}

/** Reads a signed checkpoint saved as JSON (the witness file, `warden audit checkpoint --json`). */
export function readCheckpointFile(path: string): AuditCheckpoint {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const reason = err instanceof SyntaxError ? 'not JSON' : (err as Error).message;
    throw new Error(`${path}: cannot read a signed checkpoint (${reason})`);
  }
  const parsed = auditCheckpointSchema.safeParse(value);
  if (!parsed.success) throw new Error(`${path}: not a signed checkpoint (${schemaProblem(parsed.error)})`);
  return parsed.data;
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

  /** The newest checkpoint in the witness file; undefined without one (or if it cannot be read). */
  witness(): AuditCheckpoint | undefined {
    if (!this.opts.witnessFile) return undefined;
    try {
      return readCheckpointFile(this.opts.witnessFile);
    } catch {
      return undefined;
    }
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

  /**
   * The newest checkpoint in the store that this gateway's key signed and that lies within the
   * trail. Rows that fail either test are reported, never trusted: a forged row far ahead of the
   * tail would otherwise make every checkpoint look already done and freeze signing.
   */
  async latestValid(): Promise<AuditCheckpoint | undefined> {
    const tailSeq = await this.tailSeq();
    return (await this.lastValid(tailSeq)).last;
  }

  private async tailSeq(): Promise<number> {
    const row = await this.store.db
      .selectFrom('audit_log')
      .select('seq')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? Number(row.seq) : 0;
  }

  private async lastValid(tailSeq: number): Promise<{ last: AuditCheckpoint | undefined }> {
    const rows = await this.store.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(50)
      .execute();
    const bogus: number[] = [];
    let last: AuditCheckpoint | undefined;
    for (const row of rows) {
      const c = { ...row, seq: Number(row.seq) };
      if (
        c.seq <= tailSeq &&
        c.key_id === this.key.kid &&
        verifyDetached(this.key.publicKey, checkpointMessage(c), c.signature)
      ) {
        last = c;
        break;
      }
      bogus.push(c.seq);
    }
    if (bogus.length > 0) {
      this.opts.onError?.(
        new ForgedCheckpointError(
          `audit checkpoint row(s) at seq ${bogus.join(', ')} are not signed by this gateway's key or lie beyond ` +
            'the trail: ignored; run `warden audit verify`',
        ),
      );
    }
    return { last };
  }

  /** Signs the tail if at least `due` records follow the last valid checkpoint in the store. */
  private async run(due: number): Promise<AuditCheckpoint | undefined> {
    const db = this.store.db;
    const tailRow = await db
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const { last } = await this.lastValid(tailRow ? Number(tailRow.seq) : 0);
    this.lastSeq = last?.seq ?? 0;
    if (last) await this.observe(last);
    // With several gateways the tail moves and another one may have just signed it: re-check against the store.
    if (!tailRow || Number(tailRow.seq) - this.lastSeq < due) return undefined;
    const tail = { seq: Number(tailRow.seq), hash: tailRow.hash };
    await this.assertExtendsWitness(tail);
    const base = { ...tail, time: new Date().toISOString(), key_id: this.key.kid };
    const checkpoint: AuditCheckpoint = {
      ...base,
      signature: signDetached(this.key, checkpointMessage(base)),
    };
    await db
      .insertInto('audit_checkpoints')
      .values(checkpoint)
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
    const stored = await db
      .selectFrom('audit_checkpoints')
      .select(['hash', 'key_id'])
      .where('seq', '=', checkpoint.seq)
      .executeTakeFirst();
    if (stored && (stored.hash !== checkpoint.hash || stored.key_id !== checkpoint.key_id)) {
      // Another row already holds this seq (one this gateway did not sign); the witness keeps ours.
      this.opts.onError?.(
        new ForgedCheckpointError(
          `a foreign checkpoint row occupies seq ${checkpoint.seq}; run \`warden audit verify\``,
        ),
      );
    }
    this.lastSeq = checkpoint.seq;
    this.advanceWitness(checkpoint);
    this.opts.onCheckpoint?.(checkpoint);
    return checkpoint;
  }

  /** Witnesses a newer checkpoint another gateway (sharing the key and store) signed. */
  private async observe(c: AuditCheckpoint): Promise<void> {
    if (!this.opts.witnessFile || c.seq <= (this.witness()?.seq ?? 0)) return;
    // A row forged in the store must not become the witness; verification names it anyway.
    if (c.key_id !== this.key.kid || !verifyDetached(this.key.publicKey, checkpointMessage(c), c.signature)) {
      return;
    }
    await this.assertExtendsWitness(c);
    this.advanceWitness(c);
  }

  /**
   * Refuses to vouch for a trail that does not continue the witnessed one: otherwise an attacker
   * who rewrote the store and deleted its checkpoints would get the rewrite signed at the next
   * interval, and the witness moved past the evidence.
   */
  private async assertExtendsWitness(target: { seq: number; hash: string }): Promise<void> {
    const witness = this.witness();
    if (!witness) return;
    const problem = await this.whyNotExtending(witness, target);
    if (problem === undefined) return;
    throw new WitnessMismatchError(
      `the audit trail in the store no longer extends the checkpoint witnessed at seq ${witness.seq} ` +
        `(${problem}): refusing to sign or witness it. Run \`warden audit verify\`; if the store was ` +
        `replaced on purpose, remove ${this.opts.witnessFile}`,
    );
  }

  /** Verifies the records from the witness to `target`: the witness's own, linked on to `target`'s. */
  private async whyNotExtending(
    witness: AuditCheckpoint,
    target: { seq: number; hash: string },
  ): Promise<string | undefined> {
    if (target.seq < witness.seq) return `the trail now ends at seq ${target.seq}`;
    if (this.opts.vouch?.(witness, target)) return undefined;
    let last: AuditRecord | undefined;
    async function* upTo(records: AsyncIterable<AuditRecord>): AsyncGenerator<AuditRecord> {
      for await (const r of records) {
        if (r.seq > target.seq) return;
        last = r;
        yield r;
      }
    }
    const report = await verifyTrail({
      records: upTo(storeRecords(this.store, { sinceSeq: witness.seq })),
      checkpoints: [],
      anchors: [witness],
      keys: new Map([[this.key.kid, this.key.publicKey]]),
      allowPartial: true,
    });
    if (report.problem) return report.problem.message;
    if (report.anchored_seq !== witness.seq) return `seq ${witness.seq} is missing`;
    if (report.last_seq !== target.seq || last?.hash !== target.hash) {
      return `seq ${target.seq} is not the record signed as ${target.hash}`;
    }
    return undefined;
  }

  /** Rewrites the witness file with a newer checkpoint; it never moves back. */
  private advanceWitness(c: AuditCheckpoint): void {
    const file = this.opts.witnessFile;
    if (!file || c.seq <= (this.witness()?.seq ?? 0)) return;
    const { seq, hash, time, key_id, signature } = c;
    writeSecretFile(file, `${JSON.stringify({ seq, hash, time, key_id, signature })}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
