// Audit trails for the audit tests: a store and signing key per dialect, wired the way the
// gateway wires them (checkpoints every N records, a witness file in the data dir), plus
// readers that look at the raw tables.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { loadSigningKey, type SigningKey } from '../../crypto/signing.js';
import { Store } from '../../store/store.js';
import type { StoreFixture } from '../../testing/dialects.js';
import { Checkpointer } from '../checkpoints.js';
import { AuditLog, type AuditLogOptions } from '../log.js';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from '../record.js';
import { storeCheckpoints, storeRecords, type VerifyReport, verifyTrail } from '../verify.js';

export const CHECKPOINT_EVERY = 5;

export function event(i: number, payload: Record<string, unknown> = {}): AuditEvent {
  return {
    type: 'query.allowed',
    actor: {
      subject: 'alice@example.com',
      kind: 'human',
      chain: ['agent:planner'],
      root: 'alice@example.com',
    },
    target: 'orders-db',
    outcome: 'success',
    payload: { i, sql: `select ${i}`, ...payload },
  };
}

export interface Trail {
  store: Store;
  /** What the checkpointer reported through onError. */
  checkpointErrors: Error[];
  key: SigningKey;
  /** A fresh log and checkpointer over the store; reset() makes new ones. */
  log: AuditLog;
  checkpointer: Checkpointer;
  /** Where the checkpointer keeps its witness (outside the store, like the gateway's data dir). */
  witnessFile: string;
  /** Appends `n` events one after another, letting each due checkpoint finish. */
  write(n: number, payload?: Record<string, unknown>): Promise<AuditRecord[]>;
  /** Empties both audit tables and starts a new log, so each test tampers with its own trail. */
  reset(): Promise<void>;
  records(): Promise<AuditRecord[]>;
  checkpoints(): Promise<AuditCheckpoint[]>;
  /** Verifies the store as live verification does; `anchors` are trusted checkpoints from outside it. */
  verify(opts?: { anchors?: AuditCheckpoint[]; requireSignature?: boolean }): Promise<VerifyReport>;
  close(): Promise<void>;
}

export async function openTrail(fx: StoreFixture, logOpts: AuditLogOptions = {}): Promise<Trail> {
  const store = await Store.open({ url: fx.url, dataDir: fx.dataDir });
  const key = await loadSigningKey(join(fx.dataDir, 'signing.key'), true);
  const witnessFile = join(fx.dataDir, 'audit-witness.json');
  const checkpointErrors: Error[] = [];
  const wire = () => {
    let checkpointer: Checkpointer | undefined;
    const log = new AuditLog(store, {
      ...logOpts,
      onWritten: (written) => {
        checkpointer?.noteWritten(written.lastSeq);
        logOpts.onWritten?.(written);
      },
    });
    checkpointer = new Checkpointer(store, key, {
      every: CHECKPOINT_EVERY,
      intervalMs: 3_600_000,
      witnessFile,
      // As the gateway wires it: records this log appended itself are vouched for, not read back.
      vouch: (from, to) => log.vouches(from, to),
      onError: (err) => checkpointErrors.push(err),
    });
    return { log, checkpointer };
  };
  const trail: Trail = {
    store,
    key,
    checkpointErrors,
    witnessFile,
    ...wire(),
    async write(n, payload = {}) {
      const written: AuditRecord[] = [];
      for (let i = 0; i < n; i++) {
        written.push(await trail.log.append(event(i, payload)));
        await trail.checkpointer.idle();
      }
      return written;
    },
    async reset() {
      await trail.log.close();
      await trail.checkpointer.idle();
      await sql`delete from audit_checkpoints`.execute(store.db);
      await sql`delete from audit_log`.execute(store.db);
      rmSync(witnessFile, { force: true });
      Object.assign(trail, wire());
    },
    records: () => readAll(storeRecords(store)),
    checkpoints: () => storeCheckpoints(store),
    async verify(opts = {}) {
      return verifyTrail({
        records: storeRecords(store),
        checkpoints: await storeCheckpoints(store),
        keys: new Map([[key.kid, key.publicKey]]),
        ...opts,
      });
    },
    async close() {
      await trail.log.close();
      await trail.checkpointer.idle();
      await store.close();
    },
  };
  return trail;
}

export async function readAll<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
