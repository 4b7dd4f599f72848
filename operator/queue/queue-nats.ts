/**
 * The operator's NATS side of a Queue: apply its streams, consumers and bucket on drift, read its depth,
 * and delete everything under `deletionPolicy: Delete`. `QueueNats` is what the Queue reconciler and
 * its scale loop need; `JetStreamQueueNats` implements it over a JetStream connection and
 * `TenantQueueNats` over the connection of each Queue's namespace (accounts mode: its own account).
 *
 * The depth reads are nats/queue-depth.ts (shared with `celeriac queue status`): many queues' depths
 * in one pass, an idle queue costing no request of its own (see that file).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { heldNames } from "../../api/flow.js";
import type { QueueNames } from "../../api/naming.js";
import type { TenantNats } from "../credentials/tenant-connections.js";
import { ensureQueueResources, isStreamNotFound, type ResourceChange } from "../../nats/queue-resources.js";
import type { QueueSettings } from "../../nats/queue-settings.js";
import { depthKey, readQueueDepth, readQueueDepths, type DepthResults, type QueueDepth } from "../../nats/queue-depth.js";

export { depthKey, LIST_THRESHOLD, subjectFilter, type DepthResults, type QueueDepth } from "../../nats/queue-depth.js";

/** NATS operations the Queue reconciler and its scale loop need. */
export interface QueueNats {
  /** Creates missing and updates drifted streams, consumers and bucket. */
  ensure(names: QueueNames, settings: QueueSettings): Promise<ResourceChange[]>;
  /** Reads the queue's depth. */
  depth(names: QueueNames): Promise<QueueDepth>;
  /**
   * Reads many queues' depths in one pass (see the file comment); never rejects for one queue's failure.
   * @returns a depth or an Error for every queue of `names`
   */
  depthMany(names: readonly QueueNames[]): Promise<DepthResults>;
  /** Deletes the queue's streams (the held stream of flow control too) and results bucket (deletionPolicy Delete). */
  remove(names: QueueNames): Promise<void>;
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

  /** As nats/queue-depth.ts `readQueueDepth`. @throws Error on JetStream errors other than "not found" */
  depth(names: QueueNames): Promise<QueueDepth> {
    return readQueueDepth(this.#jsm, names);
  }

  /** As nats/queue-depth.ts `readQueueDepths` (one pass). Never rejects for one queue's failure. */
  depthMany(names: readonly QueueNames[]): Promise<DepthResults> {
    return readQueueDepths(this.#jsm, names);
  }

  /**
   * Deletes the work, delay, dead-letter and held (flow control) streams and the results bucket.
   * Missing ones are fine.
   * @throws Error "delete stream X: …" on other failures
   */
  async remove(names: QueueNames): Promise<void> {
    for (const stream of [names.stream, names.delayedStream, names.deadLetterStream, heldNames(names).stream, `KV_${names.resultsBucket}`]) {
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

  /**
   * As {@link JetStreamQueueNats.depthMany}, one pass per connection: the queues are grouped by their
   * namespace's connection (one group in shared mode, one per namespace in accounts mode). A
   * namespace whose connection cannot be opened maps its queues to that Error.
   */
  async depthMany(names: readonly QueueNames[]): Promise<DepthResults> {
    const out: DepthResults = new Map();
    const byNamespace = new Map<string, QueueNames[]>();
    for (const n of names) byNamespace.set(n.namespace, [...(byNamespace.get(n.namespace) ?? []), n]);
    const byConnection = new Map<JetStreamManager, QueueNames[]>();
    await Promise.all([...byNamespace].map(async ([ns, group]) => {
      try {
        const { jsm } = await this.#tenants.forNamespace(ns);
        byConnection.set(jsm, [...(byConnection.get(jsm) ?? []), ...group]);
      } catch (err) {
        const e = asError(err, `open the NATS connection of namespace ${ns}`);
        for (const n of group) out.set(depthKey(n), e);
      }
    }));
    await Promise.all([...byConnection].map(async ([jsm, group]) => {
      for (const [k, v] of await new JetStreamQueueNats(jsm).depthMany(group)) out.set(k, v);
    }));
    return out;
  }

  /** As {@link JetStreamQueueNats.remove}; also throws when the namespace's connection cannot be opened. */
  async remove(names: QueueNames): Promise<void> {
    return new JetStreamQueueNats((await this.#tenants.forNamespace(names.namespace)).jsm).remove(names);
  }
}

function asError(err: unknown, what: string): Error {
  return err instanceof Error ? err : new Error(`${what}: ${String(err)}`);
}
