/**
 * The `Task` resource (celeriac.io/v1alpha1): one background task to run on a queue, Celery's
 * `apply_async` as a Kubernetes object. Spec and status schemas; the TypeScript types derive from them.
 */
import { QUEUE_NAME_PATTERN, TASK_NAME_PATTERN } from "./naming.js";
import { CanvasStatusSchema } from "./canvas.js";
import { Type, type Static } from "@sinclair/typebox";
import { TASK_PHASES } from "./constants.js";
import { TASK_FLOW_FIELDS, WaitingSchema } from "./flow.js";
import { retryPolicySchema } from "./policies.js";
import { AnyJson, Conditions, FreeObject, StringEnum, Timestamp } from "./schema-helpers.js";

export { QUEUE_NAME_PATTERN, TASK_NAME_PATTERN };


/** Message of the rule that makes a Task's spec immutable. */
export const TASK_SPEC_IMMUTABLE_MESSAGE = "spec is immutable after creation: delete and recreate the Task";
/** Message of the countdownSeconds/eta rule. */
export const COUNTDOWN_ETA_MESSAGE = "countdownSeconds and eta are mutually exclusive";

/** CEL rules of every task spec (a Task's and a Schedule's template): cross-field timing checks. */
const TASK_SPEC_RULES = [
  { rule: "!(has(self.countdownSeconds) && has(self.eta))", message: COUNTDOWN_ETA_MESSAGE },
  {
    rule: "!has(self.countdownSeconds) || !has(self.expiresSeconds) || self.countdownSeconds <= self.expiresSeconds",
    message: "countdownSeconds must not exceed expiresSeconds: the task would expire before it may run",
  },
  {
    rule: "!has(self.eta) || !has(self.expires) || timestamp(self.eta) <= timestamp(self.expires)",
    message: "eta must not be later than expires: the task would expire before it may run",
  },
];

/**
 * Fields of a Task spec, shared with a Schedule's `taskTemplate.spec`.
 * @param extraRules more `x-kubernetes-validations` on the spec node (Task.spec adds immutability)
 */
export function taskSpecSchema(description: string, extraRules: ReadonlyArray<{ rule: string; message: string }> = []) {
  return Type.Object(
    {
      queue: Type.String({
        minLength: 1,
        maxLength: 63,
        pattern: QUEUE_NAME_PATTERN,
        description: "Name of the Queue (same namespace) that runs this task. Required. The task waits in phase Pending (reason QueueNotFound) until the Queue exists.",
      }),
      task: Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: TASK_NAME_PATTERN,
        description: "Registered handler name, as passed to defineTask() in the worker's tasks module, e.g. reports.generate. Required.",
      }),
      args: Type.Optional(
        Type.Array(AnyJson({ description: "Any JSON value, null included." }), {
          description: "Positional arguments (JSON array) passed to the handler. args and kwargs together may hold at most 256 KiB of JSON.",
        }),
      ),
      kwargs: Type.Optional(FreeObject({ description: "Keyword arguments (JSON object) passed to the handler; null values are kept." })),
      countdownSeconds: Type.Optional(
        Type.Number({ minimum: 0, maximum: 31536000, description: "Run no earlier than this many seconds after the Task is accepted (Celery countdown). Mutually exclusive with eta." }),
      ),
      eta: Type.Optional(Timestamp({ description: "Run no earlier than this time (RFC 3339, e.g. 2026-11-23T18:00:00Z; Celery eta). Mutually exclusive with countdownSeconds." })),
      expires: Type.Optional(
        Timestamp({ description: "If the task has not started by this time (RFC 3339) it is not run and ends in phase Expired (Celery expires)." }),
      ),
      expiresSeconds: Type.Optional(
        Type.Number({ minimum: 0, maximum: 31536000, description: "Like expires, relative: seconds after the Task is accepted. If both are set the earlier one applies." }),
      ),
      timeoutSeconds: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 604800, description: "Handler time limit in seconds; the handler's AbortSignal fires at the deadline. Default: the Queue's timeoutSeconds (3600)." }),
      ),
      retry: Type.Optional(retryPolicySchema(false)),
      ...TASK_FLOW_FIELDS,
      ttlSecondsAfterFinished: Type.Optional(
        Type.Integer({ minimum: 0, description: "Delete the Task this many seconds after it reaches a terminal phase (Job semantics). Unset: keep it." }),
      ),
    },
    {
      description,
      "x-kubernetes-validations": [...TASK_SPEC_RULES, ...extraRules],
    },
  );
}

/** Schema of `Task.spec`. */
export const TaskSpecSchema = taskSpecSchema(
  "What to run: the handler name, its arguments and the queue, plus optional timing (countdownSeconds or eta — not both —, expires), timeout and retry overrides. Immutable after creation (like a Job's template): delete and recreate the Task to change it.",
  [{ rule: "self == oldSelf", message: TASK_SPEC_IMMUTABLE_MESSAGE }],
);
/** `Task.spec`. */
export type TaskSpec = Static<typeof TaskSpecSchema>;

/** Schema of a task error as recorded in status and results. */
export const TaskErrorSchema = Type.Object(
  {
    type: Type.String({ description: "Error class name, e.g. TypeError, UnrecoverableError, TimeoutError, UnknownTaskError." }),
    message: Type.String({ description: "Error message." }),
    stack: Type.Optional(Type.String({ description: "First lines of the stack trace (at most 2 KiB)." })),
  },
  { description: "The error of the last failed attempt." },
);
/** A task error. */
export type TaskError = Static<typeof TaskErrorSchema>;

/** Most bytes of JSON a progress report's `meta` may have (4 KiB): it is written into the task's record and onto its Task. */
export const MAX_PROGRESS_META_BYTES = 4096;

/**
 * Schema of `status.progress`: the last progress a running handler reported with `ctx.progress`
 * (Celery's `update_state(meta=…)`, BullMQ's `updateProgress`). Either `fraction` alone, or `done`
 * (with `total` when known, and then `fraction` = done / total); `display` is what the Progress
 * column shows. The final record keeps the last report.
 */
export const TaskProgressSchema = Type.Object(
  {
    fraction: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "Share of the work done, 0 to 1 (from done / total when the handler reported counts)." })),
    done: Type.Optional(Type.Integer({ minimum: 0, description: "Units of work done (items, bytes, …), when the handler reported counts." })),
    total: Type.Optional(Type.Integer({ minimum: 0, description: "Units of work in all, when known (done ≤ total)." })),
    display: Type.String({ maxLength: 64, description: "Short text for the Progress column: 40% for a fraction, 4/10 for counts, 4 for a count with no total." }),
    meta: Type.Optional(FreeObject({ description: "The handler's own JSON object (a custom state such as {stage: resizing}, the current item, …), at most 4 KiB of JSON." })),
    updatedAt: Timestamp({ description: "When the handler reported this progress." }),
  },
  { description: "Last progress reported by the running handler (ctx.progress): fraction and/or done/total, its own metadata, and when. Kept in the final status." },
);
/** `Task.status.progress`. */
export type TaskProgress = Static<typeof TaskProgressSchema>;

/** Schema of `Task.status` — also the shape of a task's record in the results bucket. */
export const TaskStatusSchema = Type.Object(
  {
    phase: Type.Optional(
      StringEnum(TASK_PHASES, {
        description: "Lifecycle phase: Pending (not yet published: waiting for its Queue or its countdown/eta), Queued, Running, Retrying (waiting for the next attempt), and the terminal Succeeded, Failed, Cancelled (revoked), Expired.",
      }),
    ),
    attempts: Type.Optional(Type.Integer({ minimum: 0, description: "Attempts started so far, including crashed ones." })),
    queuedTime: Type.Optional(Timestamp({ description: "When the task message was published to the queue." })),
    startTime: Type.Optional(Timestamp({ description: "When the first attempt started." })),
    lastAttemptStartTime: Type.Optional(Timestamp({ description: "When the last attempt started (equal to startTime after one attempt)." })),
    completionTime: Type.Optional(Timestamp({ description: "When the task reached a terminal phase." })),
    duration: Type.Optional(Type.String({ description: "completionTime − startTime as a Go-style duration (e.g. 1.5s, 2m3s), written when the task finishes; what kubectl's DURATION column shows, as for a Job." })),
    nextRetryTime: Type.Optional(Timestamp({ description: "When the next attempt is due (phase Retrying)." })),
    waiting: Type.Optional(WaitingSchema),
    worker: Type.Optional(Type.String({ description: "Worker (pod name or host/pid) that ran the last attempt." })),
    progress: Type.Optional(TaskProgressSchema),
    result: Type.Optional(AnyJson({ description: "The handler's return value (JSON, null included), when at most 8 KiB; larger results are in resultRef." })),
    resultRef: Type.Optional(
      Type.Object(
        {
          bucket: Type.String({ description: "NATS KV bucket name." }),
          key: Type.String({ description: "Key in the bucket (the task id)." }),
          sizeBytes: Type.Integer({ minimum: 0, description: "Size of the encoded result, in bytes." }),
        },
        { description: "Where a result too large for status is kept (the results bucket, until its TTL)." },
      ),
    ),
    error: Type.Optional(TaskErrorSchema),
    deadLettered: Type.Optional(Type.Boolean({ description: "True when the task's message was moved to the queue's dead-letter stream." })),
    canvas: Type.Optional(CanvasStatusSchema),
    conditions: Type.Optional(Conditions("Accepted, Running, Succeeded and Failed conditions (metav1.Condition).")),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: "The .metadata.generation the operator last acted on." })),
  },
  { description: "Observed state of the task, written by the operator (Pending/Queued) and by workers (everything after)." },
);
/** `Task.status`. */
export type TaskStatus = Static<typeof TaskStatusSchema>;

/** Printer columns of `kubectl get tasks`. */
export const TASK_PRINTER_COLUMNS = [
  { name: "Queue", type: "string", jsonPath: ".spec.queue", description: "Queue the task runs on." },
  { name: "Task", type: "string", jsonPath: ".spec.task", description: "Registered handler name." },
  { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Lifecycle phase." },
  { name: "Attempts", type: "integer", jsonPath: ".status.attempts", description: "Attempts started." },
  { name: "Progress", type: "string", jsonPath: ".status.progress.display", description: "Last progress the handler reported (40% or 4/10)." },
  { name: "Duration", type: "string", jsonPath: ".status.duration", description: "First attempt's start to completion (written when the task finishes)." },
  { name: "Waiting", type: "string", jsonPath: ".status.waiting.reason", priority: 1, description: "Why a queued task is held back by flow control." },
  { name: "Worker", type: "string", jsonPath: ".status.worker", priority: 1, description: "Worker of the last attempt." },
  { name: "Error", type: "string", jsonPath: ".status.error.message", priority: 1, description: "Error of the last failed attempt." },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];
