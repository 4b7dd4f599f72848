/**
 * The shared contract of Celeriac: API group and version, kinds, label/annotation keys, finalizers,
 * field managers, condition types and reasons. Operator, worker and client import these; nothing
 * here does I/O.
 */

/** API group of every Celeriac custom resource. */
export const GROUP = "celeriac.io";
/** The one served and stored version. */
export const VERSION = "v1alpha1";
/** `apiVersion` field value for Celeriac resources: `celeriac.io/v1alpha1`. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Kind, plural, singular, list kind and short names of each resource. */
export const RESOURCES = {
  Queue: { kind: "Queue", plural: "queues", singular: "queue", listKind: "QueueList", shortNames: ["cq"] },
  Task: { kind: "Task", plural: "tasks", singular: "task", listKind: "TaskList", shortNames: ["ct"] },
  Schedule: { kind: "Schedule", plural: "schedules", singular: "schedule", listKind: "ScheduleList", shortNames: ["csch"] },
  Workflow: { kind: "Workflow", plural: "workflows", singular: "workflow", listKind: "WorkflowList", shortNames: ["cwf"] },
} as const;

/** `kubectl get celeriac` lists every resource in this category. */
export const CATEGORY = "celeriac";

/** Label and annotation keys Celeriac sets or reads. */
export const LABELS = {
  /** On worker Deployments and Pods: the Queue name. */
  queue: "celeriac.io/queue",
  /** On Tasks and Workflows created by a Schedule: the Schedule name. */
  schedule: "celeriac.io/schedule",
  /** Standard app labels on everything the operator renders. */
  managedBy: "app.kubernetes.io/managed-by",
  component: "app.kubernetes.io/component",
  name: "app.kubernetes.io/name",
  instance: "app.kubernetes.io/instance",
} as const;

/** Value of `app.kubernetes.io/managed-by` on objects the operator renders. */
export const MANAGED_BY = "celeriac-operator";

/** Annotation keys. */
export const ANNOTATIONS = {
  /** On Tasks created by a Schedule: the nominal run time (RFC 3339). */
  scheduledAt: "celeriac.io/scheduled-at",
  /**
   * On a Workflow: set it (to any new value; `celeriac workflow retry` writes the time) to re-run a
   * Failed or Cancelled Workflow from its failed steps: the failed and never-run steps run again
   * (new task ids, `_g<n>`), the succeeded ones keep their results (Argo's `retry`).
   */
  retry: "celeriac.io/retry",
  /**
   * On a Task or a Workflow: a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`) to parent the
   * operator's `celeriac.enqueue` spans of it (docs/tracing.md). Without it, a Task's enqueue span
   * starts a trace and a Workflow's steps share the trace derived from its uid (`workflowTraceContext`).
   */
  traceparent: "celeriac.io/traceparent",
  /** With `traceparent`: the W3C `tracestate` that goes with it (optional). */
  tracestate: "celeriac.io/tracestate",
  /** ReplicaSet victim selection hint, kept equal to a worker's in-flight count (Kubernetes docs: pod-deletion-cost). */
  podDeletionCost: "controller.kubernetes.io/pod-deletion-cost",
} as const;

/** Finalizers Celeriac adds (only for state outside the cluster: streams, in-flight tasks). */
export const FINALIZERS = {
  /** On Queues: the operator deletes the stream(s) under `deletionPolicy: Delete` before release. */
  queue: "celeriac.io/queue-cleanup",
  /** On Tasks: the operator revokes the task in NATS before the Task disappears. */
  task: "celeriac.io/task-revoke",
  /** On Workflows: the operator revokes the unfinished steps' tasks before the Workflow disappears. */
  workflow: "celeriac.io/workflow-revoke",
} as const;

/** Server-side field managers, distinct per writer so ownership shows in managedFields. */
export const FIELD_MANAGERS = {
  operator: "celeriac-operator",
  worker: "celeriac-worker",
  client: "celeriac-client",
} as const;

/** Condition types, per resource. The vocabulary is closed. */
export const CONDITION_TYPES = {
  Queue: { Ready: "Ready", StreamReady: "StreamReady", WorkersReady: "WorkersReady" },
  Task: { Accepted: "Accepted", Running: "Running", Succeeded: "Succeeded", Failed: "Failed" },
  Schedule: { Ready: "Ready" },
  Workflow: { Succeeded: "Succeeded", Failed: "Failed" },
} as const;

/** Condition reasons (CamelCase, as Kubernetes requires). */
export const REASONS = {
  // Queue
  StreamCreated: "StreamCreated",
  StreamUpdated: "StreamUpdated",
  StreamError: "StreamError",
  WorkersAvailable: "WorkersAvailable",
  WorkersUnavailable: "WorkersUnavailable",
  ScaledToZero: "ScaledToZero",
  KedaNotInstalled: "KedaNotInstalled",
  Suspended: "Suspended",
  InvalidSpec: "InvalidSpec",
  Reconciled: "Reconciled",
  /** Event: the operator changed the worker Deployment's replicas ("Scaled workers from X to Y: …"). */
  Scaled: "Scaled",
  /** Event: the Queue's streams and results bucket were deleted with it (`deletionPolicy: Delete`). */
  StreamDeleted: "StreamDeleted",
  // Task
  QueueNotFound: "QueueNotFound",
  Queued: "Queued",
  Started: "Started",
  Retrying: "Retrying",
  Completed: "Completed",
  HandlerFailed: "HandlerFailed",
  UnknownTask: "UnknownTask",
  TimedOut: "TimedOut",
  Revoked: "Revoked",
  /** Task condition Succeeded=False: its message was removed by `celeriac queue purge` before any worker took it. */
  Purged: "Purged",
  Expired: "Expired",
  ArgsTooLarge: "ArgsTooLarge",
  InvalidMessage: "InvalidMessage",
  // Schedule
  InvalidSchedule: "InvalidSchedule",
  Scheduled: "Scheduled",
  // Task Events the worker records
  Failed: "Failed",
  DeadLettered: "DeadLettered",
  Cancelled: "Cancelled",
  // Workflow (conditions and Events)
  /** Workflow Event: its first steps were published. */
  WorkflowStarted: "WorkflowStarted",
  /** Workflow Event (Warning): a step failed after its retries (the message names it). */
  StepFailed: "StepFailed",
  /** Workflow condition Succeeded=True and Event. */
  Succeeded: "Succeeded",
  /** Workflow condition: not finished yet (Succeeded and Failed are False with this reason). */
  Running: "Running",
  /** Workflow Event: retry-from-failed re-ran the failed and never-run steps. */
  RetryStarted: "RetryStarted",
  /** Workflow Event (Warning): a retry request on a Workflow that is not Failed or Cancelled was ignored. */
  RetryIgnored: "RetryIgnored",
  /** Task Accepted=False: the operator cannot publish to NATS now; it retries with back-off. */
  NatsUnavailable: "NatsUnavailable",
  /** Task condition and Warning Event: the Task's Queue was deleted while the Task waited in it. */
  QueueDeleted: "QueueDeleted",
  /** Queue WorkersReady=False: worker containers exit and are restarted with back-off. */
  WorkersCrashLooping: "WorkersCrashLooping",
  /** Queue WorkersReady=False: worker containers cannot be created (config error, image). */
  WorkersCannotStart: "WorkersCannotStart",
  /** Queue Event: the operator minted a NATS credential Secret (new, rotated, or permissions changed). */
  NatsCredentialsIssued: "NatsCredentialsIssued",
  /** Queue Event: the operator deleted a NATS credential Secret (its Queue, or the namespace's last one, is gone). */
  NatsCredentialsDeleted: "NatsCredentialsDeleted",
  /**
   * Queue Event (Warning): a minted NATS credential's CONNECT line (its user JWT) exceeds the NATS
   * server's max_control_line the operator was told (`CELERIAC_NATS_MAX_CONTROL_LINE`), so clients
   * using it cannot connect; the message names the size, the limit and the fix.
   */
  NatsCredentialsTooLarge: "NatsCredentialsTooLarge",
} as const;

/** Task phases, in lifecycle order. Terminal ones: Succeeded, Failed, Cancelled, Expired. */
export const TASK_PHASES = ["Pending", "Queued", "Running", "Retrying", "Succeeded", "Failed", "Cancelled", "Expired"] as const;
/** A Task phase. */
export type TaskPhase = (typeof TASK_PHASES)[number];
/** The phases after which a task never runs again. */
export const TERMINAL_PHASES: readonly TaskPhase[] = ["Succeeded", "Failed", "Cancelled", "Expired"];

/** True when `phase` is terminal (Succeeded, Failed, Cancelled, Expired). */
export function isTerminalPhase(phase: string | undefined): boolean {
  return phase !== undefined && (TERMINAL_PHASES as readonly string[]).includes(phase);
}

/** Largest encoded `args` + `kwargs` a Task may carry, in bytes (256 KiB). */
export const MAX_ARGS_BYTES = 256 * 1024;
/** Largest result stored inline in `Task.status.result`, in bytes (8 KiB); larger ones stay in the results bucket and are referenced. */
export const MAX_INLINE_RESULT_BYTES = 8 * 1024;

/**
 * Annotation on a Task: when the operator first tried to publish it (RFC 3339 with ms). Its publish
 * intent: every attempt sends the same message (built at this time, `Nats-Msg-Id` = uid), and once
 * it is older than the safe part of the duplicate window, the operator looks the task up in NATS
 * before publishing again (docs/operator.md, "Publishing a Task").
 */
export const PUBLISH_INTENT_ANNOTATION = "celeriac.io/publish-started-at";
