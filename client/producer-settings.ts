/**
 * A Queue's producer settings as the client sees them: read from key `queue.settings` of the
 * queue's results bucket (written by the operator) once, on the queue's first use, then used from
 * memory and re-read in the background when older than the refresh interval (a TTL, not a watch:
 * no server-side consumer per client and queue, and the enqueue never waits for the re-read).
 * No key (a standalone queue) means the built-in defaults and no flow control.
 */
import type { KV } from "@nats-io/kv";
import type { ProducerFlow } from "../api/flow.js";
import { QUEUE_SETTINGS_KEY } from "../api/naming.js";
import { parseQueueProducerSettings, producerQueueSpec } from "../api/queue-settings.js";
import type { QueueSpec } from "../api/queue.js";

/** Default refresh interval of a queue's producer settings, ms. */
export const DEFAULT_SETTINGS_REFRESH_MS = 30_000;

/** One queue's producer settings, cached. */
export class ProducerSettings {
  readonly #kv: KV;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #spec: Pick<QueueSpec, "timeoutSeconds" | "retry"> | undefined;
  #flow: ProducerFlow | undefined;
  #readAt = 0;
  #reading: Promise<void> | undefined;

  constructor(kv: KV, refreshMs = DEFAULT_SETTINGS_REFRESH_MS, now: () => number = Date.now) {
    this.#kv = kv;
    this.#refreshMs = refreshMs;
    this.#now = now;
  }

  /**
   * Reads the key (the first read; awaited on the queue's first use).
   * @throws Error "read queue.settings: …" when the bucket cannot be read
   */
  async load(): Promise<void> {
    try {
      await this.#read();
    } catch (err) {
      throw new Error(`read ${QUEUE_SETTINGS_KEY}: ${(err as Error).message}`, { cause: err });
    }
  }

  async #read(): Promise<void> {
    const e = await this.#kv.get(QUEUE_SETTINGS_KEY);
    this.#readAt = this.#now();
    if (e?.operation !== "PUT") return; // none (standalone) or expired: keep what was known
    const parsed = parseQueueProducerSettings(e.value);
    // a value this client cannot read (another version) leaves the defaults: never fail an enqueue on it
    this.#spec = "settings" in parsed ? producerQueueSpec(parsed.settings) : undefined;
    this.#flow = "settings" in parsed ? parsed.settings.flow : undefined;
  }

  /**
   * The Queue's defaults as `newTaskMessage`'s `queueSpec`, or undefined for the built-in ones.
   * Starts a background re-read when the value is older than the refresh interval.
   */
  queueSpec(): Pick<QueueSpec, "timeoutSeconds" | "retry"> | undefined {
    if (!this.#reading && this.#now() - this.#readAt >= this.#refreshMs) {
      this.#reading = this.#read()
        .catch(() => undefined) // keep the last value; the next enqueue after the interval tries again
        .finally(() => (this.#reading = undefined));
    }
    return this.#spec;
  }

  /**
   * The Queue's flow settings (`producerFlow` of its spec: priority levels, default priority, key
   * source), or undefined when the queue is not flow-controlled (or has no settings). As fresh as
   * the last read: a Queue that turned flow-controlled is seen within the refresh interval.
   * Starts a background re-read as `queueSpec()` does.
   */
  flow(): ProducerFlow | undefined {
    this.queueSpec();
    return this.#flow;
  }
}
