/**
 * A queue's depth read from JetStream: the one implementation behind the operator's scale loop
 * (operator/queue/queue-nats.ts, scale-loop.ts) and `celeriac queue list|status` (cli/commands/queue.ts).
 *
 * Many queues' depths are read in one pass ({@link readQueueDepths}): one paged `STREAM.LIST` per
 * connection gives every work, delay and dead-letter stream's message count, and consumer info is
 * asked only of queues whose streams hold messages. The work and delay streams have WorkQueue
 * retention (a message is deleted when acked), so an empty work stream means nothing pending and
 * nothing in flight, and an empty delay stream nothing due: an idle queue costs no request of its own.
 */
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import type { QueueNames } from "../api/naming.js";
import { isConsumerNotFound, isStreamNotFound } from "./queue-resources.js";

/** Queue depth read from JetStream. Counts are messages (one per task). */
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
  /**
   * When the oldest message of the work stream was stored (its `first_ts`), ms since the epoch; absent
   * when the stream is empty. A delivered, unacked message counts: this is the oldest task not done.
   */
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

async function orZero<T>(p: Promise<T>, pick: (v: T) => number): Promise<number> {
  try {
    return pick(await p);
  } catch (err) {
    if (isStreamNotFound(err) || isConsumerNotFound(err)) return 0;
    throw err;
  }
}

function workerCounts(jsm: JetStreamManager, n: QueueNames): Promise<{ pending: number; inFlight: number }> {
  return jsm.consumers.info(n.stream, n.workerConsumer).then(
    (ci) => ({ pending: ci.num_pending, inFlight: ci.num_ack_pending }),
    (err: unknown) => {
      if (isStreamNotFound(err) || isConsumerNotFound(err)) return { pending: 0, inFlight: 0 };
      throw err;
    },
  );
}

/**
 * Reads the backlog of one queue: pending and ack-pending of the worker consumer (KEDA's
 * nats-jetstream metric), messages in the delay stream (those the delay consumer holds past their
 * time count as due), the dead-letter count and the work stream's oldest message time. Missing
 * streams count as empty. 5 requests.
 * @throws Error on JetStream errors other than "not found"
 */
export async function readQueueDepth(jsm: JetStreamManager, names: QueueNames): Promise<QueueDepth> {
  const [consumer, delayed, dueDelayed, deadLetters, oldest] = await Promise.all([
    workerCounts(jsm, names),
    orZero(jsm.streams.info(names.delayedStream), (si) => si.state.messages),
    // Delivered to the mover but not naked yet (num_pending) means due or never looked at.
    orZero(jsm.consumers.info(names.delayedStream, names.delayConsumer), (ci) => ci.num_pending),
    orZero(jsm.streams.info(names.deadLetterStream), (si) => si.state.messages),
    jsm.streams.info(names.stream).then((si) => oldestOf(si.state), (err: unknown) => {
      if (isStreamNotFound(err)) return {};
      throw err;
    }),
  ]);
  return { ...consumer, delayed, dueDelayed, deadLetters, ...oldest };
}

/**
 * Reads the depths of `names` (all on `jsm`'s connection): up to {@link LIST_THRESHOLD} queue by
 * queue as {@link readQueueDepth}; more with one paged `STREAM.LIST` filtered to the queues'
 * subjects (`celeriac.<ns>.>` when they share a namespace), then the worker consumer's info only
 * where the work stream holds messages and the delay consumer's only where the delay stream does.
 * Missing streams and consumers count as empty. Never rejects for one queue's failure.
 * @returns a depth per queue; every queue maps to the list's Error when the list fails
 */
export async function readQueueDepths(jsm: JetStreamManager, names: readonly QueueNames[]): Promise<DepthResults> {
  const out: DepthResults = new Map();
  if (names.length <= LIST_THRESHOLD) {
    await Promise.all(names.map(async (n) => {
      out.set(depthKey(n), await readQueueDepth(jsm, n).catch((err: unknown) => asError(err, `read depth of ${n.stream}`)));
    }));
    return out;
  }
  const messages = new Map<string, number>();
  const oldest = new Map<string, { oldestMs?: number }>();
  try {
    for await (const si of jsm.streams.list(subjectFilter(names)) as AsyncIterable<StreamInfo>) {
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
        work === 0 ? { pending: 0, inFlight: 0 } : workerCounts(jsm, n),
        delayed === 0 ? 0 : orZero(jsm.consumers.info(n.delayedStream, n.delayConsumer), (ci) => ci.num_pending),
      ]);
      out.set(depthKey(n), { ...consumer, delayed, dueDelayed, deadLetters: messages.get(n.deadLetterStream) ?? 0, ...oldest.get(n.stream) });
    } catch (err) {
      out.set(depthKey(n), asError(err, `read depth of ${n.stream}`));
    }
  }));
  return out;
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
