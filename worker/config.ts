/**
 * Worker process configuration: parsed once from flags and `CELERIAC_*` environment variables into
 * a frozen object. A flag wins over its env var; each has a documented default. The variable names
 * are the operator's too (`api/worker-env.ts`).
 */
import { DEFAULT_ACK_WAIT_SECONDS, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_SECONDS } from "../api/defaults.js";
import { DEFAULT_NAMESPACE, assertQueueRef } from "../api/naming.js";
import { DEFAULT_WORKER_GRACE_PERIOD_SECONDS, DEFAULT_WORKER_LOG_LEVEL, WORKER_ENV, WORKER_PORT, describeWorkerSetting, type WorkerEnvEntry } from "../api/worker-env.js";
import { natsSettingsFrom, type NatsSettings } from "../nats/index.js";
import { defaultWorkerName } from "./worker.js";

/** Parsed worker process configuration. Times in seconds. */
export interface WorkerConfig {
  /** Tasks module path or specifier (`--tasks`, `CELERIAC_TASKS`). Required. */
  readonly tasks: string;
  /** Queue (`--queue`, `CELERIAC_QUEUE`). Required. */
  readonly queue: string;
  /** Namespace (`--namespace`, `CELERIAC_NAMESPACE`). Default `default`. */
  readonly namespace: string;
  /** Handlers in flight (`--concurrency`, `CELERIAC_CONCURRENCY`). Default 4. */
  readonly concurrency: number;
  /** HTTP port for /healthz, /readyz, /metrics (`--port`, `CELERIAC_PORT`, then `PORT` as set by platforms and the dev kubelet). Default 8080 (what the operator's probes use); 0 = any free port. */
  readonly port: number;
  /** Consumer ack wait used when the worker creates the consumer (`--ack-wait-seconds`, `CELERIAC_ACK_WAIT_SECONDS`). Default 30. */
  readonly ackWaitSeconds: number;
  /** Default handler timeout (`--timeout-seconds`, `CELERIAC_TIMEOUT_SECONDS`); informational for producers — messages carry their own. Default 3600. */
  readonly timeoutSeconds: number;
  /** Shutdown grace for in-flight tasks (`--grace-period-seconds`, `CELERIAC_GRACE_PERIOD_SECONDS`). Default 25 (fits Kubernetes' 30 s). */
  readonly gracePeriodSeconds: number;
  /** Name in `status.worker` (`--worker-name`, `CELERIAC_WORKER_NAME`). Default `$POD_NAME` or `<host>:<pid>`. */
  readonly workerName: string;
  /** Log level (`CELERIAC_LOG_LEVEL`). Default `info`. */
  readonly logLevel: string;
  /** NATS connection (`--nats`, `CELERIAC_NATS_*`). */
  readonly nats: NatsSettings;
}

/** Raw flag values as commander gives them (strings or undefined). */
export interface WorkerFlags {
  tasks?: string;
  queue?: string;
  namespace?: string;
  concurrency?: string;
  port?: string;
  ackWaitSeconds?: string;
  timeoutSeconds?: string;
  gracePeriodSeconds?: string;
  workerName?: string;
  nats?: string;
}

function num(flag: string, value: string | undefined, fallback: number, min: number, integer = true): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${flag}: "${value}" is not ${integer ? "an integer" : "a number"} ≥ ${min}`);
  }
  return n;
}

/**
 * Parses worker configuration. Pure apart from reading `env`. Variable names, flags and the port
 * come from the one table the operator also renders from (`api/worker-env.ts`).
 * @throws Error naming the flag (and its env var) that is missing or invalid
 */
export function parseWorkerConfig(flags: WorkerFlags, env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const E = WORKER_ENV;
  const tasks = flags.tasks ?? env[E.tasks.env];
  if (!tasks) throw new Error(`${E.tasks.flag} (or ${E.tasks.env}) is required: the path of your tasks module, e.g. dist/tasks.js`);
  const queue = flags.queue ?? env[E.queue.env];
  if (!queue) throw new Error(`${E.queue.flag} (or ${E.queue.env}) is required: the queue to consume, e.g. emails`);
  const namespace = flags.namespace ?? env[E.namespace.env] ?? DEFAULT_NAMESPACE;
  assertQueueRef(namespace, queue);
  const workerName = flags.workerName ?? env[E.workerName.env] ?? defaultWorkerName(env);
  const setting = (e: WorkerEnvEntry, flag: string | undefined, fallback: number, min: number, integer = true) => num(describeWorkerSetting(e), flag ?? env[e.env], fallback, min, integer);
  return Object.freeze({
    tasks,
    queue,
    namespace,
    concurrency: setting(E.concurrency, flags.concurrency, DEFAULT_CONCURRENCY, 1),
    port: setting(E.port, flags.port ?? env.PORT, WORKER_PORT, 0),
    ackWaitSeconds: setting(E.ackWaitSeconds, flags.ackWaitSeconds, DEFAULT_ACK_WAIT_SECONDS, 1),
    timeoutSeconds: setting(E.timeoutSeconds, flags.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS, 1),
    gracePeriodSeconds: setting(E.gracePeriodSeconds, flags.gracePeriodSeconds, DEFAULT_WORKER_GRACE_PERIOD_SECONDS, 0, false),
    workerName,
    logLevel: env[E.logLevel.env] ?? DEFAULT_WORKER_LOG_LEVEL,
    nats: natsSettingsFrom({ ...(flags.nats ? { url: flags.nats } : {}), name: `celeriac-worker ${workerName}` }, env),
  });
}
