/**
 * NATS names for a queue: streams, subjects, consumers and KV buckets, derived from the queue's
 * Kubernetes namespace and name. Pure. See docs/protocol.md.
 *
 * Queue names and namespaces must be DNS-1123 labels (lowercase alphanumerics and `-`), so joining
 * them with `_` (which a DNS label cannot contain) keeps every name unique and legal for NATS
 * (stream and bucket names may not contain `.`, `*`, `>` or whitespace).
 */

/** DNS-1123 label: what a Queue name and a namespace must match (Kubernetes naming rules). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Namespace used when a worker or client is given none. */
export const DEFAULT_NAMESPACE = "default";

/** Every NATS name belonging to one queue. */
export interface QueueNames {
  /** The Queue's Kubernetes namespace (also its NATS account in accounts mode, docs/security.md). */
  namespace: string;
  /** The Queue's `metadata.name`. */
  queue: string;
  /** Work stream holding ready-to-run task messages, e.g. `CELERIAC_default_emails`. */
  stream: string;
  /** Subject ready tasks are published on, e.g. `celeriac.default.emails.tasks`. */
  taskSubject: string;
  /** Stream holding tasks with a countdown/eta until they are due. */
  delayedStream: string;
  /** Subject delayed tasks are published on. */
  delayedSubject: string;
  /** Stream holding dead-lettered messages with their reason headers. */
  deadLetterStream: string;
  /** Subject dead-lettered messages are published on. */
  deadLetterSubject: string;
  /** Durable pull consumer the workers share on `stream`. */
  workerConsumer: string;
  /** Durable pull consumer that moves due delayed tasks into `stream`. */
  delayConsumer: string;
  /** KV bucket of task states and results (TTL = the queue's results TTL). */
  resultsBucket: string;
}

/**
 * Checks a namespace and queue name.
 * @throws Error naming the bad field and the rule when either is not a DNS-1123 label
 */
export function assertQueueRef(namespace: string, queue: string): void {
  if (!DNS1123_LABEL.test(namespace) || namespace.length > 63) {
    throw new Error(`namespace "${namespace}" is not a DNS-1123 label: use lowercase letters, digits and "-" (at most 63)`);
  }
  if (!DNS1123_LABEL.test(queue) || queue.length > 63) {
    throw new Error(`queue "${queue}" is not a DNS-1123 label: use lowercase letters, digits and "-" (at most 63)`);
  }
}

/**
 * NATS names for queue `queue` in namespace `namespace`.
 * @throws Error when either name is not a DNS-1123 label (see assertQueueRef)
 */
export function queueNames(namespace: string, queue: string): QueueNames {
  assertQueueRef(namespace, queue);
  const base = `CELERIAC_${namespace}_${queue}`;
  const subj = `celeriac.${namespace}.${queue}`;
  return {
    namespace,
    queue,
    stream: base,
    taskSubject: `${subj}.tasks`,
    delayedStream: `${base}_DELAYED`,
    delayedSubject: `${subj}.delayed`,
    deadLetterStream: `${base}_DLQ`,
    deadLetterSubject: `${subj}.dead`,
    workerConsumer: "workers",
    delayConsumer: "delay-mover",
    resultsBucket: `${base}_RESULTS`,
  };
}

/**
 * KV bucket of the dashboard's history of namespace `namespace` (dashboard/history-store.ts):
 * `CELERIAC_<namespace>_DASHBOARD`, one key `<queue>.<slot start, unix seconds>` per queue and slot,
 * history 1 and max age = the history window. Upper case, so no queue (a DNS-1123 label) can take it.
 * @throws Error when the namespace is not a DNS-1123 label
 */
export function dashboardBucket(namespace: string): string {
  assertQueueRef(namespace, "x");
  return `CELERIAC_${namespace}_DASHBOARD`;
}

/** Key prefix of revocation markers in a queue's results bucket: `revoked.<task id>`. */
export const REVOKED_PREFIX = "revoked.";

/**
 * Key prefix of retry links in a queue's results bucket (`celeriac tasks retry`): `retry.<new id>`
 * holds `{v, id, retryOf, createdAt}` (RetryLink, nats/task-records.ts), `retries.<old id>` the ids
 * of the task's retries.
 */
export const RETRY_PREFIX = "retry.";
/** Key prefix of the list of a task's retries: `retries.<task id>` (see RETRY_PREFIX). */
export const RETRIES_PREFIX = "retries.";

/** Characters allowed in a task id, so it is a valid KV key and subject token (never contains `.`). */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_=-]{1,256}$/;

/**
 * Key, in a queue's results bucket, of the Queue's producer settings (`QueueProducerSettings`,
 * `api/queue-settings.ts`): written by the operator, read by clients. Task ids never contain `.`,
 * so it cannot collide with a task record.
 */
export const QUEUE_SETTINGS_KEY = "queue.settings";

/**
 * Key, in a queue's results bucket, of the queue's pause record (`QueuePaused`, api/queue-ops.ts):
 * written by `celeriac queue pause`, deleted by `celeriac queue resume`, watched by every worker
 * (which pulls nothing while it exists) and read by the operator's scale loop (which holds the
 * worker count). Task ids never contain `.`, so it cannot collide with a task record.
 */
export const QUEUE_PAUSED_KEY = "queue.paused";

/**
 * Key, in a queue's results bucket, of the queue's last purge notice (`QueuePurged`,
 * api/queue-ops.ts): written by `celeriac queue purge` (and the dashboard's purge) after it recorded
 * the removed tasks Cancelled; watched by the operator, which then ends the Task resources whose
 * message was purged Cancelled (their workers never see them). Task ids never contain `.`.
 */
export const QUEUE_PURGED_KEY = "queue.purged";

/** Pattern of a registered task (handler) name, e.g. `reports.generate`, `emails:send`. */
export const TASK_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_.:-]*$";
/** Pattern of a queue name (DNS-1123 label). */
export const QUEUE_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
