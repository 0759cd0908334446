// This gateway's heartbeat on the store, and the sweep that ends the sessions of a gateway that
// stopped beating (a crash, a lost host): they would read `active` forever, and their child
// sessions would never be found orphaned.
import { hostname } from 'node:os';
import type { AuditLog } from '../audit/log.js';
import { SYSTEM_ACTOR } from '../audit/record.js';
import { timeOrderedId } from '../crypto/ids.js';
import type { Gateways } from '../store/gateways.js';
import type { Sessions } from '../store/sessions.js';
import { PeriodicCheck } from './periodic-check.js';

export interface GatewayLivenessDeps {
  gateways: Gateways;
  sessions: Sessions;
  audit: AuditLog;
  heartbeatMs: number;
  /** A gateway not heard from for this long is taken for gone. */
  timeoutMs: number;
  onError: (err: Error) => void;
}

export class GatewayLiveness {
  readonly id = timeOrderedId();
  private readonly startedAt = new Date().toISOString();
  private periodic: PeriodicCheck | undefined;

  constructor(private readonly deps: GatewayLivenessDeps) {}

  /** Registers this gateway (the first beat), then beats and sweeps on the interval. */
  start(): void {
    this.periodic = new PeriodicCheck(() => this.tick(), this.deps.heartbeatMs, this.deps.onError);
    void this.periodic.now();
  }

  private async tick(): Promise<void> {
    await this.deps.gateways.beat({
      id: this.id,
      host: hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
    });
    await this.sweep();
  }

  /** Ends the sessions of gateways silent for longer than the timeout, each gateway by one sweeper. */
  private async sweep(): Promise<void> {
    const now = new Date();
    const before = new Date(now.getTime() - this.deps.timeoutMs).toISOString();
    for (const gone of await this.deps.gateways.silentSince(before, this.id)) {
      // Whoever removes the row ends its sessions: two sweepers never report the same loss twice.
      if (!(await this.deps.gateways.claim(gone, before))) continue;
      const reason = `the gateway carrying it (${gone}) stopped answering`;
      const lost = await this.deps.sessions.endLost(gone, now.toISOString(), reason);
      this.deps.audit.record({
        type: 'gateway.lost',
        actor: SYSTEM_ACTOR,
        target: `gateway:${gone}`,
        outcome: 'failure',
        payload: { gateway: gone, found_by: this.id, sessions: lost.map((s) => s.id) },
      });
      for (const s of lost) {
        this.deps.audit.record({
          type: 'session.lost',
          actor: SYSTEM_ACTOR,
          target: `session:${s.id}`,
          outcome: 'failure',
          payload: { session: s.id, subject: s.subject, gateway: gone, reason },
        });
      }
    }
  }

  /** Stops beating and says goodbye (its sessions were closed by the shutdown). */
  async stop(): Promise<void> {
    this.periodic?.stop();
    await this.deps.gateways.remove(this.id).catch(() => undefined);
  }
}
