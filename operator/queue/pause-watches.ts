/**
 * The operator's view of Queue pauses (`celeriac queue pause`, design-ops decision 2): one
 * {@link QueuePauseWatch} of the `queue.paused` key per live Queue, so the scale loop knows at once
 * (no request per polling interval) that it must hold the worker count and write `status.paused`.
 * A flip calls `onChange` (the scale loop reads at once). The Queue reconciler starts a Queue's
 * watch once its streams exist and stops it when the Queue is deleted or the reconciler stops.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import type { QueueNames } from "../../api/naming.js";
import type { QueuePaused } from "../../api/queue-ops.js";
import { QueuePauseWatch } from "../../nats/queue-pause.js";

/** The pause watches of the Queues one reconciler manages, keyed by `namespace/name`. */
export class PauseWatches {
  readonly #jsFor: (namespace: string) => Promise<JetStreamClient>;
  readonly #log: Logger;
  readonly #onChange: (namespace: string, name: string) => void;
  readonly #watches = new Map<string, QueuePauseWatch>();

  /**
   * @param jsFor the JetStream client of a namespace (accounts mode: its own account)
   * @param onChange called when Queue `namespace/name` turns paused or running
   */
  constructor(jsFor: (namespace: string) => Promise<JetStreamClient>, log: Logger, onChange: (namespace: string, name: string) => void) {
    this.#jsFor = jsFor;
    this.#log = log;
    this.#onChange = onChange;
  }

  /**
   * Starts the watch of Queue `namespace/name` unless it runs; resolves once its state is known.
   * Callers serialise calls per Queue (the work queue never runs two reconciles of one key).
   * @throws the nats.js error when the results bucket cannot be opened or watched: the watch is not kept
   */
  async ensure(namespace: string, name: string, names: QueueNames): Promise<void> {
    const key = `${namespace}/${name}`;
    if (this.#watches.has(key)) return;
    const kv = await new Kvm(await this.#jsFor(namespace)).open(names.resultsBucket);
    const log = this.#log.child({ namespace, name, component: "pause-watch" });
    const w = new QueuePauseWatch(kv, log, (p) => {
      log.info({ paused: p !== undefined, reason: p?.reason }, p ? "Queue paused: holding the worker count" : "Queue resumed");
      this.#onChange(namespace, name);
    });
    this.#watches.set(key, w); // before start: a flip during start reads the watch's state
    try {
      await w.start();
    } catch (err) {
      w.stop();
      this.#watches.delete(key);
      throw err;
    }
  }

  /** The pause of Queue `namespace/name`, or undefined when it runs (or is not watched). */
  paused(namespace: string, name: string): QueuePaused | undefined {
    return this.#watches.get(`${namespace}/${name}`)?.paused;
  }

  /** Stops and forgets the watch of Queue `namespace/name`, if any. */
  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.#watches.get(key)?.stop();
    this.#watches.delete(key);
  }

  /** Stops every watch. */
  stop(): void {
    for (const w of this.#watches.values()) w.stop();
    this.#watches.clear();
  }
}
