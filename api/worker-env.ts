/**
 * The worker's environment contract, declared once: the variables the operator renders into a
 * Queue's worker container (operator/queue/desired-workers.ts) and the worker reads back
 * (worker/config.ts `parseWorkerConfig`, nats/connection.ts `natsSettingsFrom`), with their flags
 * and the defaults both sides rely on. A round-trip test renders a Deployment and parses its env
 * (test/api/worker-env.test.ts).
 */

/** One setting: its environment variable and, when the worker CLI has one, its flag. */
export type WorkerEnvEntry = { readonly env: string; readonly flag?: string };

/**
 * Every worker setting the operator renders or the worker reads from the environment.
 * The operator renders all but `tasks` (the user's), `port` (the default, {@link WORKER_PORT}),
 * `logLevel` and `natsInboxPrefix` (read from the minted creds' JWT); NATS credentials are rendered only when configured, and only as Secret references.
 */
export const WORKER_ENV = {
  /** Tasks module path or specifier. Set by the user (`spec.worker.env` or the image). */
  tasks: { env: "CELERIAC_TASKS", flag: "--tasks" },
  /** Queue name. */
  queue: { env: "CELERIAC_QUEUE", flag: "--queue" },
  /** Namespace of the Queue. */
  namespace: { env: "CELERIAC_NAMESPACE", flag: "--namespace" },
  /** Handlers in flight per worker (`spec.concurrency`). */
  concurrency: { env: "CELERIAC_CONCURRENCY", flag: "--concurrency" },
  /** HTTP port of /healthz, /readyz and /metrics; the operator leaves it at {@link WORKER_PORT}. */
  port: { env: "CELERIAC_PORT", flag: "--port" },
  /** Consumer ack wait (`spec.ackWaitSeconds`). */
  ackWaitSeconds: { env: "CELERIAC_ACK_WAIT_SECONDS", flag: "--ack-wait-seconds" },
  /** Default handler timeout (`spec.timeoutSeconds`). */
  timeoutSeconds: { env: "CELERIAC_TIMEOUT_SECONDS", flag: "--timeout-seconds" },
  /** Shutdown grace for in-flight tasks: the pod's `terminationGracePeriodSeconds`. */
  gracePeriodSeconds: { env: "CELERIAC_GRACE_PERIOD_SECONDS", flag: "--grace-period-seconds" },
  /** Name in `Task.status.worker`: the pod name (downward API). */
  workerName: { env: "CELERIAC_WORKER_NAME", flag: "--worker-name" },
  /** Log level. Not rendered. */
  logLevel: { env: "CELERIAC_LOG_LEVEL" },
  /** NATS URL(s), comma-separated. */
  natsUrl: { env: "CELERIAC_NATS_URL", flag: "--nats" },
  /** Path of the mounted `.creds` file. */
  natsCreds: { env: "CELERIAC_NATS_CREDS" },
  /** NATS user (`secretKeyRef`). */
  natsUser: { env: "CELERIAC_NATS_USER" },
  /** NATS password (`secretKeyRef`). */
  natsPassword: { env: "CELERIAC_NATS_PASSWORD" },
  /** Path of the mounted CA certificate; enables TLS. */
  natsTlsCa: { env: "CELERIAC_NATS_TLS_CA" },
  /**
   * Inbox prefix of the NATS connection (api/nats-permissions.ts `workerInboxPrefix`); optional with
   * minted creds, whose JWT names it.
   */
  natsInboxPrefix: { env: "CELERIAC_NATS_INBOX_PREFIX" },
  /** The pod's name (downward API `metadata.name`). */
  podName: { env: "POD_NAME" },
  /** The pod's namespace (downward API `metadata.namespace`). */
  podNamespace: { env: "POD_NAMESPACE" },
} as const satisfies Record<string, WorkerEnvEntry>;

/** Port of the worker's `/healthz`, `/readyz` and `/metrics`: the worker's default and the port the operator's probes use. */
export const WORKER_PORT = 8080;

/** Default shutdown grace of a worker started without `CELERIAC_GRACE_PERIOD_SECONDS`, in seconds (fits Kubernetes' default 30 s). */
export const DEFAULT_WORKER_GRACE_PERIOD_SECONDS = 25;

/** Default log level of a worker. */
export const DEFAULT_WORKER_LOG_LEVEL = "info";

/** `--flag (ENV)` for error messages, e.g. `--concurrency (CELERIAC_CONCURRENCY)`. */
export function describeWorkerSetting(e: WorkerEnvEntry): string {
  return e.flag ? `${e.flag} (${e.env})` : e.env;
}
