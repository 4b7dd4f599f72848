/**
 * A rate-limited work queue with client-go semantics (`k8s.io/client-go/util/workqueue`):
 *
 * - **dedupe**: a key added several times before a worker takes it is handed out once;
 * - **one worker per key**: a key added while it is being processed is marked dirty and re-queued
 *   only when {@link WorkQueue.done} is called for it;
 * - **delays**: {@link WorkQueue.addAfter} adds a key once a delay has passed (the earliest pending
 *   deadline of a key wins);
 * - **rate limiting**: {@link WorkQueue.addRateLimited} delays by the maximum of a per-key exponential
 *   back-off (5 ms doubling up to 1000 s) and an overall token bucket (10 qps, burst 100);
 *   {@link WorkQueue.forget} resets a key's back-off.
 *
 * Time comes from an injectable {@link Clock} so tests can drive it by hand. No I/O, no metrics
 * library: depth changes are reported through `onDepth`.
 */

/** A source of time and one-shot timers. All values are milliseconds. */
export interface Clock {
  /** Current time in milliseconds since the epoch (or any fixed origin). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds; returns a function that cancels the timer. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** The real clock: `Date.now()` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

/** Per-key exponential back-off: `baseDelayMs * 2^failures`, capped at `maxDelayMs`. */
export interface ExponentialBackoffOptions {
  /** First delay in ms. Default 5. */
  baseDelayMs?: number;
  /** Cap in ms. Default 1 000 000 (1000 s). */
  maxDelayMs?: number;
}

/** Overall token bucket shared by all keys. */
export interface TokenBucketOptions {
  /** Refill rate in tokens per second. Default 10. */
  qps?: number;
  /** Bucket size (and initial fill). Default 100. */
  burst?: number;
}

/**
 * Pure per-key back-off delay: `base * 2^failures`, capped at `max`.
 *
 * @param failures number of earlier rate-limited adds of the key (0 for the first)
 * @returns delay in milliseconds
 */
export function exponentialBackoffMs(failures: number, baseDelayMs = 5, maxDelayMs = 1_000_000): number {
  if (failures < 0) return baseDelayMs;
  // 2^n overflows to Infinity past ~1023; cap before that matters.
  const exp = baseDelayMs * Math.pow(2, Math.min(failures, 1000));
  return Math.min(exp, maxDelayMs);
}

/**
 * A token bucket (golang.org/x/time/rate semantics for `Reserve().Delay()`): each call takes one
 * token; if none is left the call is given the delay until its token will exist, and the bucket
 * goes into debt so later callers wait longer.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;

  /**
   * @param clock time source
   * @param opts `qps` (tokens per second, default 10) and `burst` (default 100)
   */
  constructor(private readonly clock: Clock, opts: TokenBucketOptions = {}) {
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.tokens = this.burst;
    this.last = clock.now();
  }

  /** Takes one token and returns how long (ms) the caller must wait for it; 0 if available now. */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Name used in metrics (`celeriac_workqueue_depth{name}`) and logs. Default `"default"`. */
  name?: string;
  /** Time source. Default {@link systemClock}. */
  clock?: Clock;
  /** Per-key back-off settings for {@link WorkQueue.addRateLimited}. */
  backoff?: ExponentialBackoffOptions;
  /** Overall token bucket for {@link WorkQueue.addRateLimited}; `false` disables it. */
  bucket?: TokenBucketOptions | false;
  /** Called with the new depth (ready keys, as {@link WorkQueue.len}) whenever it changes. */
  onDepth?: (depth: number) => void;
}

type Waiter = (key: string | undefined) => void;

/**
 * The work queue. Keys are opaque strings (the controller uses `namespace/name`).
 *
 * Life cycle of a key: `add` → ready (counted by `len`) → `get` hands it to one worker
 * (processing) → the worker calls `done(key)`; if the key was added again meanwhile it becomes
 * ready again at that moment.
 */
export class WorkQueue {
  /** Queue name (metrics label). */
  readonly name: string;
  private readonly clock: Clock;
  private readonly ready: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiters: Waiter[] = [];
  private readonly delayed = new Map<string, { at: number; cancel: () => void }>();
  private readonly failures = new Map<string, number>();
  private readonly bucket: TokenBucket | undefined;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onDepth: ((depth: number) => void) | undefined;
  private readonly idleWaiters: Array<() => void> = [];
  private shuttingDown = false;

  /** @param opts see {@link WorkQueueOptions} */
  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? "default";
    this.clock = opts.clock ?? systemClock;
    this.baseDelayMs = opts.backoff?.baseDelayMs ?? 5;
    this.maxDelayMs = opts.backoff?.maxDelayMs ?? 1_000_000;
    this.bucket = opts.bucket === false ? undefined : new TokenBucket(this.clock, opts.bucket ?? {});
    this.onDepth = opts.onDepth;
  }

  /** Adds `key` now. No-op if it is already ready, or after {@link shutDown}. */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // re-queued by done()
    this.ready.push(key);
    this.dispatch();
    this.reportDepth();
  }

  /**
   * Adds `key` after `delayMs` milliseconds (immediately when `delayMs <= 0`). If the key already
   * waits for a later deadline, the earlier one wins; a later deadline than the pending one is ignored.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.at <= at) return;
      pending.cancel();
    }
    const cancel = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, cancel });
  }

  /**
   * Adds `key` after its rate-limit delay: max(per-key back-off, token-bucket wait). Each call
   * counts as one failure of the key until {@link forget}.
   *
   * @returns the delay applied, in ms
   */
  addRateLimited(key: string): number {
    const delay = this.when(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** Computes and records the next rate-limit delay of `key` in ms (without adding it). */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perKey = exponentialBackoffMs(n, this.baseDelayMs, this.maxDelayMs);
    const overall = this.bucket ? this.bucket.reserve() : 0;
    return Math.max(perKey, overall);
  }

  /** Resets the back-off of `key` (call after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Number of rate-limited adds of `key` since the last {@link forget}. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Waits for the next ready key and marks it processing. Resolves `undefined` once the queue is
   * shut down (keys still waiting are dropped: the controller is level-triggered and resyncs on
   * the next start).
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise<string | undefined>((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` as no longer processing; re-queues it if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.ready.push(key);
      this.dispatch();
      this.reportDepth();
    }
    if (this.processing.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Number of ready keys (not counting keys being processed or waiting for a delay). */
  len(): number {
    return this.ready.length;
  }

  /** True while `key` is handed to a worker and not yet `done`. */
  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** True after {@link shutDown}. */
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops the queue: pending timers are cancelled, waiting and future `get()` calls resolve
   * `undefined`, adds are ignored. Idempotent.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const d of this.delayed.values()) d.cancel();
    this.delayed.clear();
    this.ready.length = 0;
    this.dirty.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    this.reportDepth();
  }

  /** {@link shutDown}, then resolves when no key is processing any more. */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private take(): string | undefined {
    const key = this.ready.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    this.reportDepth();
    return key;
  }

  private dispatch(): void {
    while (this.waiters.length > 0 && this.ready.length > 0) {
      const w = this.waiters.shift() as Waiter;
      w(this.take());
    }
  }

  private lastDepth = -1;
  private reportDepth(): void {
    if (!this.onDepth) return;
    const d = this.ready.length;
    if (d === this.lastDepth) return;
    this.lastDepth = d;
    this.onDepth(d);
  }
}
