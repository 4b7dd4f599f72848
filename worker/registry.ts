/**
 * The worker's entry in its queue's worker registry (api/control.ts): key `worker.<token>` in the
 * results bucket, written at start and every `REGISTRY_HEARTBEAT_MS` (10 s) with a fresh
 * `lastSeen`, deleted on graceful close. `celeriac inspect` lists a live entry that did not answer
 * as not answering. Writes are fire-and-forget from a timer: a failing one is logged, never awaited
 * by task processing.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { CONTROL_VERSION, REGISTRY_HEARTBEAT_MS, workerRegistryKey, type WorkerRegistryEntry } from "../api/control.js";

/** What a `WorkerRegistration` needs. */
export interface WorkerRegistrationOptions {
  /** The queue's results bucket. */
  readonly kv: KV;
  /** The entry's fields but `v` and `lastSeen`. */
  readonly entry: Omit<WorkerRegistryEntry, "v" | "lastSeen">;
  /** The worker's logger. */
  readonly log: Logger;
  /** Heartbeat interval, in ms (tests). Default `REGISTRY_HEARTBEAT_MS`. */
  readonly intervalMs?: number;
}

/** Keeps one worker's registry entry fresh. */
export class WorkerRegistration {
  readonly #o: WorkerRegistrationOptions;
  readonly key: string;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #writing: Promise<void> | undefined;

  /** @param options kept as given */
  constructor(options: WorkerRegistrationOptions) {
    this.#o = options;
    this.key = workerRegistryKey(options.entry.name);
  }

  /**
   * Starts the heartbeat and writes the entry once now.
   * @throws the KV error when the first write fails (the heartbeat keeps trying: the caller logs it and goes on)
   */
  async start(): Promise<void> {
    this.#timer = setInterval(() => {
      if (this.#writing) return;
      this.#writing = this.#write()
        .then(() => {
          if (this.#failures > 0) this.#o.log.info({ key: this.key, failures: this.#failures }, "Registry heartbeat recovered");
          this.#failures = 0;
        })
        .catch((err: unknown) => {
          if (this.#failures++ === 0) this.#o.log.warn({ err, key: this.key }, "Registry heartbeat failed");
        })
        .finally(() => (this.#writing = undefined));
    }, this.#o.intervalMs ?? REGISTRY_HEARTBEAT_MS);
    this.#timer.unref();
    await this.#write();
  }

  async #write(): Promise<void> {
    const value: WorkerRegistryEntry = { v: CONTROL_VERSION, ...this.#o.entry, lastSeen: new Date().toISOString() };
    await this.#o.kv.put(this.key, JSON.stringify(value));
  }

  /** Stops the heartbeat and deletes the entry. Never rejects (a failed delete is logged: the entry goes stale in 30 s). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    try {
      await this.#o.kv.delete(this.key);
    } catch (err) {
      this.#o.log.warn({ err, key: this.key }, "Registry entry delete failed; it goes stale");
    }
  }
}
