/**
 * The options of a `Worker`, and their defaults, resolved once when it is constructed.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { DEFAULT_CONCURRENCY } from "../api/defaults.js";
import type { QueueSettings } from "../nats/index.js";
import type { TaskDefinition } from "./define-task.js";
import type { WorkerMetrics } from "./metrics.js";
import type { StatusSink } from "./status-sink.js";

/** Options of a `Worker`. Times in seconds unless the name says ms. */
export interface WorkerOptions {
  /** An open NATS connection; the worker does not close it (the caller drains it after `close()`). */
  nc: NatsConnection;
  /** Task definitions: a tasks module namespace, an array, or a name → definition map. */
  tasks: Record<string, unknown> | readonly unknown[] | ReadonlyMap<string, TaskDefinition>;
  /** Queue name (DNS-1123 label). */
  queue: string;
  /** Kubernetes namespace of the queue. Default `default`. */
  namespace?: string;
  /** Most handlers running at once in this worker. Default 4. */
  concurrency?: number;
  /** Name recorded in `status.worker`. Default `$POD_NAME` or `<host>:<pid>`. */
  workerName?: string;
  /** Settings used to create missing NATS resources (ack wait, results TTL…). */
  settings?: Partial<QueueSettings>;
  /** Create missing streams/consumers/bucket at start. Default true. */
  ensureResources?: boolean;
  /**
   * After a handler's signal is aborted (timeout or revoke), how long to wait for it to settle
   * before the attempt is treated as over and its slot freed, in seconds. Default 5.
   */
  abortGraceSeconds?: number;
  /** On `close()`, how long in-flight handlers may run before they are aborted and naked, in seconds. Default 25. */
  shutdownGraceSeconds?: number;
  /** pino logger; default a new one at level `info`. */
  logger?: Logger;
  /** Metrics to update; default a new set (`worker.metrics`). */
  metrics?: WorkerMetrics;
  /**
   * Status sinks written (in order) for every state change; the message is acked only after all
   * succeed. Default: the results bucket (`KvStatusSink`). Use `extraSinks` to add to it.
   */
  sinks?: StatusSink[];
  /** Sinks written after the default results-bucket sink. */
  extraSinks?: StatusSink[];
  /** Called with the new in-flight count whenever it changes (e.g. to keep pod-deletion-cost equal to it). */
  onInFlightChange?: (inFlight: number) => void;
  /** Pull request expiry, in ms (≥ 1000). Also bounds how long `close()` waits for the last pull. Default 2000. */
  fetchExpiresMs?: number;
  /** A `Running` record is written only for attempts still running after this many ms. Default 1000. */
  runningRecordDelayMs?: number;
  /** How long a failing status write is retried before the message is left for redelivery, in ms. Default 60000. */
  statusWriteTimeoutMs?: number;
  /** Jitter source for backoff (tests). Default Math.random. */
  random?: () => number;
}

/** `WorkerOptions` with every default filled in. */
export type ResolvedWorkerOptions = Required<
  Pick<WorkerOptions, "concurrency" | "abortGraceSeconds" | "shutdownGraceSeconds" | "fetchExpiresMs" | "runningRecordDelayMs" | "statusWriteTimeoutMs" | "random" | "workerName">
> &
  WorkerOptions;

/** Default worker name: `$POD_NAME`, else `<hostname>:<pid>`. */
export function defaultWorkerName(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || `${hostname()}:${process.pid}`;
}

/**
 * Fills in the defaults of every unset (or undefined) option: concurrency 4, abort grace 5 s,
 * shutdown grace 25 s, pull expiry 2000 ms, `Running` record delay 1000 ms, status write timeout
 * 60 000 ms, `Math.random`, `defaultWorkerName()`. Pure apart from reading the environment for the name.
 * @throws Error when `concurrency` is not a positive integer
 */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  const o = {
    concurrency: DEFAULT_CONCURRENCY,
    abortGraceSeconds: 5,
    shutdownGraceSeconds: 25,
    fetchExpiresMs: 2000,
    runningRecordDelayMs: 1000,
    statusWriteTimeoutMs: 60_000,
    random: Math.random,
    workerName: defaultWorkerName(),
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as ResolvedWorkerOptions;
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${o.concurrency}`);
  return o;
}
