/**
 * The operator's dispatchers: one {@link Dispatcher} per flow-controlled Queue (api/flow.ts
 * `isFlowControlled`), like the delay movers (operator/queue/delay-movers.ts). The Queue reconciler
 * calls `ensure` once the Queue's streams exist: it starts the dispatcher of a Queue that became
 * flow-controlled, hands a spec change to the running one (`update` → new policy), starts a fresh
 * one when the priority levels or the Queue's uid changed (or the running one broke: a held consumer
 * or its results watch ended), and drains one whose Queue is no longer
 * flow-controlled (everything held is released, then it stops). `remove` stops it when the Queue is
 * deleted; `stop` stops them all (the reconciler's stop: leadership lost or shutdown). Leader-only,
 * as everything the operator runs.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { heldNames, isFlowControlled, type QueueFlowStatus } from "../../api/flow.js";
import type { QueueNames } from "../../api/naming.js";
import type { Queue } from "../../api/objects.js";
import { isStreamNotFound } from "../../nats/queue-resources.js";
import { Dispatcher, type DispatcherOptions } from "./dispatcher.js";

interface Entry {
  dispatcher: Dispatcher;
  uid: string | undefined;
  levels: number;
  generation: number | undefined;
  /** When the task defaults were last re-read, ms. */
  refreshedAt: number;
}

/** A resync re-reads a dispatcher's task defaults at most this often, ms (a spec change always does). */
export const DEFAULTS_REFRESH_MS = 10_000;

/** The dispatchers of the Queues one reconciler manages, keyed by `namespace/name`. */
export class Dispatchers {
  readonly #jsFor: (namespace: string) => Promise<JetStreamClient>;
  readonly #log: Logger;
  readonly #onTaskWaiting: DispatcherOptions["onTaskWaiting"];
  readonly #running = new Map<string, Entry>();
  /** Dispatchers draining a Queue that is no longer flow-controlled. */
  readonly #draining = new Map<string, { dispatcher: Dispatcher; done: Promise<void> }>();
  /** Queues (by uid) whose held stream was checked for leftovers while not flow-controlled. */
  readonly #checked = new Set<string>();

  /**
   * @param jsFor the JetStream client a namespace's dispatchers use (accounts mode: the namespace's
   *   own account), as for the delay movers
   * @param log base logger; each dispatcher logs with `{namespace, name, component: "dispatcher"}`
   * @param onTaskWaiting what each dispatcher calls when a Task's task is held ≥ 1 s (the operator
   *   writes `status.waiting` on the Task)
   */
  constructor(jsFor: (namespace: string) => Promise<JetStreamClient>, log: Logger, onTaskWaiting?: DispatcherOptions["onTaskWaiting"]) {
    this.#jsFor = jsFor;
    this.#log = log;
    this.#onTaskWaiting = onTaskWaiting;
  }

  /**
   * Brings the dispatcher of `queue` in line with its spec (see the file comment). A Queue that is
   * not flow-controlled and has no dispatcher is checked once (per uid) for tasks left in its held
   * stream, e.g. by an operator restarted after flow control was turned off: those are drained.
   * Callers serialise calls per Queue (the work queue never runs two reconciles of one key).
   * @throws Error when a new dispatcher cannot start (its streams or consumers cannot be read or
   *   created, or the namespace's connection cannot be opened): nothing is kept, the next reconcile retries
   */
  async ensure(queue: Queue, names: QueueNames): Promise<void> {
    const key = `${names.namespace}/${names.queue}`;
    const entry = this.#running.get(key);
    if (!isFlowControlled(queue.spec)) {
      if (entry) {
        this.#running.delete(key);
        this.#drain(key, entry.dispatcher);
      } else if (queue.metadata.uid && !this.#checked.has(queue.metadata.uid) && !this.#draining.has(key)) {
        await this.#drainLeftovers(key, queue, names);
      }
      return;
    }
    const levels = queue.spec.priorities?.levels ?? 1;
    if (entry?.dispatcher.broken) this.#log.warn({ namespace: names.namespace, name: names.queue, reason: entry.dispatcher.broken }, "Restarting a broken dispatcher");
    if (entry && entry.uid === queue.metadata.uid && entry.levels === levels && !entry.dispatcher.broken) {
      if (entry.generation !== queue.metadata.generation) {
        entry.generation = queue.metadata.generation;
        entry.refreshedAt = Date.now();
        await entry.dispatcher.update(queue.spec);
      } else if (Date.now() - entry.refreshedAt >= DEFAULTS_REFRESH_MS) {
        // the resync: re-read the task defaults (in the background)
        entry.refreshedAt = Date.now();
        void entry.dispatcher.update(queue.spec);
      }
      return;
    }
    if (entry) {
      this.#running.delete(key);
      await entry.dispatcher.stop();
    }
    // flow control back on while a drain runs: stop it (what it has not released yet stays held for the new one)
    const draining = this.#draining.get(key);
    await draining?.dispatcher.stop();
    await draining?.done;
    const d = new Dispatcher({ js: await this.#jsFor(names.namespace), names, spec: queue.spec, ...(this.#onTaskWaiting ? { onTaskWaiting: this.#onTaskWaiting } : {}), log: this.#log.child({ namespace: names.namespace, name: names.queue, component: "dispatcher" }) });
    await d.start();
    this.#running.set(key, { dispatcher: d, uid: queue.metadata.uid, levels, generation: queue.metadata.generation, refreshedAt: Date.now() });
  }

  #drain(key: string, d: Dispatcher): void {
    const done: Promise<void> = d.drainAndStop().catch((err: unknown) => this.#log.warn({ err, queue: key }, "Failed to drain the held stream")).finally(() => {
      if (this.#draining.get(key)?.done === done) this.#draining.delete(key);
    });
    this.#draining.set(key, { dispatcher: d, done });
  }

  async #drainLeftovers(key: string, queue: Queue, names: QueueNames): Promise<void> {
    const js = await this.#jsFor(names.namespace);
    let left = 0;
    try {
      left = (await (await js.jetstreamManager()).streams.info(heldNames(names).stream)).state.messages;
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
    this.#checked.add(queue.metadata.uid!);
    if (left === 0) return;
    this.#log.info({ namespace: names.namespace, name: names.queue, held: left }, "Releasing tasks left in the held stream of a queue that is no longer flow-controlled");
    // every dispatch-<level> consumer left in the held stream is consumed (see Dispatcher.start)
    const d = new Dispatcher({ js, names, spec: queue.spec, log: this.#log.child({ namespace: names.namespace, name: names.queue, component: "dispatcher" }) });
    await d.start();
    this.#drain(key, d);
  }

  /** Stops and forgets the dispatcher of Queue `namespace/name` (deleted), draining or not. */
  async remove(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const entry = this.#running.get(key);
    this.#running.delete(key);
    await entry?.dispatcher.stop();
    const draining = this.#draining.get(key);
    await draining?.dispatcher.stop();
    await draining?.done;
  }

  /** True when Queue `namespace/name` has a running dispatcher (not counting one that drains). */
  has(namespace: string, name: string): boolean {
    return this.#running.has(`${namespace}/${name}`);
  }

  /** The Queue's flow status (`Queue.status.flow`) from its dispatcher; undefined without one. */
  status(namespace: string, name: string): QueueFlowStatus | undefined {
    return this.#running.get(`${namespace}/${name}`)?.dispatcher.status;
  }

  /** Stops every dispatcher (draining ones too); a failure of one is logged and the others still stop. */
  async stop(): Promise<void> {
    const all = [...this.#running.entries(), ...this.#draining.entries()];
    this.#running.clear();
    await Promise.all(all.map(async ([key, e]) => {
      try {
        await e.dispatcher.stop();
      } catch (err) {
        this.#log.warn({ err, queue: key }, "Failed to stop dispatcher");
      }
    }));
    await Promise.all([...this.#draining.values()].map((e) => e.done));
  }
}
