/**
 * Idempotent ensure of a queue's NATS resources: read the live config, compare with the pure desired
 * config (`queue-desired.ts`), create what is missing and — when asked — update what drifted.
 */
import { JetStreamApiError, type JetStreamClient, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { QueueNames } from "../api/naming.js";
import {
  configDrift,
  desiredDeadLetterStreamConfig,
  desiredDelayConsumerConfig,
  desiredDelayedStreamConfig,
  desiredResultsBucket,
  desiredStreamConfig,
  desiredWorkerConsumerConfig,
  type FieldDrift,
  type ManagedConsumerConfig,
  type ManagedStreamConfig,
} from "./queue-desired.js";
import type { QueueSettings } from "./queue-settings.js";

/** JetStream API error code: stream not found. */
const STREAM_NOT_FOUND = 10059;
/** JetStream API error code: consumer not found. */
const CONSUMER_NOT_FOUND = 10014;

/** True when `err` is the JetStream "stream not found" API error. */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND;
}
/** True when `err` is the JetStream "consumer not found" API error. */
export function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND;
}

/** What `ensureQueueResources` did to one resource. */
export interface ResourceChange {
  kind: "stream" | "consumer" | "bucket";
  name: string;
  action: "created" | "updated" | "unchanged" | "drifted";
  /** Fields that differed from the desired config (for updated/drifted). */
  drift: FieldDrift[];
}

/** Options of `ensureQueueResources`. */
export interface EnsureOptions {
  /**
   * Update resources whose managed fields drifted (the operator's mode). Default false: only create
   * what is missing and report drift as `drifted` (the worker/client mode, so they never fight an
   * operator over settings).
   */
  updateOnDrift?: boolean;
}

async function ensureStream(jsm: JetStreamManager, desired: ManagedStreamConfig, opts: EnsureOptions): Promise<ResourceChange> {
  const name = desired.name;
  let live: StreamConfig;
  try {
    live = (await jsm.streams.info(name)).config;
  } catch (err) {
    if (!isStreamNotFound(err)) throw new Error(`get stream ${name}: ${(err as Error).message}`, { cause: err });
    try {
      await jsm.streams.add(desired);
      return { kind: "stream", name, action: "created", drift: [] };
    } catch (err2) {
      // another process created it between our info and add: fine if it now exists
      try {
        live = (await jsm.streams.info(name)).config;
      } catch {
        throw new Error(`create stream ${name}: ${(err2 as Error).message}`, { cause: err2 });
      }
    }
  }
  const drift = configDrift(desired, live);
  if (drift.length === 0) return { kind: "stream", name, action: "unchanged", drift };
  if (!opts.updateOnDrift) return { kind: "stream", name, action: "drifted", drift };
  try {
    await jsm.streams.update(name, { ...live, ...desired });
  } catch (err) {
    throw new Error(`update stream ${name}: ${(err as Error).message}`, { cause: err });
  }
  return { kind: "stream", name, action: "updated", drift };
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, desired: ManagedConsumerConfig, opts: EnsureOptions): Promise<ResourceChange> {
  const name = desired.durable_name as string;
  let live: Record<string, unknown>;
  try {
    live = (await jsm.consumers.info(stream, name)).config as unknown as Record<string, unknown>;
  } catch (err) {
    if (!isConsumerNotFound(err)) throw new Error(`get consumer ${stream}/${name}: ${(err as Error).message}`, { cause: err });
    try {
      await jsm.consumers.add(stream, desired);
      return { kind: "consumer", name: `${stream}/${name}`, action: "created", drift: [] };
    } catch (err2) {
      try {
        live = (await jsm.consumers.info(stream, name)).config as unknown as Record<string, unknown>;
      } catch {
        throw new Error(`create consumer ${stream}/${name}: ${(err2 as Error).message}`, { cause: err2 });
      }
    }
  }
  const drift = configDrift(desired, live);
  if (drift.length === 0) return { kind: "consumer", name: `${stream}/${name}`, action: "unchanged", drift };
  if (!opts.updateOnDrift) return { kind: "consumer", name: `${stream}/${name}`, action: "drifted", drift };
  try {
    await jsm.consumers.update(stream, name, { ack_wait: desired.ack_wait, max_deliver: desired.max_deliver, max_ack_pending: desired.max_ack_pending, max_waiting: desired.max_waiting });
  } catch (err) {
    throw new Error(`update consumer ${stream}/${name}: ${(err as Error).message}`, { cause: err });
  }
  return { kind: "consumer", name: `${stream}/${name}`, action: "updated", drift };
}

async function ensureBucket(js: JetStreamClient, jsm: JetStreamManager, names: QueueNames, s: QueueSettings, opts: EnsureOptions): Promise<ResourceChange> {
  const want = desiredResultsBucket(names, s);
  const streamName = `KV_${want.bucket}`;
  try {
    const live = (await jsm.streams.info(streamName)).config;
    const desired = { max_age: want.ttlMs * 1_000_000, num_replicas: want.replicas };
    const drift = configDrift(desired, live);
    if (drift.length === 0) return { kind: "bucket", name: want.bucket, action: "unchanged", drift };
    if (!opts.updateOnDrift) return { kind: "bucket", name: want.bucket, action: "drifted", drift };
    const maxAge = desired.max_age;
    const dup = live.duplicate_window && maxAge > 0 ? Math.min(live.duplicate_window, maxAge) : live.duplicate_window;
    await jsm.streams.update(streamName, { ...live, ...desired, duplicate_window: dup });
    return { kind: "bucket", name: want.bucket, action: "updated", drift };
  } catch (err) {
    if (!isStreamNotFound(err)) throw new Error(`ensure bucket ${want.bucket}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await new Kvm(js).create(want.bucket, { ttl: want.ttlMs, history: want.history, replicas: want.replicas, storage: want.storage });
  } catch (err) {
    throw new Error(`create bucket ${want.bucket}: ${(err as Error).message}`, { cause: err });
  }
  return { kind: "bucket", name: want.bucket, action: "created", drift: [] };
}

/**
 * Ensures every NATS resource of one queue exists (and, with `updateOnDrift`, matches the desired
 * config). Idempotent and safe to run concurrently from several processes.
 * @param jsm a JetStream manager (its `jetstream()` client creates the KV bucket)
 * @param names the queue's names from `queueNames(namespace, queue)`
 * @param settings the queue settings
 * @returns what was done, per resource
 * @throws Error "create stream X: …" / "update consumer S/C: …" when the server refuses
 */
export async function ensureQueueResources(
  jsm: JetStreamManager,
  names: QueueNames,
  settings: QueueSettings,
  opts: EnsureOptions = {},
): Promise<ResourceChange[]> {
  const out: ResourceChange[] = [];
  out.push(await ensureStream(jsm, desiredStreamConfig(names, settings), opts));
  out.push(await ensureStream(jsm, desiredDelayedStreamConfig(names, settings), opts));
  out.push(await ensureStream(jsm, desiredDeadLetterStreamConfig(names, settings), opts));
  out.push(await ensureConsumer(jsm, names.stream, desiredWorkerConsumerConfig(names, settings), opts));
  out.push(await ensureConsumer(jsm, names.delayedStream, desiredDelayConsumerConfig(names, settings), opts));
  out.push(await ensureBucket(jsm.jetstream(), jsm, names, settings, opts));
  return out;
}
