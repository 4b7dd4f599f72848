/**
 * The consumer side of the worker: the pull loop over the queue's shared durable consumer, the
 * free-slot accounting that bounds concurrency, and one shared ticker over the messages in work
 * (heartbeat, time limit, delayed `Running` record) instead of a timer per task.
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { backoffDelay, PULL_BACKOFF } from "./outcome.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A message this worker holds, from delivery until it is settled (or handling fails). The ticker
 * calls `msg.working()` on it every `heartbeatMs`, and runs the two one-shot callbacks when due.
 */
export interface InFlight {
  /** The message. */
  readonly msg: JsMsg;
  /** When this worker received it (ms epoch). */
  readonly receivedAt: number;
  /** When it was last heartbeated (ms epoch). */
  last: number;
  /** When to write the `Running` record (ms epoch), and the writer; cleared once done. */
  runningDueAt?: number;
  writeRunning?: (() => void) | undefined;
  /** The attempt's time limit (ms epoch), and what to do then; cleared once done. */
  deadlineAt?: number;
  onDeadline?: (() => void) | undefined;
}

/** What a `TaskConsumer` needs. Times in ms. */
export interface TaskConsumerOptions {
  /** The queue's worker consumer. */
  readonly consumer: Consumer;
  /** Most messages in work at once (≥ 1). */
  readonly concurrency: number;
  /** Pull request expiry, in ms; also bounds how long `stop()` waits for the last pull. */
  readonly fetchExpiresMs: number;
  /** Heartbeat interval, in ms (a third of the consumer's ack wait). */
  readonly heartbeatMs: number;
  /** The worker's logger. */
  readonly log: Logger;
  /** Handles one delivered message until it is settled; a rejection is logged (the message is redelivered). */
  readonly process: (m: JsMsg, f: InFlight) => Promise<void>;
  /** Called with the new in-flight count whenever it changes. */
  readonly onInFlightChange: (inFlight: number) => void;
  /** While true, nothing new is pulled (an attempt waits to run alone, or runs alone); call `resumePulls()` when it turns false. */
  readonly holdPulls?: () => boolean;
}

/**
 * Hands a message back unsettled: nak with no delay, no record and no outcome, so another worker runs
 * it at once. Used only at shutdown (a message the last pull delivered after shutdown began, or an
 * attempt abandoned at the end of the grace period); every outcome is settled in settle.ts instead.
 */
export function handBack(m: JsMsg): void {
  m.nak();
}

/** Pulls messages into free slots and keeps the ones in work alive. */
export class TaskConsumer {
  readonly #o: TaskConsumerOptions;
  readonly #refillThreshold: number;
  /** Messages in work: heartbeated by the shared ticker. */
  readonly #held = new Set<InFlight>();
  #ticker: NodeJS.Timeout | undefined;
  /** Slots reserved by open pull requests and not yet delivered. */
  #requested = 0;
  #inFlight = 0;
  #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #stopping = false;
  #loop: Promise<void> | undefined;

  /** @param options kept as given */
  constructor(options: TaskConsumerOptions) {
    this.#o = options;
    this.#refillThreshold = Math.max(1, Math.floor(options.concurrency / 4));
  }

  /** Messages in work now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The messages in work now, from delivery until settled (a snapshot, for the control report). */
  held(): InFlight[] {
    return [...this.#held];
  }

  /** Starts the ticker and the pull loop. */
  start(): void {
    this.#ticker = setInterval(() => this.#tick(), Math.max(20, Math.min(250, Math.floor(this.#o.heartbeatMs / 2))));
    this.#loop = this.#pullLoop();
  }

  /** Stops pulling; resolves when the last pull has ended (within `fetchExpiresMs`). Never rejects. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#slotWaiters.splice(0).forEach((r) => r());
    await this.#loop;
  }

  /** Resolves when no message is in work, or after `ms` milliseconds, whichever comes first. */
  async idle(ms: number): Promise<void> {
    if (this.#inFlight === 0) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.#idleWaiters.push(r)), new Promise<void>((r) => (t = setTimeout(r, Math.max(0, ms))))]);
    clearTimeout(t);
  }

  /** Wakes the pull loop after `holdPulls` turned false. */
  resumePulls(): void {
    this.#slotWaiters.splice(0).forEach((r) => r());
  }

  /** Stops the ticker: no more heartbeats, time limits or `Running` records. */
  stopTicker(): void {
    clearInterval(this.#ticker);
  }

  #tick(): void {
    const now = Date.now();
    for (const f of this.#held) {
      if (now - f.last >= this.#o.heartbeatMs) {
        f.msg.working();
        f.last = now;
      }
      if (f.onDeadline && f.deadlineAt !== undefined && now >= f.deadlineAt) {
        const d = f.onDeadline;
        f.onDeadline = undefined;
        d();
      }
      if (f.writeRunning && f.runningDueAt !== undefined && now >= f.runningDueAt) {
        const w = f.writeRunning;
        f.writeRunning = undefined;
        w();
      }
    }
  }

  /**
   * Pulls exactly the free slots: each pull request asks for at most the slots neither running nor
   * already requested, so nothing waits in this worker for a slot (no prefetch starving other
   * workers). Several pulls may be open at once, so a refill overlaps the work in flight. While
   * busy, refills wait for a quarter of the slots rather than pull one by one.
   */
  async #pullLoop(): Promise<void> {
    const open = new Set<Promise<void>>();
    let failures = 0;
    while (!this.#stopping) {
      const avail = this.#o.concurrency - this.#inFlight - this.#requested;
      if (avail <= 0 || (this.#inFlight + this.#requested > 0 && avail < this.#refillThreshold) || this.#o.holdPulls?.()) {
        await new Promise<void>((r) => this.#slotWaiters.push(r));
        continue;
      }
      if (failures > 0) await sleep(backoffDelay(failures, PULL_BACKOFF));
      if (this.#stopping) break;
      this.#requested += avail;
      let iter: Awaited<ReturnType<Consumer["fetch"]>>;
      try {
        iter = await this.#o.consumer.fetch({ max_messages: avail, expires: this.#o.fetchExpiresMs });
      } catch (err) {
        this.#requested -= avail;
        failures++;
        this.#o.log.warn({ err, failures }, "Pull failed; retrying");
        continue;
      }
      const reader = (async () => {
        let got = 0;
        try {
          for await (const m of iter) {
            got++;
            this.#requested--;
            // Stopping: a message the last pull still delivers is handed back at once so another
            // worker runs it; starting it here would delay this worker's exit.
            if (this.#stopping) handBack(m);
            else this.#dispatch(m);
          }
          failures = 0;
        } catch (err) {
          failures++;
          if (!this.#stopping) this.#o.log.warn({ err, failures }, "Pull failed; retrying");
        } finally {
          this.#requested -= avail - got;
          this.#slotWaiters.splice(0).forEach((r) => r());
        }
      })();
      open.add(reader);
      void reader.finally(() => open.delete(reader));
    }
    // the last pulls end within fetchExpiresMs; what they still deliver is handed back (see the reader)
    await Promise.all(open);
  }

  #setInFlight(delta: number): void {
    this.#inFlight += delta;
    this.#o.onInFlightChange(this.#inFlight);
    if (delta < 0) {
      this.#slotWaiters.splice(0).forEach((r) => r());
      if (this.#inFlight === 0) this.#idleWaiters.splice(0).forEach((r) => r());
    }
  }

  #dispatch(m: JsMsg): void {
    this.#setInFlight(+1);
    const now = Date.now();
    const f: InFlight = { msg: m, last: now, receivedAt: now };
    this.#held.add(f);
    void this.#o
      .process(m, f)
      .catch((err) => this.#o.log.error({ err, seq: m.seq }, "Task message handling failed; it will be redelivered"))
      .finally(() => {
        this.#held.delete(f);
        this.#setInFlight(-1);
      });
  }
}
