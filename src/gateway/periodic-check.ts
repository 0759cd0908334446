// A check that runs on an interval and never twice at once (a slow store can make one outlast the
// interval); its failures go to a handler instead of escaping into the timer.
export class PeriodicCheck {
  private readonly timer: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly run: () => Promise<void>,
    intervalMs: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.timer = setInterval(() => void this.now(), intervalMs);
    this.timer.unref();
  }

  /** Runs the check now, unless one is already running. */
  async now(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.run();
    } catch (err) {
      this.onError(err as Error);
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
