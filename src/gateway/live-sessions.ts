// The sessions this gateway carries right now, so an admin can end one. A kill asked through
// another gateway on the same store is a flag on the session row, which every gateway polls.
import type { Sessions } from '../store/sessions.js';
import type { Lifetime } from './lifetime-watch.js';

/** Why Warden ends a live session: an admin or a revocation, one of its limits, or its parent ending. */
export type EndCause = 'killed' | 'idle' | 'max_duration' | 'orphaned';

type Kill = (message: string, cause: EndCause) => void;

/** The credential a live session was opened with: what a revocation is checked against. */
export interface SessionCredential {
  via: 'api_key' | 'oidc' | 'warden_token';
  /** API key id or token jti; null when the credential has no id Warden can revoke. */
  id: string | null;
  /** Who it names: the caller, its root and its delegates; disabling any one of them ends the session. */
  subjects: readonly string[];
}

interface Live {
  kill: Kill;
  credential: SessionCredential | undefined;
  lifetime: Lifetime | undefined;
}

export class LiveSessions {
  private readonly live = new Map<string, Live>();
  private timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.live.size;
  }

  add(id: string, kill: Kill, credential?: SessionCredential, lifetime?: Lifetime): void {
    this.live.set(id, { kill, credential, lifetime });
  }

  /** The live sessions with limits and a lineage to check, by session id. */
  lifetimes(): Array<{ id: string; lifetime: Lifetime }> {
    const out: Array<{ id: string; lifetime: Lifetime }> = [];
    for (const [id, l] of this.live) if (l.lifetime) out.push({ id, lifetime: l.lifetime });
    return out;
  }

  /** The live sessions whose credential Warden can revoke (or whose subjects it can disable), by session id. */
  revocable(): Array<{ id: string; credential: SessionCredential }> {
    const out: Array<{ id: string; credential: SessionCredential }> = [];
    for (const [id, l] of this.live) {
      if (l.credential) out.push({ id, credential: l.credential });
    }
    return out;
  }

  remove(id: string): void {
    this.live.delete(id);
  }

  /** Ends a session carried here; false when it is not. */
  kill(id: string, message: string, cause: EndCause = 'killed'): boolean {
    const l = this.live.get(id);
    if (!l) return false;
    this.live.delete(id);
    l.kill(message, cause);
    return true;
  }

  /** Every `intervalMs`, ends the sessions here whose rows another gateway flagged. */
  watch(sessions: Sessions, intervalMs: number, onError: (err: Error) => void): void {
    this.timer = setInterval(() => {
      if (this.live.size === 0) return;
      sessions
        .killRequested([...this.live.keys()])
        .then((flagged) => {
          for (const f of flagged) this.kill(f.id, f.message);
        })
        .catch(onError);
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
