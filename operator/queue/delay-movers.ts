/**
 * The operator's delay movers: one {@link DelayMover} per live Queue, so countdown/eta tasks reach
 * the work stream even while the queue's workers are scaled to zero (workers run their own movers
 * on the same durable consumer when there is no operator). The Queue reconciler starts a Queue's
 * mover once its streams exist and stops it when the Queue is deleted or the reconciler stops.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { QueueNames } from "../../api/naming.js";
import { DelayMover } from "../../nats/delay-mover.js";

/** The delay movers of the Queues one reconciler manages, keyed by `namespace/name`. */
export class DelayMovers {
  readonly #jsFor: (namespace: string) => Promise<JetStreamClient>;
  readonly #log: Logger;
  readonly #movers = new Map<string, DelayMover>();

  /**
   * @param jsFor the JetStream client a namespace's movers consume and publish with (accounts mode:
   *   the namespace's own account)
   * @param log base logger; each mover logs with `{namespace, name}`
   */
  constructor(jsFor: (namespace: string) => Promise<JetStreamClient>, log: Logger) {
    this.#jsFor = jsFor;
    this.#log = log;
  }

  /**
   * Starts the mover of Queue `namespace/name` unless it runs. Callers serialise calls per Queue (the
   * work queue never runs two reconciles of one key).
   * @throws Error when the delay consumer cannot be read (its stream is missing) or the namespace's
   *   connection cannot be opened: the mover is not kept
   */
  async ensure(namespace: string, name: string, names: QueueNames): Promise<void> {
    const key = `${namespace}/${name}`;
    if (this.#movers.has(key)) return;
    const mover = new DelayMover(await this.#jsFor(namespace), names, this.#log.child({ namespace, name, component: "delay-mover" }));
    await mover.start();
    this.#movers.set(key, mover);
  }

  /** Stops and forgets the mover of Queue `namespace/name`, if any. */
  async remove(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const mover = this.#movers.get(key);
    if (!mover) return;
    this.#movers.delete(key);
    await mover.stop();
  }

  /** True when Queue `namespace/name` has a running mover. */
  has(namespace: string, name: string): boolean {
    return this.#movers.has(`${namespace}/${name}`);
  }

  /** Stops every mover; a failure of one is logged and the others still stop. */
  async stop(): Promise<void> {
    const all = [...this.#movers.entries()];
    this.#movers.clear();
    await Promise.all(all.map(async ([key, m]) => {
      try {
        await m.stop();
      } catch (err) {
        this.#log.warn({ err, queue: key }, "Failed to stop delay mover");
      }
    }));
  }
}
