/**
 * `ctx.progress`: a handler's progress reports (Celery's `update_state`, BullMQ's `updateProgress`).
 * `progressReport` checks one report and builds its `status.progress` (pure); `ProgressReporter`
 * rate-limits the writes of one attempt per status sink — each sink at most once per its interval
 * (the results bucket 250 ms, a Task resource 500 ms), the first report at once, the last one always
 * written (trailing), never two writes in flight to one sink — and never throws at the handler.
 */
import { MAX_PROGRESS_META_BYTES, type TaskProgress } from "../api/task.js";

/** What a handler passes to `ctx.progress`: a fraction from 0 to 1, or counts. */
export type ProgressValue = number | { done: number; total?: number };

/** Default progress-write interval of a sink that declares none, in ms. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 1000;
/** Progress-write interval of the results bucket, in ms. */
export const KV_PROGRESS_INTERVAL_MS = 250;
/** Progress-write interval of a Task resource, in ms: at most 2 apiserver writes a second per task, so a report reaches the Task within about half a second plus the write. */
export const TASK_RESOURCE_PROGRESS_INTERVAL_MS = 500;

const USAGE = "pass a fraction from 0 to 1 (ctx.progress(0.4)) or counts (ctx.progress({done: 4, total: 10}))";

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/**
 * The `status.progress` of one report, its `display` the Progress column's text (`40%`, with the
 * percentage rounded down so unfinished work never shows 100%; `4/10`; `4` without a total). Pure.
 * @param value a fraction from 0 to 1, or `{done, total?}`: non-negative integers, done ≤ total
 * @param meta the handler's own JSON object, at most MAX_PROGRESS_META_BYTES of JSON (copied)
 * @param now the report's time (`updatedAt`)
 * @throws TypeError `ctx.progress(value…)` / `ctx.progress(…, meta)` naming what is wrong and the fix
 */
export function progressReport(value: ProgressValue, meta: Record<string, unknown> | undefined, now: Date): TaskProgress {
  const p: TaskProgress = { display: "", updatedAt: now.toISOString() };
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0 || value > 1) throw new TypeError(`ctx.progress(value): value is ${String(value)}, not a fraction from 0 to 1: ${USAGE}`);
    p.fraction = value;
    p.display = `${Math.floor(value * 100 + 1e-9)}%`;
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const { done, total } = value;
    if (!isCount(done)) throw new TypeError(`ctx.progress(value): value.done is ${JSON.stringify(done) ?? String(done)}, not a non-negative integer: ${USAGE}`);
    if (total !== undefined && !isCount(total)) throw new TypeError(`ctx.progress(value): value.total is ${JSON.stringify(total) ?? String(total)}, not a non-negative integer: leave it out when the total is unknown, or ${USAGE}`);
    if (total !== undefined && done > total) throw new TypeError(`ctx.progress(value): value.done (${done}) exceeds value.total (${total}): report done ≤ total, or raise total when the work grew`);
    p.done = done;
    if (total !== undefined) {
      p.total = total;
      if (total > 0) p.fraction = done / total;
      p.display = `${done}/${total}`;
    } else p.display = String(done);
  } else {
    throw new TypeError(`ctx.progress(value): value is ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}: ${USAGE}`);
  }
  if (meta !== undefined) p.meta = metaCopy(meta);
  return p;
}

/** A JSON copy of `meta`, checked. */
function metaCopy(meta: unknown): Record<string, unknown> {
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
    throw new TypeError(`ctx.progress(value, meta): meta is ${meta === null ? "null" : Array.isArray(meta) ? "an array" : typeof meta}, not an object: pass a JSON object such as {stage: "resize", file: "a.png"}, or leave it out`);
  }
  let json: string;
  try {
    json = JSON.stringify(meta);
  } catch (err) {
    throw new TypeError(`ctx.progress(value, meta): meta is not JSON-serialisable (${(err as Error).message.replace(/\s+/g, " ")}): pass plain data (strings, numbers, booleans, null, arrays, objects)`, { cause: err });
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_PROGRESS_META_BYTES) throw new TypeError(`ctx.progress(value, meta): meta is ${bytes} bytes of JSON, over the ${MAX_PROGRESS_META_BYTES}-byte limit: keep progress metadata small (store bulky data elsewhere and put its key in meta)`);
  return JSON.parse(json) as Record<string, unknown>;
}

/** One destination of progress writes (a status sink). */
export interface ProgressChannel {
  /** For logs (the sink's name). */
  readonly name: string;
  /** Least time between two writes, in ms. */
  readonly intervalMs: number;
  /** Writes `progress` (the latest report); a rejection is passed to `onError`, and the next report is written all the same. */
  write(progress: TaskProgress): Promise<void>;
}

/** Clock and timers of a `ProgressReporter` (injectable for tests). */
export interface ProgressClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: ProgressClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface ChannelState {
  readonly ch: ProgressChannel;
  lastAt: number;
  timer: unknown;
  inFlight: Promise<void> | undefined;
  dirty: boolean;
}

/** Rate-limited progress writes of one attempt; see the module header. */
export class ProgressReporter {
  readonly #channels: ChannelState[];
  readonly #clock: ProgressClock;
  readonly #onError: (err: unknown, channel: string) => void;
  #latest: TaskProgress | undefined;
  #closed = false;

  /**
   * @param channels where reports are written, each at its own interval
   * @param onError called with a failed write's error (never throws at the handler)
   * @param clock time and timers (default the real ones)
   */
  constructor(channels: readonly ProgressChannel[], onError: (err: unknown, channel: string) => void, clock: ProgressClock = realClock) {
    this.#channels = channels.map((ch) => ({ ch, lastAt: -Infinity, timer: undefined, inFlight: undefined, dirty: false }));
    this.#onError = onError;
    this.#clock = clock;
  }

  /** The last report, or undefined before the first. */
  get latest(): TaskProgress | undefined {
    return this.#latest;
  }

  /** Takes a report (the latest wins); writes it now or schedules it. Does nothing after `close`. Never throws. */
  report(p: TaskProgress): void {
    if (this.#closed) return;
    this.#latest = p;
    for (const s of this.#channels) {
      s.dirty = true;
      this.#schedule(s);
    }
  }

  #schedule(s: ChannelState): void {
    if (this.#closed || !s.dirty || s.inFlight || s.timer !== undefined) return;
    const wait = s.lastAt + s.ch.intervalMs - this.#clock.now();
    if (wait <= 0) this.#fire(s);
    else s.timer = this.#clock.setTimeout(() => {
      s.timer = undefined;
      this.#fire(s);
    }, wait);
  }

  #fire(s: ChannelState): void {
    const p = this.#latest;
    if (this.#closed || !p) return;
    s.dirty = false;
    s.lastAt = this.#clock.now();
    let w: Promise<void>;
    try {
      w = s.ch.write(p);
    } catch (err) {
      w = Promise.reject(err);
    }
    s.inFlight = w.catch((err: unknown) => this.#onError(err, s.ch.name)).finally(() => {
      s.inFlight = undefined;
      this.#schedule(s);
    });
  }

  /**
   * Stops: pending (trailing) writes are dropped — the attempt's final record carries `latest` —
   * and later reports are ignored.
   * @returns resolves once the writes in flight have ended (never rejects)
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#channels) {
      if (s.timer !== undefined) this.#clock.clearTimeout(s.timer);
      s.timer = undefined;
    }
    await Promise.all(this.#channels.map((s) => s.inFlight));
  }
}
