// The sessions this gateway carries right now, so an admin can end one. A kill asked through
// another gateway on the same store is a flag on the session row, which every gateway polls.
import type { Sessions } from '../store/sessions.js';

type Kill = (message: string) => void;

export class LiveSessions {
  private readonly live = new Map<string, Kill>();
  private timer: NodeJS.Timeout | undefined;

  get size(): number {
    return this.live.size;
  }

  add(id: string, kill: Kill): void {
    this.live.set(id, kill);
  }

  remove(id: string): void {
    this.live.delete(id);
  }

  /** Ends a session carried here; false when it is not. */
  kill(id: string, message: string): boolean {
    const kill = this.live.get(id);
    if (!kill) return false;
    this.live.delete(id);
    kill(message);
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
