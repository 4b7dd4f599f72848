/**
 * The operator's NATS side of a Queue: apply its streams, consumers and bucket on drift, read its depth,
 * and delete everything under `deletionPolicy: Delete`. `QueueNats` is what the Queue reconciler and
 * its scale loop need; `JetStreamQueueNats` implements it over a JetStream connection and
 * `TenantQueueNats` over the connection of each Queue's namespace (accounts mode: its own account).
 *
 * Many queues' depths are read in one pass ({@link QueueNats.depthMany}): one paged `STREAM.LIST` per
 * connection gives every work, delay and dead-letter stream's message count, and consumer info is
 * asked only of queues whose streams hold messages. The work and delay streams have WorkQueue
 * retention (a message is deleted when acked), so an empty work stream means nothing pending and
 * nothing in flight, and an empty delay stream nothing due: an idle queue costs no request of its own.
 */
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import { heldNames } from "../../api/flow.js";
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
  /** When the oldest message of the work stream was stored, ms since the epoch; absent when the stream is empty. */
  oldestMs?: number;
}

/** The `oldestMs` field of a work stream's state: its first message's time when it holds any. */
function oldestOf(state: { messages: number; first_ts?: string }): { oldestMs?: number } {
  const ms = state.messages > 0 && state.first_ts ? Date.parse(state.first_ts) : NaN;
  return Number.isNaN(ms) ? {} : { oldestMs: ms };
}

/**
 * Depths of many queues keyed by {@link depthKey}: the depth, or the Error its read failed with (the
 * other queues' reads are unaffected).
 */
export type DepthResults = Map<string, QueueDepth | Error>;

/** Key of a queue in {@link DepthResults}: `namespace/queue`. */
export function depthKey(names: Pick<QueueNames, "namespace" | "queue">): string {
  return `${names.namespace}/${names.queue}`;
}

/** Batches up to this many queues are read queue by queue (5 requests each) rather than by listing every stream. */
export const LIST_THRESHOLD = 4;

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
    const [consumer, delayed, dueDelayed, deadLetters, oldest] = await Promise.all([
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
      this.#jsm.streams.info(names.stream).then((si) => oldestOf(si.state), (err: unknown) => {
        if (isStreamNotFound(err)) return {};
        throw err;
      }),
    ]);
    return { ...consumer, delayed, dueDelayed, deadLetters, ...oldest };
  }

  /**
   * Reads the depths of `names` (all on this connection): up to {@link LIST_THRESHOLD} queue by queue
   * as {@link depth}; more with one paged `STREAM.LIST` filtered to the queues' subjects (`celeriac.<ns>.>`
   * when they share a namespace), then the worker consumer's info only where the work stream holds
   * messages and the delay consumer's only where the delay stream does. Missing streams and
   * consumers count as empty.
   * @returns a depth per queue; every queue maps to the list's Error when the list fails
   */
  async depthMany(names: readonly QueueNames[]): Promise<DepthResults> {
    const out: DepthResults = new Map();
    if (names.length <= LIST_THRESHOLD) {
      await Promise.all(names.map(async (n) => {
        out.set(depthKey(n), await this.depth(n).catch((err: unknown) => asError(err, `read depth of ${n.stream}`)));
      }));
      return out;
    }
    const messages = new Map<string, number>();
    const oldest = new Map<string, { oldestMs?: number }>();
    try {
      for await (const si of this.#jsm.streams.list(subjectFilter(names)) as AsyncIterable<StreamInfo>) {
        messages.set(si.config.name, si.state.messages);
        oldest.set(si.config.name, oldestOf(si.state));
      }
    } catch (err) {
      const e = asError(err, "list streams");
      for (const n of names) out.set(depthKey(n), e);
      return out;
    }
    await Promise.all(names.map(async (n) => {
      try {
        const work = messages.get(n.stream) ?? 0;
        const delayed = messages.get(n.delayedStream) ?? 0;
        const [consumer, dueDelayed] = await Promise.all([
          work === 0 ? { pending: 0, inFlight: 0 } : this.#jsm.consumers.info(n.stream, n.workerConsumer).then(
            (ci) => ({ pending: ci.num_pending, inFlight: ci.num_ack_pending }),
            (err: unknown) => {
              if (isStreamNotFound(err) || isConsumerNotFound(err)) return { pending: 0, inFlight: 0 };
              throw err;
            },
          ),
          delayed === 0 ? 0 : orZero(this.#jsm.consumers.info(n.delayedStream, n.delayConsumer), (ci) => ci.num_pending),
        ]);
        out.set(depthKey(n), { ...consumer, delayed, dueDelayed, deadLetters: messages.get(n.deadLetterStream) ?? 0, ...oldest.get(n.stream) });
      } catch (err) {
        out.set(depthKey(n), asError(err, `read depth of ${n.stream}`));
      }
    }));
    return out;
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

/**
 * The `STREAM.LIST` subject filter that covers every stream of `names`: `celeriac.<ns>.>` when they
 * share a namespace, else `celeriac.>` (the subjects' common first token). Pure.
 */
export function subjectFilter(names: readonly Pick<QueueNames, "taskSubject">[]): string {
  const prefixes = new Set(names.map((n) => n.taskSubject.split(".").slice(0, 2).join(".")));
  if (prefixes.size === 1) return `${[...prefixes][0]}.>`;
  const first = new Set(names.map((n) => n.taskSubject.split(".")[0]));
  return first.size === 1 ? `${[...first][0]}.>` : "";
}

function asError(err: unknown, what: string): Error {
  return err instanceof Error ? err : new Error(`${what}: ${String(err)}`);
}
