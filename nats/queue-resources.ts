/**
 * Idempotent ensure of a queue's NATS resources: read the live config, compare with the pure desired
 * config (`queue-desired.ts`), create what is missing and — when asked — update what drifted. With a
 * minted (restricted) credential creating is refused by the server; the caller then gets a
 * {@link OperatorCreatesResourcesError}, or with `waitForOperator` waits for the operator to create
 * the resources.
 */
import { JetStreamApiError, type JetStreamClient, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { PermissionViolationError } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { heldNames } from "../api/flow.js";
import type { QueueNames } from "../api/naming.js";
import {
  configDrift,
  desiredDeadLetterStreamConfig,
  desiredDelayConsumerConfig,
  desiredDelayedStreamConfig,
  desiredHeldConsumerConfig,
  desiredHeldStreamConfig,
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

/**
 * True when `err` (or an error in its `cause` chain) is the server's permissions violation, i.e.
 * this connection's user may not publish the request (or subscribe to the subject).
 */
export function isPermissionViolation(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return true;
  }
  return false;
}

/**
 * A queue resource is missing and this connection's NATS user may not create it: with minted
 * per-tenant credentials only the Celeriac operator (unrestricted credential) creates streams,
 * consumers and buckets, when it reconciles the Queue resource.
 */
export class OperatorCreatesResourcesError extends Error {
  /** Kind of the missing resource. */
  readonly kind: ResourceChange["kind"];
  /** Its name (`stream`, `stream/consumer` or bucket). */
  readonly resource: string;
  /** @param cause the server's refusal */
  constructor(kind: ResourceChange["kind"], resource: string, cause: unknown) {
    super(
      `create ${kind} ${resource}: this NATS credential may not create it (minted per-tenant credentials never can); ` +
        "the Celeriac operator creates a queue's streams, consumers and results bucket when it reconciles the Queue: apply the Queue resource and check the operator is running",
      { cause },
    );
    this.name = "OperatorCreatesResourcesError";
    this.kind = kind;
    this.resource = resource;
  }
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
  /**
   * When a resource is missing and the credential may not create it (a minted credential): poll,
   * every 1 s doubling to 10 s, until the operator has created everything, logging at warn on the
   * first wait and every minute after. Default: throw {@link OperatorCreatesResourcesError} at once.
   */
  waitForOperator?: {
    /** Where waits are logged. */
    log?: Pick<Logger, "warn" | "info">;
    /** Give up (throw the last error) after this long, ms. Default never. */
    timeoutMs?: number;
    /** Stop waiting (throw the last error) when aborted. */
    signal?: AbortSignal;
  };
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
      if (isPermissionViolation(err2)) throw new OperatorCreatesResourcesError("stream", name, err2);
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
      if (isPermissionViolation(err2)) throw new OperatorCreatesResourcesError("consumer", `${stream}/${name}`, err2);
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
    if (isPermissionViolation(err)) throw new OperatorCreatesResourcesError("bucket", want.bucket, err);
    throw new Error(`create bucket ${want.bucket}: ${(err as Error).message}`, { cause: err });
  }
  return { kind: "bucket", name: want.bucket, action: "created", drift: [] };
}

/**
 * Ensures every NATS resource of one queue exists (and, with `updateOnDrift`, matches the desired
 * config); with `settings.flow` also the held stream and its dispatch consumers (without, those are
 * neither created nor removed). Idempotent and safe to run concurrently from several processes.
 * @param jsm a JetStream manager (its `jetstream()` client creates the KV bucket)
 * @param names the queue's names from `queueNames(namespace, queue)`
 * @param settings the queue settings
 * @returns what was done, per resource
 * @throws OperatorCreatesResourcesError when a resource is missing and the credential may not create
 *   it (unless `waitForOperator`); Error "create stream X: …" / "update consumer S/C: …" when the
 *   server refuses otherwise
 */
export async function ensureQueueResources(
  jsm: JetStreamManager,
  names: QueueNames,
  settings: QueueSettings,
  opts: EnsureOptions = {},
): Promise<ResourceChange[]> {
  const w = opts.waitForOperator;
  if (!w) return ensureOnce(jsm, names, settings, opts);
  const start = Date.now();
  let lastWarn = 0;
  for (let i = 0; ; i++) {
    try {
      const out = await ensureOnce(jsm, names, settings, opts);
      if (i > 0) w.log?.info({ stream: names.stream, waitedMs: Date.now() - start }, "Queue resources created by the operator");
      return out;
    } catch (err) {
      if (!(err instanceof OperatorCreatesResourcesError)) throw err;
      if ((w.timeoutMs !== undefined && Date.now() - start >= w.timeoutMs) || w.signal?.aborted) throw err;
      if (Date.now() - lastWarn >= 60_000) {
        lastWarn = Date.now();
        w.log?.warn({ kind: err.kind, resource: err.resource, waitedMs: lastWarn - start }, "Waiting for the operator to create the queue's NATS resources (this credential may not create streams)");
      }
      await new Promise((r) => setTimeout(r, Math.min(10_000, 1000 * 2 ** Math.min(i, 4))));
    }
  }
}

async function ensureOnce(jsm: JetStreamManager, names: QueueNames, settings: QueueSettings, opts: EnsureOptions): Promise<ResourceChange[]> {
  const out: ResourceChange[] = [];
  out.push(await ensureStream(jsm, desiredStreamConfig(names, settings), opts));
  out.push(await ensureStream(jsm, desiredDelayedStreamConfig(names, settings), opts));
  out.push(await ensureStream(jsm, desiredDeadLetterStreamConfig(names, settings), opts));
  out.push(await ensureConsumer(jsm, names.stream, desiredWorkerConsumerConfig(names, settings), opts));
  out.push(await ensureConsumer(jsm, names.delayedStream, desiredDelayConsumerConfig(names, settings), opts));
  out.push(await ensureBucket(jsm.jetstream(), jsm, names, settings, opts));
  if (settings.flow) {
    // flow-controlled: the held stream and one dispatch consumer per priority level
    const held = heldNames(names).stream;
    out.push(await ensureStream(jsm, desiredHeldStreamConfig(names, settings), opts));
    for (let level = 0; level < settings.flow.levels; level++) out.push(await ensureConsumer(jsm, held, desiredHeldConsumerConfig(names, level), opts));
  }
  return out;
}
