/**
 * The worker's side of a queue pause (`celeriac queue pause`, design-ops decision 2): while the
 * queue's `queue.paused` key exists the worker pulls nothing (the consumer's `holdPulls`), and a
 * message a pull opened before the pause still delivers waits here, heartbeated, without running,
 * until the resume (or the worker's shutdown, which hands it back). Tasks already running finish.
 * A resume wakes the pull loop at once (the watch delivers the delete within milliseconds).
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import type { QueuePaused } from "../api/queue-ops.js";
import { QueuePauseWatch } from "../nats/queue-pause.js";

/** Holds a worker's pulls and starts while its queue is paused. */
export class PauseGate {
  readonly #watch: QueuePauseWatch;
  readonly #log: Logger;
  readonly #onResume: () => void;
  #waiters: ((run: boolean) => void)[] = [];
  #closed = false;

  /**
   * @param kv the queue's results bucket
   * @param onResume called when the queue is resumed (the consumer resumes pulling)
   */
  constructor(kv: KV, log: Logger, onResume: () => void) {
    this.#log = log;
    this.#onResume = onResume;
    this.#watch = new QueuePauseWatch(kv, log, (p) => this.#changed(p));
  }

  /** True while the queue is paused: pull nothing, start nothing. */
  get holding(): boolean {
    return !this.#closed && this.#watch.paused !== undefined;
  }

  /**
   * Starts following the pause; resolves once its current state is known, so a worker started while
   * its queue is paused never pulls.
   * @throws the nats.js error when the watch cannot be set up
   */
  start(): Promise<void> {
    return this.#watch.start();
  }

  /**
   * Waits until the queue runs.
   * @returns true at once when it runs; true on the resume; false when the gate closed first (shutdown)
   */
  runnable(): Promise<boolean> | true {
    if (!this.holding) return true;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #changed(p: QueuePaused | undefined): void {
    if (p) {
      this.#log.info({ pausedAt: p.at, by: p.by, reason: p.reason }, "Queue paused; pulling nothing until it is resumed");
      return;
    }
    this.#log.info("Queue resumed");
    this.#waiters.splice(0).forEach((w) => w(true));
    this.#onResume();
  }

  /** Stops following the pause; waiting deliveries are released with `false` (handed back). */
  stop(): void {
    this.#closed = true;
    this.#watch.stop();
    this.#waiters.splice(0).forEach((w) => w(false));
  }
}
