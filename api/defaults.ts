/**
 * Documented defaults: what Celeriac uses where the user says nothing. The CRD schemas put these in
 * their `default:` fields and the worker/client use the same values when no Queue resource exists.
 */

/** Default retry policy: 3 attempts, exponential backoff 1 s ×2 capped at 600 s (10 min), jitter on. */
export const DEFAULT_RETRY = Object.freeze({
  maxAttempts: 3,
  backoff: Object.freeze({ initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true }),
});

/** Default handler timeout, in seconds (1 h). */
export const DEFAULT_TIMEOUT_SECONDS = 3600;
/** Default JetStream consumer ack wait, in seconds. */
export const DEFAULT_ACK_WAIT_SECONDS = 30;
/** Default number of handlers in flight per worker process. */
export const DEFAULT_CONCURRENCY = 4;
/** Default time results stay in the results bucket, in seconds (24 h). */
export const DEFAULT_RESULTS_TTL_SECONDS = 86_400;
/** Default JetStream duplicate window (Go duration): an enqueue with a task id seen within it is dropped as a duplicate. */
export const DEFAULT_DUPLICATE_WINDOW = "2m";
/** Default maximum age of dead-lettered messages (Go duration, 14 days). */
export const DEFAULT_DEAD_LETTER_MAX_AGE = "336h";

/** Default autoscaling policy (KEDA-like vocabulary; times in seconds). */
export const DEFAULT_AUTOSCALING = Object.freeze({
  provider: "builtin" as const,
  minReplicas: 0,
  maxReplicas: 10,
  targetBacklogPerReplica: 10,
  activationBacklog: 1,
  pollingIntervalSeconds: 2,
  scaleDownStabilizationSeconds: 60,
  cooldownSeconds: 300,
});

/** Default Schedule policies (CronJob's defaults where CronJob has one). */
export const DEFAULT_SCHEDULE = Object.freeze({
  timeZone: "UTC",
  concurrencyPolicy: "Allow" as const,
  missedRunPolicy: "RunLatest" as const,
  missedRunsLimit: 10,
  successfulTasksHistoryLimit: 3,
  failedTasksHistoryLimit: 1,
});
