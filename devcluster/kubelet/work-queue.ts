/**
 * A tiny keyed work queue: a key queued several times is processed once, never by two workers at
 * once, and a handler may ask to be called again after a delay.
 */

/** What a handler returns: nothing, or `{ requeueAfterMs }` to be called again later. */
export type HandlerResult = void | { requeueAfterMs: number };

/** Processes keys one at a time per key; failures are retried with a capped exponential back-off. */
export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private stopped = false;

  /**
   * @param handle processes one key; a throw retries it after 100 ms doubling to 5 s
   * @param onError told about every handler failure
   */
  constructor(
    private readonly handle: (key: string) => Promise<HandlerResult>,
    private readonly onError: (key: string, err: unknown) => void,
  ) {}

  /** Queues `key` now (deduplicated with any pending run). */
  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.pending.has(key)) return;
    this.pending.add(key);
    setImmediate(() => void this.run(key));
  }

  /** Queues `key` after `ms` milliseconds (an earlier pending delay wins). */
  addAfter(key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return;
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, ms),
    );
  }

  private async run(key: string): Promise<void> {
    this.pending.delete(key);
    if (this.stopped) return;
    this.running.add(key);
    try {
      const r = await this.handle(key);
      this.failures.delete(key);
      if (r && r.requeueAfterMs > 0) this.addAfter(key, r.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      this.onError(key, err);
      this.addAfter(key, Math.min(5000, 100 * 2 ** (n - 1)));
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
    }
  }

  /** Stops: cancels timers and ignores further adds. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
