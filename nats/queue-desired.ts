/**
 * Pure desired state of a queue's NATS resources: settings in, JetStream configs out. The worker and
 * client create what is missing from these; the operator applies them on drift
 * (see `ensureQueueResources`).
 *
 * Resources per queue (names from `api/naming.ts`):
 * - work stream (WorkQueue retention, duplicate window) with the durable `workers` pull consumer;
 * - delayed stream (WorkQueue retention) with the durable `delay-mover` consumer, which naks each
 *   message with the time left until due and moves it to the work stream when due;
 * - dead-letter stream (limits retention, max age);
 * - results bucket (KV, history 1, TTL = results TTL), also holding `revoked.<id>` markers;
 * - flow-controlled queues only (`settings.flow`, api/flow.ts): the held stream (WorkQueue
 *   retention, subjects `celeriac.<ns>.<q>.held.*`) with one durable `dispatch-<level>` pull
 *   consumer per priority level, read by the operator's dispatcher (operator/flow/dispatcher.ts).
 */
import { AckPolicy, DeliverPolicy, DiscardPolicy, ReplayPolicy, RetentionPolicy, StorageType, type ConsumerConfig, type StreamConfig } from "@nats-io/jetstream";
import { heldNames, heldSubject } from "../api/flow.js";
import type { QueueNames } from "../api/naming.js";
import { parseGoDuration, type QueueSettings } from "./queue-settings.js";

const S = 1_000_000_000;

/** The stream fields Celeriac manages; others keep the server's defaults. */
export type ManagedStreamConfig = Pick<
  StreamConfig,
  "name" | "subjects" | "retention" | "storage" | "num_replicas" | "duplicate_window" | "max_age" | "discard" | "max_msgs" | "max_bytes" | "allow_direct"
>;

/** The consumer fields Celeriac manages. */
export type ManagedConsumerConfig = Pick<
  ConsumerConfig,
  "durable_name" | "ack_policy" | "ack_wait" | "max_deliver" | "max_ack_pending" | "filter_subject" | "deliver_policy" | "replay_policy" | "max_waiting"
>;

/** Ack wait of the delay-mover consumer, in seconds: a moved message is acked well within it. */
export const DELAY_MOVER_ACK_WAIT_SECONDS = 30;

function storage(s: QueueSettings): StorageType {
  return s.storage === "memory" ? StorageType.Memory : StorageType.File;
}

/** Work stream: WorkQueue retention on the task subject; a message is deleted when acked. */
export function desiredStreamConfig(names: QueueNames, s: QueueSettings): ManagedStreamConfig {
  return {
    name: names.stream,
    subjects: [names.taskSubject],
    retention: RetentionPolicy.Workqueue,
    storage: storage(s),
    num_replicas: s.replicas,
    duplicate_window: parseGoDuration(s.duplicateWindow),
    max_age: 0,
    max_msgs: -1,
    max_bytes: -1,
    discard: DiscardPolicy.Old,
    allow_direct: false,
  };
}

/**
 * Delayed stream: tasks with a countdown/eta wait here, not unacked in a worker. It has its own
 * duplicate window, so a delayed task moved to the work stream under its task id is not dropped as a
 * duplicate of its own enqueue (that id was recorded by this stream, not the work stream).
 */
export function desiredDelayedStreamConfig(names: QueueNames, s: QueueSettings): ManagedStreamConfig {
  return { ...desiredStreamConfig(names, s), name: names.delayedStream, subjects: [names.delayedSubject] };
}

/** Dead-letter stream: limits retention, messages kept for `deadLetterMaxAge`. */
export function desiredDeadLetterStreamConfig(names: QueueNames, s: QueueSettings): ManagedStreamConfig {
  return {
    name: names.deadLetterStream,
    subjects: [names.deadLetterSubject],
    retention: RetentionPolicy.Limits,
    storage: storage(s),
    num_replicas: s.replicas,
    duplicate_window: parseGoDuration(s.duplicateWindow),
    max_age: parseGoDuration(s.deadLetterMaxAge),
    max_msgs: -1,
    max_bytes: -1,
    discard: DiscardPolicy.Old,
    allow_direct: true,
  };
}

/**
 * The workers' shared durable pull consumer. `max_deliver` is unlimited: the worker enforces each
 * task's own `maxAttempts` from the delivery count and dead-letters the message itself.
 */
export function desiredWorkerConsumerConfig(names: QueueNames, s: QueueSettings): ManagedConsumerConfig {
  return {
    durable_name: names.workerConsumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: Math.round(s.ackWaitSeconds * S),
    max_deliver: -1,
    max_ack_pending: s.maxAckPending,
    filter_subject: names.taskSubject,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    max_waiting: 512,
  };
}

/**
 * The delay mover's durable pull consumer: naked messages stay pending until due, so unlimited
 * deliveries and unlimited ack-pending (-1).
 */
export function desiredDelayConsumerConfig(names: QueueNames, _s: QueueSettings): ManagedConsumerConfig {
  return {
    durable_name: names.delayConsumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: DELAY_MOVER_ACK_WAIT_SECONDS * S,
    max_deliver: -1,
    max_ack_pending: -1,
    filter_subject: names.delayedSubject,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    max_waiting: 512,
  };
}

/** Ack wait of the dispatch consumers, in seconds: the dispatcher heartbeats (`working`) what it holds longer. */
export const HELD_ACK_WAIT_SECONDS = 300;

/**
 * The dispatcher's read-ahead window per priority level: `max_ack_pending` of each dispatch
 * consumer, i.e. the most held tasks of one level the dispatcher keeps in memory (unacked) at once.
 * Priority order and fairness between keys hold among the tasks inside the window; a level with
 * more held tasks than this releases the rest in stream order as the window moves on.
 */
export const FLOW_WINDOW = 10_000;

/**
 * Held stream of a flow-controlled queue: as the work stream (WorkQueue retention, same storage,
 * replicas and duplicate window of its own, so the dispatcher's release to the work stream under
 * the task id is not dropped as a duplicate of the enqueue), on subjects `<held prefix>.*` (one per
 * priority level).
 */
export function desiredHeldStreamConfig(names: QueueNames, s: QueueSettings): ManagedStreamConfig {
  const held = heldNames(names);
  return { ...desiredStreamConfig(names, s), name: held.stream, subjects: [`${held.subjectPrefix}.*`] };
}

/**
 * The dispatcher's durable pull consumer of priority `level` (`dispatch-<level>`, filter
 * `<held prefix>.<level>`): explicit acks (the dispatcher acks a held task once the work stream has
 * it), ack wait {@link HELD_ACK_WAIT_SECONDS}, unlimited deliveries, {@link FLOW_WINDOW} ack-pending.
 */
export function desiredHeldConsumerConfig(names: QueueNames, level: number): ManagedConsumerConfig {
  return {
    durable_name: `${heldNames(names).consumerPrefix}${level}`,
    ack_policy: AckPolicy.Explicit,
    ack_wait: HELD_ACK_WAIT_SECONDS * S,
    max_deliver: -1,
    max_ack_pending: FLOW_WINDOW,
    filter_subject: heldSubject(names, level),
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    max_waiting: 512,
  };
}

/** Desired results bucket: name, TTL in milliseconds (KV `ttl`), one value per key. */
export interface ResultsBucketConfig {
  bucket: string;
  /** Time to live of every entry, in milliseconds. */
  ttlMs: number;
  history: 1;
  replicas: number;
  storage: StorageType;
}

/** Results bucket: TTL = the queue's results TTL. */
export function desiredResultsBucket(names: QueueNames, s: QueueSettings): ResultsBucketConfig {
  return { bucket: names.resultsBucket, ttlMs: s.resultsTtlSeconds * 1000, history: 1, replicas: s.replicas, storage: storage(s) };
}

/** One field that differs between desired and live config. */
export interface FieldDrift {
  field: string;
  desired: unknown;
  live: unknown;
}

/**
 * Compares the managed fields of a desired config with a live one (arrays compared as sets).
 * @returns the drifted fields; empty when in sync
 */
export function configDrift<T extends object>(desired: T, live: Partial<Record<keyof T, unknown>>): FieldDrift[] {
  const out: FieldDrift[] = [];
  for (const [field, want] of Object.entries(desired)) {
    const have = (live as Record<string, unknown>)[field];
    const same = Array.isArray(want) && Array.isArray(have)
      ? want.length === have.length && [...want].sort().join("\u0000") === [...have].sort().join("\u0000")
      : want === have || (want === false && have === undefined);
    if (!same) out.push({ field, desired: want, live: have });
  }
  return out;
}
