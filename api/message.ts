/**
 * The task message: the versioned JSON envelope the operator and the client publish and the worker
 * consumes, its NATS headers, and the record kept in the results bucket. See docs/protocol.md.
 *
 * The worker validates every message with `parseTaskMessage`, built from the same schema the
 * producers are typed by, so a producer and a consumer can never disagree silently.
 */
import { Type, type Static } from "@sinclair/typebox";
import { QUEUE_NAME_PATTERN, TASK_NAME_PATTERN, TaskStatusSchema, type TaskError, type TaskStatus } from "./task.js";
import { FLOW_KEY_PATTERN, MessageFlowSchema, UNIQUE_POLICIES, UniqueSchema } from "./flow.js";
import { MessageCanvasSchema, type MessageCanvas } from "./canvas.js";
import { AnyJson, FreeObject, StringEnum, Timestamp } from "./schema-helpers.js";
import { validateValue, type JSONSchemaProps } from "./validation.js";

/** Version of the envelope; a worker refuses (dead-letters) messages of another major version. */
export const MESSAGE_VERSION = 1;

/** NATS header names used on task messages and dead letters. */
export const HEADERS = {
  /** JetStream de-duplication id: always the task id (Nats-Msg-Id semantics, see NATS docs). */
  msgId: "Nats-Msg-Id",
  /** Envelope version, e.g. `1`. */
  version: "Celeriac-Version",
  /** The task (handler) name, for routing and observability without parsing the body. */
  task: "Celeriac-Task",
  /** W3C trace context, copied from the envelope. */
  traceparent: "traceparent",
  /** Dead letters: why the message was dead-lettered (a DeadLetterReason). */
  deadReason: "Celeriac-Dead-Reason",
  /** Dead letters: human-readable detail (error message, validation error). */
  deadDetail: "Celeriac-Dead-Detail",
  /** Dead letters: the stream sequence of the original message. */
  deadStreamSeq: "Celeriac-Dead-Stream-Seq",
  /** Dead letters: attempts made. */
  deadAttempts: "Celeriac-Dead-Attempts",
  /** Dead letters: stream the message came from. */
  deadStream: "Celeriac-Dead-Stream",
} as const;

/** Why a message was dead-lettered. */
export const DEAD_LETTER_REASONS = [
  "MaxAttemptsExceeded",
  "Unrecoverable",
  "UnknownTask",
  "InvalidMessage",
  "TimedOut",
] as const;
/** A dead-letter reason. */
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** Schema of the resolved retry policy carried by a message (seconds). */
export const MessageRetrySchema = Type.Object({
  maxAttempts: Type.Integer({ minimum: 1, maximum: 1000 }),
  backoff: Type.Object({
    initialSeconds: Type.Number({ minimum: 0 }),
    factor: Type.Number({ minimum: 1 }),
    maxSeconds: Type.Number({ minimum: 0 }),
    jitter: Type.Boolean(),
  }),
});

/**
 * Schema of the `unique` field of a task message: the task's singleton key and its policy, resolved
 * by the producer (policy default Reject, as `UniqueSchema`'s). The producer claims the key's lock
 * (nats/unique.ts `claimUnique`) before it publishes; the worker runs the task only while the lock
 * names it, and its final settle releases the lock.
 */
export const MessageUniqueSchema = Type.Object(
  {
    key: UniqueSchema.properties.key,
    policy: StringEnum(UNIQUE_POLICIES, { description: "Reject, Replace or Wait: what the producer did when the key was held (see Task spec.unique.policy)." }),
  },
  { description: "Singleton (unique-while-active): at most one task of the queue with this key runs at a time." },
);
/** A message's `unique` field. */
export type MessageUnique = Static<typeof MessageUniqueSchema>;

/**
 * What is wrong with a `unique` value, or undefined when it is valid: a key of 1–128 characters
 * matching FLOW_KEY_PATTERN (no control characters, no space at either end) and a policy of
 * UNIQUE_POLICIES. Pure; never throws.
 * @returns `{field, message}` naming `unique.key` or `unique.policy` and the fix
 */
export function uniqueProblem(u: { key: unknown; policy: unknown }): { field: string; message: string } | undefined {
  const { key, policy } = u;
  if (typeof key !== "string" || key.length < 1 || key.length > 128 || !new RegExp(FLOW_KEY_PATTERN).test(key)) {
    return { field: "unique.key", message: `unique.key ${JSON.stringify(key)} is invalid: use 1-128 printable characters with no space at either end` };
  }
  if (typeof policy !== "string" || !(UNIQUE_POLICIES as readonly string[]).includes(policy)) {
    return { field: "unique.policy", message: `unique.policy ${JSON.stringify(policy)} is invalid: use one of ${UNIQUE_POLICIES.join(", ")}` };
  }
  return undefined;
}

/** Schema of the task message envelope, version 1. */
export const TaskMessageSchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Envelope version (1)." }),
    id: Type.String({ minLength: 1, maxLength: 256, description: "Task id: the Task's uid, or the client's taskId / a random UUID. Also the Nats-Msg-Id." }),
    task: Type.String({ minLength: 1, maxLength: 200, pattern: TASK_NAME_PATTERN, description: "Registered handler name." }),
    args: Type.Array(AnyJson(), { description: "Positional arguments." }),
    kwargs: FreeObject({ description: "Keyword arguments." }),
    queue: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "Queue name." }),
    namespace: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "Kubernetes namespace of the queue." }),
    origin: Type.Object(
      {
        kind: StringEnum(["Task", "Client", "Workflow"] as const, { description: "Task: published by the operator for a Task resource; Client: by celeriac/client or `celeriac enqueue`; Workflow: by the operator for a step of a Workflow resource (the operator writes its status)." }),
        namespace: Type.Optional(Type.String()),
        name: Type.Optional(Type.String()),
        uid: Type.Optional(Type.String()),
      },
      { description: "Who published the task; for kind Task, the resource whose status workers write." },
    ),
    eta: Type.Optional(Timestamp({ description: "Not before this time (RFC 3339)." })),
    expires: Type.Optional(Timestamp({ description: "Not after this time (RFC 3339): a later start ends Expired." })),
    timeoutSeconds: Type.Integer({ minimum: 1, description: "Handler time limit, in seconds." }),
    retry: MessageRetrySchema,
    trace: Type.Optional(
      Type.Object({ traceparent: Type.String(), tracestate: Type.Optional(Type.String()) }, { description: "W3C trace context." }),
    ),
    flow: Type.Optional(MessageFlowSchema),
    unique: Type.Optional(MessageUniqueSchema),
    canvas: Type.Optional(MessageCanvasSchema),
    retryOf: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: "Set by `celeriac tasks retry`: the id of the task this one re-runs (same task, args and kwargs, new id). Workers ignore it; the link is also kept in the results bucket (`retry.<id>`, docs/protocol.md)." }),
    ),
    replayOf: Type.Optional(
      Type.Object(
        {
          stream: Type.String({ description: "The dead-letter stream, e.g. CELERIAC_default_emails_DLQ." }),
          seq: Type.Integer({ minimum: 1, description: "The dead letter's sequence in that stream." }),
          id: Type.Optional(Type.String({ description: "The dead-lettered task's id." })),
        },
        { description: "Set by `celeriac dlq replay`: the dead letter this task replays (its id is `<id>-r<seq>`)." },
      ),
    ),
    createdAt: Timestamp({ description: "When the producer created the message (RFC 3339)." }),
  },
  { description: "Task message envelope v1." },
);
/** A task message (envelope v1). */
export type TaskMessage = Omit<Static<typeof TaskMessageSchema>, "canvas"> & { canvas?: MessageCanvas };

/** Result of parsing a message body. */
export type ParseResult = { ok: true; message: TaskMessage } | { ok: false; reason: string };

/**
 * Parses and validates a task message body. Never throws: a bad body gives `{ok: false, reason}`,
 * with a reason naming the field (e.g. `task: Required value`), fit for a dead-letter header.
 * @param data the raw message payload (UTF-8 JSON)
 */
export function parseTaskMessage(data: Uint8Array | string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch (err) {
    return { ok: false, reason: `body is not JSON: ${(err as Error).message}; a task message is the v1 JSON envelope described in docs/protocol.md` };
  }
  if (value !== null && typeof value === "object" && "v" in value && (value as { v: unknown }).v !== MESSAGE_VERSION) {
    return { ok: false, reason: `v: Unsupported value: ${JSON.stringify((value as { v: unknown }).v)}: supported values: ${MESSAGE_VERSION}` };
  }
  const causes = validateValue(TaskMessageSchema as unknown as JSONSchemaProps, value);
  if (causes.length > 0) {
    return { ok: false, reason: causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join("; ") };
  }
  return { ok: true, message: value as TaskMessage };
}

/**
 * Schema of a record's delivery trace (`delivery`), written by workers for crash attribution
 * (worker/attribution.ts): which JetStream delivery wrote the record and the worker losses so far.
 */
export const DeliveryTraceSchema = Type.Object(
  {
    count: Type.Integer({ minimum: 1, description: "JetStream delivery count (1-based) of the delivery that wrote the record." }),
    alone: Type.Boolean({ description: "True when that delivery runs (ran) alone on its worker process." }),
    workerLost: Type.Integer({ minimum: 0, description: "Deliveries of this task lost with their worker process so far, counted or not." }),
    workerLostAlone: Type.Integer({ minimum: 0, description: "Of workerLost, those lost while the task ran alone: counted in status.attempts." }),
    workerLostWaiting: Type.Optional(
      Type.Integer({ minimum: 0, description: "Of workerLost, those lost before the handler started (the delivery waited to run alone): counted nowhere. Absent = 0." }),
    ),
  },
  { description: "Delivery trace of a results-bucket record (crash attribution)." },
);
/** A record's delivery trace. */
export type DeliveryTraceRecord = Static<typeof DeliveryTraceSchema>;

/**
 * Schema of a task's record in the results bucket (key = task id): the message identity plus the
 * same status shape as `Task.status` — one status model, two stores — and, on records workers
 * write, the optional `delivery` trace (readers that do not attribute crashes ignore it).
 */
export const TaskRecordSchema = Type.Object({
  id: Type.String(),
  task: Type.String(),
  queue: Type.String(),
  namespace: Type.String(),
  origin: TaskMessageSchema.properties.origin,
  status: TaskStatusSchema,
  updatedAt: Timestamp(),
  concurrencyKey: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, description: "The task's resolved concurrency key (its message's flow.key), on records written from the message (worker, dispatcher); absent: the task has none. `celeriac tasks list --concurrency-key` filters on it." }),
  ),
  delivery: Type.Optional(DeliveryTraceSchema),
});
/** A results-bucket record. */
export type TaskRecord = Static<typeof TaskRecordSchema>;

/** The identity part of a record: the message fields a record repeats (`id` is the results-bucket key). */
export type TaskIdentity = Pick<TaskMessage, "id" | "task" | "queue" | "namespace" | "origin">;

/**
 * Builds a results-bucket record: the identity's five fields, `status` as given and `updatedAt`.
 * The one place a `TaskRecord` is put together (worker outcomes, `Running` records, and revoking a
 * task that has not started). Pure; never throws.
 * @param identity id, task, queue, namespace and origin of the task; when it carries a message's
 *   `canvas`, `status.canvas` is set to its {root, parent, step} (a `failedStep` in `status` kept);
 *   when it carries a message's `flow.key` (the worker passes the message), `concurrencyKey` is set to it
 * @param status the task's status (`Task.status` shape), stored as given (but for `canvas`)
 * @param updatedAt when the record is written (RFC 3339 string or Date); default now
 * @returns `{id, task, queue, namespace, origin, status, updatedAt}` and `concurrencyKey` when the task has one
 */
export function taskRecord(identity: TaskIdentity & { canvas?: MessageCanvas; flow?: { key?: string } }, status: TaskStatus, updatedAt: Date | string = new Date()): TaskRecord {
  const { id, task, queue, namespace, origin, canvas } = identity;
  const key = identity.flow?.key;
  const st: TaskStatus = canvas
    ? { ...status, canvas: { root: canvas.root, ...(canvas.parent !== undefined ? { parent: canvas.parent } : {}), step: canvas.step, ...(status.canvas?.failedStep ? { failedStep: status.canvas.failedStep } : {}) } }
    : status;
  return { id, task, queue, namespace, origin, status: st, updatedAt: typeof updatedAt === "string" ? updatedAt : updatedAt.toISOString(), ...(key !== undefined ? { concurrencyKey: key } : {}) };
}

/**
 * The error recorded when a task is revoked before any attempt started (phase `Cancelled`): by the
 * worker that takes its message, or at once by `revokeTask` when no worker has.
 */
export const REVOKED_BEFORE_START: Readonly<TaskError> = Object.freeze({ type: "CancelledError", message: "revoked before it started" });
