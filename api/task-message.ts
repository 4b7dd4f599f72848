/**
 * The one builder of task messages, used by the operator (for a Task resource) and by
 * `celeriac/client` (for `enqueue`): timing (countdown/eta/expires) turned into absolute times, the
 * retry and timeout resolved task → queue → defaults, and the args-size rule. Pure: the clock is an
 * argument.
 */
import { MAX_ARGS_BYTES } from "./constants.js";
import { DEFAULT_TIMEOUT_SECONDS } from "./defaults.js";
import { messageFlow, producerFlow, type MessageFlow, type QueueFlowSpec } from "./flow.js";
import { MESSAGE_VERSION, uniqueProblem, type MessageUnique, type TaskMessage } from "./message.js";
import { TASK_ID_PATTERN } from "./naming.js";
import type { Task } from "./objects.js";
import { MAX_TIMEOUT_SECONDS, resolveRetryPolicy, retryProblem, type RetryPolicySpec } from "./policies.js";
import type { QueueSpec } from "./queue.js";
import { annotationTraceContext } from "./tracing.js";

/** What a task message is built from. Times are Dates or RFC 3339 strings; durations are seconds. */
export interface NewTaskMessageInput {
  /** Task id (1-256 of `A-Z a-z 0-9 _ = -`): the Task's uid or the client's taskId. Also the Nats-Msg-Id. */
  id: string;
  /** Registered handler name. */
  task: string;
  /** Positional arguments. Default `[]`. */
  args?: unknown[];
  /** Keyword arguments. Default `{}`. */
  kwargs?: Record<string, unknown>;
  /** Queue name and its namespace. */
  queue: string;
  namespace: string;
  /** Who publishes: a Task resource (operator) or a client. */
  origin: TaskMessage["origin"];
  /** Run no earlier than this many seconds after `now` (0 = at once). Exclusive with `eta`. */
  countdownSeconds?: number;
  /** Run no earlier than this time. Exclusive with `countdownSeconds`. */
  eta?: Date | string;
  /** Not run if not started by this time. With `expiresSeconds`, the earlier one applies. */
  expires?: Date | string;
  /** Not run if not started this many seconds after `now`. */
  expiresSeconds?: number;
  /** Handler time limit, seconds. Default the queue's, else DEFAULT_TIMEOUT_SECONDS (3600). */
  timeoutSeconds?: number;
  /** Retry policy; absent fields come from the queue's, then the defaults. */
  retry?: RetryPolicySpec;
  /** The Queue's spec when known (its timeoutSeconds and retry are the task's defaults). */
  queueSpec?: Pick<QueueSpec, "timeoutSeconds" | "retry">;
  /** W3C traceparent to propagate: the parent of the task's `celeriac.enqueue` span (docs/tracing.md). */
  traceparent?: string;
  /** W3C tracestate that goes with `traceparent`. */
  tracestate?: string;
  /**
   * Flow control of the task on a flow-controlled queue (priority level, concurrency key), as
   * resolved by `messageFlow` (api/flow.ts); absent on other queues.
   */
  flow?: MessageFlow;
  /** Singleton key and policy (the message's `unique`); the producer claims its lock (nats/unique.ts) before publishing. */
  unique?: MessageUnique;
}

/** A task message input that breaks a rule; `field` names the input field. */
export class InvalidTaskMessageError extends TypeError {
  /** The offending input field, e.g. `args`, `eta`. */
  readonly field: string;

  /**
   * @param field the offending input field
   * @param message what is wrong and how to fix it
   */
  constructor(field: string, message: string) {
    super(message);
    this.name = "InvalidTaskMessageError";
    this.field = field;
  }
}

/**
 * Size in bytes of `args` and `kwargs` as JSON (what counts against MAX_ARGS_BYTES).
 * @param args positional arguments (default `[]`)
 * @param kwargs keyword arguments (default `{}`)
 */
export function argsSize(args: unknown[] | undefined, kwargs: Record<string, unknown> | undefined): number {
  return Buffer.byteLength(JSON.stringify(args ?? [])) + Buffer.byteLength(JSON.stringify(kwargs ?? {}));
}

/**
 * The args-size rule: a message for args and kwargs holding more than MAX_ARGS_BYTES of JSON, else
 * undefined.
 */
export function argsTooLarge(args: unknown[] | undefined, kwargs: Record<string, unknown> | undefined): string | undefined {
  const argsJson = JSON.stringify(args ?? []);
  const kwargsJson = JSON.stringify(kwargs ?? {});
  // Cheap check first: a string's length bounds its UTF-8 size from below, and a third of it from above.
  if ((argsJson.length + kwargsJson.length) * 3 <= MAX_ARGS_BYTES) return undefined;
  const size = Buffer.byteLength(argsJson) + Buffer.byteLength(kwargsJson);
  if (size <= MAX_ARGS_BYTES) return undefined;
  return `args and kwargs hold ${size} bytes of JSON; at most ${MAX_ARGS_BYTES} (256 KiB) are allowed: pass a reference (an object-store key, a URL) instead of the data`;
}

function toDate(v: Date | string, field: string): Date {
  const d = typeof v === "string" ? new Date(v) : v;
  if (Number.isNaN(d.getTime())) {
    throw new InvalidTaskMessageError(field, `${field}: "${String(v)}" is not a date: use a Date or an RFC 3339 string like 2026-01-02T15:04:05Z`);
  }
  return d;
}

/** The timing and policy options an enqueue and a canvas signature share (times in seconds or RFC 3339 / Date). */
export interface TaskTimingOptions {
  countdownSeconds?: number;
  eta?: Date | string;
  /** RFC 3339 / Date, or seconds from when the message is built. */
  expires?: Date | string | number;
  timeoutSeconds?: number;
  retry?: RetryPolicySpec;
}

/**
 * `o` as NewTaskMessageInput fields, the ones given only: a numeric `expires` becomes
 * `expiresSeconds` (seconds from `now` of `newTaskMessage`). Used by `client.enqueue` and the canvas
 * runtime, so a signature's options mean exactly what an enqueue's do. Pure; checks nothing
 * (`newTaskMessage` does).
 */
export function taskTimingFields(o: TaskTimingOptions): Pick<NewTaskMessageInput, "countdownSeconds" | "eta" | "expires" | "expiresSeconds" | "timeoutSeconds" | "retry"> {
  return {
    ...(o.countdownSeconds !== undefined ? { countdownSeconds: o.countdownSeconds } : {}),
    ...(o.eta !== undefined ? { eta: o.eta } : {}),
    ...(typeof o.expires === "number" ? { expiresSeconds: o.expires } : o.expires !== undefined ? { expires: o.expires } : {}),
    ...(o.timeoutSeconds !== undefined ? { timeoutSeconds: o.timeoutSeconds } : {}),
    ...(o.retry !== undefined ? { retry: o.retry } : {}),
  };
}

/**
 * Builds a task message (envelope v1). `countdownSeconds` > 0 becomes `eta = now + countdown`;
 * `expires` and `expiresSeconds` become one absolute `expires`, the earlier of the two. Pure.
 * @param input what to run, where, and when
 * @param now the producer's clock: the client's enqueue time or the operator's acceptance time
 *   (the Task's `queuedTime`); also `createdAt`
 * @throws InvalidTaskMessageError (a TypeError) naming the field: args not an array, kwargs not an
 *   object, args too large, a bad id, countdown with eta, a negative countdown, an unparseable date,
 *   a bad `unique` key or policy
 */
export function newTaskMessage(input: NewTaskMessageInput, now: Date): TaskMessage {
  const args = input.args ?? [];
  const kwargs = input.kwargs ?? {};
  if (!Array.isArray(args)) throw new InvalidTaskMessageError("args", "args must be a JSON array, e.g. [1, 2]");
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new InvalidTaskMessageError("kwargs", 'kwargs must be a JSON object, e.g. {"a": 1}');
  }
  const tooLarge = argsTooLarge(args, kwargs);
  if (tooLarge) throw new InvalidTaskMessageError("args", tooLarge);
  if (!TASK_ID_PATTERN.test(input.id)) throw new InvalidTaskMessageError("taskId", `taskId "${input.id}" is invalid: use 1-256 of A-Z a-z 0-9 _ = -`);
  if (input.countdownSeconds !== undefined && input.eta !== undefined) {
    throw new InvalidTaskMessageError("countdownSeconds", "countdownSeconds and eta are exclusive: give one");
  }
  if (input.countdownSeconds !== undefined && !(input.countdownSeconds >= 0)) {
    throw new InvalidTaskMessageError("countdownSeconds", `countdownSeconds must be ≥ 0, got ${input.countdownSeconds}`);
  }
  if (input.timeoutSeconds !== undefined && (!Number.isInteger(input.timeoutSeconds) || input.timeoutSeconds < 1 || input.timeoutSeconds > MAX_TIMEOUT_SECONDS)) {
    throw new InvalidTaskMessageError("timeoutSeconds", `timeoutSeconds: ${JSON.stringify(input.timeoutSeconds)} is not an integer from 1 to ${MAX_TIMEOUT_SECONDS} (the handler's time limit in seconds)`);
  }
  if (input.expiresSeconds !== undefined && !(Number.isFinite(input.expiresSeconds) && input.expiresSeconds >= 0)) {
    throw new InvalidTaskMessageError("expires", `expires: ${JSON.stringify(input.expiresSeconds)} seconds is not a number ≥ 0`);
  }
  const badRetry = input.retry !== undefined ? retryProblem(input.retry) : undefined;
  if (badRetry) throw new InvalidTaskMessageError(badRetry.field, badRetry.message);
  const badUnique = input.unique && uniqueProblem(input.unique);
  if (badUnique) throw new InvalidTaskMessageError(badUnique.field, badUnique.message);
  let eta: string | undefined;
  if (input.eta !== undefined) eta = toDate(input.eta, "eta").toISOString();
  else if (input.countdownSeconds !== undefined && input.countdownSeconds > 0) eta = new Date(now.getTime() + input.countdownSeconds * 1000).toISOString();
  const expiries: number[] = [];
  if (input.expires !== undefined) expiries.push(toDate(input.expires, "expires").getTime());
  if (input.expiresSeconds !== undefined) expiries.push(now.getTime() + input.expiresSeconds * 1000);
  const expires = expiries.length > 0 ? new Date(Math.min(...expiries)).toISOString() : undefined;
  return {
    v: MESSAGE_VERSION,
    id: input.id,
    task: input.task,
    args,
    kwargs,
    queue: input.queue,
    namespace: input.namespace,
    origin: input.origin,
    ...(eta ? { eta } : {}),
    ...(expires ? { expires } : {}),
    timeoutSeconds: input.timeoutSeconds ?? input.queueSpec?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    retry: resolveRetryPolicy(input.retry, input.queueSpec?.retry),
    ...(input.traceparent ? { trace: { traceparent: input.traceparent, ...(input.tracestate ? { tracestate: input.tracestate } : {}) } } : {}),
    ...(input.flow ? { flow: input.flow } : {}),
    ...(input.unique ? { unique: { key: input.unique.key, policy: input.unique.policy } } : {}),
    createdAt: now.toISOString(),
  };
}

/**
 * The message input for a Task resource: id = the Task's uid (so a republish is dropped as a
 * duplicate by Nats-Msg-Id), origin = the Task, timing and overrides from its spec; and, when the
 * Queue is flow-controlled, `flow` = `messageFlow` of the Queue spec and the Task's
 * `spec.priority` / `spec.concurrencyKey` (absent otherwise); `unique` = `spec.unique` with its
 * policy resolved (default Reject); `traceparent` / `tracestate` from its `celeriac.io/traceparent` /
 * `celeriac.io/tracestate` annotations, when valid (the parent of the operator's enqueue span). Pure.
 * @param task the Task as read from the API server (spec defaults applied)
 * @param queueSpec the Queue's spec, or undefined when unknown (then no `flow` is resolved and the
 *   Task's flow fields are not checked)
 * @throws Error when the Task has no namespace or uid (it was not read from the API server)
 * @throws InvalidTaskMessageError with `field` `priority` or `concurrencyKey` (message
 *   "spec.priority: …" naming the fix) when the Task sets one its Queue cannot honour (see
 *   `messageFlow`): the Task is never published without it
 */
export function taskMessageInput(task: Task, queueSpec?: NewTaskMessageInput["queueSpec"] & QueueFlowSpec): NewTaskMessageInput {
  const { name, namespace, uid } = task.metadata;
  if (!namespace || !uid) throw new Error(`build task message for Task ${name}: metadata.namespace and metadata.uid are required`);
  const s = task.spec;
  const trace = annotationTraceContext(task.metadata.annotations);
  let flow: MessageFlow | undefined;
  if (queueSpec) {
    try {
      flow = messageFlow(s.queue, producerFlow(queueSpec), { priority: s.priority, concurrencyKey: s.concurrencyKey }, s.args ?? [], (s.kwargs ?? {}) as Record<string, unknown>);
    } catch (err) {
      const message = (err as Error).message;
      const field = message.startsWith("concurrencyKey:") ? "concurrencyKey" : "priority";
      throw new InvalidTaskMessageError(field, `spec.${message}`);
    }
  }
  return {
    id: uid,
    task: s.task,
    ...(s.args ? { args: s.args } : {}),
    ...(s.kwargs ? { kwargs: s.kwargs as Record<string, unknown> } : {}),
    queue: s.queue,
    namespace,
    origin: { kind: "Task", namespace, name, uid },
    ...(s.countdownSeconds !== undefined ? { countdownSeconds: s.countdownSeconds } : {}),
    ...(s.eta !== undefined ? { eta: s.eta } : {}),
    ...(s.expires !== undefined ? { expires: s.expires } : {}),
    ...(s.expiresSeconds !== undefined ? { expiresSeconds: s.expiresSeconds } : {}),
    ...(s.timeoutSeconds !== undefined ? { timeoutSeconds: s.timeoutSeconds } : {}),
    ...(s.retry !== undefined ? { retry: s.retry } : {}),
    ...(queueSpec ? { queueSpec } : {}),
    ...(flow ? { flow } : {}),
    ...(s.unique ? { unique: { key: s.unique.key, policy: s.unique.policy ?? "Reject" } } : {}),
    ...(trace ? { traceparent: trace.traceparent, ...(trace.tracestate ? { tracestate: trace.tracestate } : {}) } : {}),
  };
}
