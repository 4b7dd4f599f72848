/**
 * The operator's NATS side of a Queue: apply its streams, consumers and bucket on drift, read its depth,
 * and delete everything under `deletionPolicy: Delete`. `QueueNats` is what the Queue reconciler and
 * its scale loop need; `JetStreamQueueNats` implements it over a JetStream connection and
 * `TenantQueueNats` over the connection of each Queue's namespace (accounts mode: its own account).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { QueueNames } from "../../api/naming.js";
import type { TenantNats } from "../credentials/tenant-connections.js";
import { ensureQueueResources, isConsumerNotFound, isStreamNotFound, type ResourceChange } from "../../nats/queue-resources.js";
import type { QueueSettings } from "../../nats/queue-settings.js";

/** Queue depth read from JetStream. */
export interface QueueDepth {
  /** Messages not yet delivered to any worker (`num_pending` of the worker consumer). */
  pending: number;
  /** Delivered, not yet acknowledged (`num_ack_pending`). */
  inFlight: number;
  /** Messages in the delay stream (countdown/eta not reached). */
  delayed: number;
  /** Delayed messages whose time has come (counted as backlog). */
  dueDelayed: number;
  /** Messages in the dead-letter stream. */
  deadLetters: number;
}

/** NATS operations the Queue reconciler and its scale loop need. */
export interface QueueNats {
  /** Creates missing and updates drifted streams, consumers and bucket. */
  ensure(names: QueueNames, settings: QueueSettings): Promise<ResourceChange[]>;
  /** Reads the queue's depth. */
  depth(names: QueueNames): Promise<QueueDepth>;
  /** Deletes the queue's streams and results bucket (deletionPolicy Delete). */
  remove(names: QueueNames): Promise<void>;
}

async function orZero<T>(p: Promise<T>, pick: (v: T) => number): Promise<number> {
  try {
    return pick(await p);
  } catch (err) {
    if (isStreamNotFound(err) || isConsumerNotFound(err)) return 0;
    throw err;
  }
}

/** `QueueNats` over a JetStream connection. */
export class JetStreamQueueNats implements QueueNats {
  readonly #jsm: JetStreamManager;

  constructor(jsm: JetStreamManager) {
    this.#jsm = jsm;
  }

  /**
   * Creates missing resources and updates drifted ones (the operator owns their settings).
   * @throws Error "create stream X: …" / "update consumer S/C: …" when the server refuses
   */
  ensure(names: QueueNames, settings: QueueSettings): Promise<ResourceChange[]> {
    return ensureQueueResources(this.#jsm, names, settings, { updateOnDrift: true });
  }

  /**
   * Reads the backlog: pending and ack-pending of the worker consumer (KEDA's nats-jetstream metric),
   * messages in the delay stream (those the delay consumer holds past their time count as due),
   * and the dead-letter count. Missing streams count as empty.
   * @throws Error on JetStream errors other than "not found"
   */
  async depth(names: QueueNames): Promise<QueueDepth> {
    const [consumer, delayed, dueDelayed, deadLetters] = await Promise.all([
      this.#jsm.consumers.info(names.stream, names.workerConsumer).then(
        (ci) => ({ pending: ci.num_pending, inFlight: ci.num_ack_pending }),
        (err: unknown) => {
          if (isStreamNotFound(err) || isConsumerNotFound(err)) return { pending: 0, inFlight: 0 };
          throw err;
        },
      ),
      orZero(this.#jsm.streams.info(names.delayedStream), (si) => si.state.messages),
      // Delivered to the mover but not naked yet (num_pending) means due or never looked at.
      orZero(this.#jsm.consumers.info(names.delayedStream, names.delayConsumer), (ci) => ci.num_pending),
      orZero(this.#jsm.streams.info(names.deadLetterStream), (si) => si.state.messages),
    ]);
    return { ...consumer, delayed, dueDelayed, deadLetters };
  }

  /**
   * Deletes the work, delay and dead-letter streams and the results bucket. Missing ones are fine.
   * @throws Error "delete stream X: …" on other failures
   */
  async remove(names: QueueNames): Promise<void> {
    for (const stream of [names.stream, names.delayedStream, names.deadLetterStream, `KV_${names.resultsBucket}`]) {
      try {
        await this.#jsm.streams.delete(stream);
      } catch (err) {
        if (!isStreamNotFound(err)) throw new Error(`delete stream ${stream}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

/** `QueueNats` over the connection `tenants` gives for each Queue's namespace (`names.namespace`). */
export class TenantQueueNats implements QueueNats {
  readonly #tenants: Pick<TenantNats, "forNamespace">;

  constructor(tenants: Pick<TenantNats, "forNamespace">) {
    this.#tenants = tenants;
  }

  /** As {@link JetStreamQueueNats.ensure}; also throws when the namespace's connection cannot be opened. */
  async ensure(names: QueueNames, settings: QueueSettings): Promise<ResourceChange[]> {
    return new JetStreamQueueNats((await this.#tenants.forNamespace(names.namespace)).jsm).ensure(names, settings);
  }

  /** As {@link JetStreamQueueNats.depth}; also throws when the namespace's connection cannot be opened. */
  async depth(names: QueueNames): Promise<QueueDepth> {
    return new JetStreamQueueNats((await this.#tenants.forNamespace(names.namespace)).jsm).depth(names);
  }

  /** As {@link JetStreamQueueNats.remove}; also throws when the namespace's connection cannot be opened. */
  async remove(names: QueueNames): Promise<void> {
    return new JetStreamQueueNats((await this.#tenants.forNamespace(names.namespace)).jsm).remove(names);
  }
}
