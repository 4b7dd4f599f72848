/**
 * A token bucket with continuous refill: the rate limiter of flow control (the queue's
 * `spec.rateLimit` and each task name's rate). Pure: no timers; the clock is an argument (ms epoch).
 *
 * The model is kombu's `kombu.utils.limits.TokenBucket` (`fill_rate` tokens per second, `capacity`,
 * `can_consume`, `expected_time`), which Celery's `Task.rate_limit` uses with capacity 1: the bucket
 * starts full, refills continuously, and a start takes one token.
 *
 * One deviation: the bucket banks up to half a token beyond its capacity ({@link LATE_SLACK_TOKENS}).
 * A bucket of capacity 1 is full exactly when its next token is due, so a caller that comes back a
 * little late (timer granularity, a publish in between) would lose the lateness from the rate: at
 * 50/s with burst 1, 1 ms late per token is 5% below the rate. The slack forgives up to half a token
 * interval of lateness. Over any window of `w` seconds the bucket allows at most
 * `floor(capacity + 0.5 + perSecond × w)` takes: `capacity + perSecond × w` whenever the rate per
 * window is a whole number (50/s over 1 s: burst + 50).
 */

/** Fraction of a token the bucket keeps beyond its capacity (see the module doc). */
export const LATE_SLACK_TOKENS = 0.5;

/** Slack for float rounding when comparing token counts (far below one token). */
const EPSILON = 1e-9;

/** A token bucket: `perSecond` tokens per second up to `capacity`; starts full. */
export class TokenBucket {
  #perSecond: number;
  #capacity: number;
  #tokens: number;
  #atMs: number;

  /**
   * @param perSecond refill rate, tokens per second (> 0)
   * @param capacity most tokens held (≥ 1): the burst
   * @param nowMs the clock (ms epoch); the bucket is full at this instant
   * @throws Error naming `perSecond` or `capacity` when not a positive finite number (capacity ≥ 1)
   */
  constructor(perSecond: number, capacity: number, nowMs: number) {
    TokenBucket.#check(perSecond, capacity);
    this.#perSecond = perSecond;
    this.#capacity = capacity;
    this.#tokens = capacity;
    this.#atMs = nowMs;
  }

  static #check(perSecond: number, capacity: number): void {
    if (!(Number.isFinite(perSecond) && perSecond > 0)) throw new Error(`perSecond: ${perSecond} is not a rate: use a finite number of tokens per second > 0`);
    if (!(Number.isFinite(capacity) && capacity >= 1)) throw new Error(`capacity: ${capacity} is not a bucket size: use a number ≥ 1`);
  }

  /** Refill rate, tokens per second. */
  get perSecond(): number {
    return this.#perSecond;
  }

  /** Most tokens the bucket holds (the burst). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Brings the bucket to `nowMs`; a clock that goes back adds nothing (and is not remembered). */
  #refill(nowMs: number): void {
    if (nowMs <= this.#atMs) return;
    this.#tokens = Math.min(this.#capacity + LATE_SLACK_TOKENS, this.#tokens + ((nowMs - this.#atMs) * this.#perSecond) / 1000);
    this.#atMs = nowMs;
  }

  /** Tokens in the bucket at `nowMs` (fractional; 0 … capacity; the slack is not shown). */
  tokens(nowMs: number): number {
    this.#refill(nowMs);
    return Math.min(this.#capacity, this.#tokens);
  }

  /** True when a token can be taken at `nowMs` (kombu `can_consume` without consuming). */
  available(nowMs: number): boolean {
    this.#refill(nowMs);
    return this.#tokens >= 1 - EPSILON;
  }

  /** Takes one token at `nowMs` when there is one. @returns true when it was taken */
  take(nowMs: number): boolean {
    if (!this.available(nowMs)) return false;
    this.#tokens = Math.max(0, this.#tokens - 1);
    return true;
  }

  /**
   * When the next token is there (ms epoch, whole ms, rounded up): `nowMs` when one is there now
   * (kombu `expected_time`, as an instant).
   */
  readyAtMs(nowMs: number): number {
    this.#refill(nowMs);
    const t = this.#tokens;
    if (t >= 1 - EPSILON) return nowMs;
    return Math.max(this.#atMs, nowMs) + Math.max(1, Math.ceil(((1 - t) * 1000) / this.#perSecond - 1e-7));
  }

  /**
   * Changes rate and capacity at `nowMs` (a spec change): the tokens earned so far at the old rate
   * are kept, capped at the new capacity (plus the slack).
   * @throws Error as the constructor
   */
  reconfigure(perSecond: number, capacity: number, nowMs: number): void {
    TokenBucket.#check(perSecond, capacity);
    this.#refill(nowMs);
    this.#perSecond = perSecond;
    this.#capacity = capacity;
    this.#tokens = Math.min(this.#tokens, capacity + LATE_SLACK_TOKENS);
  }
}
