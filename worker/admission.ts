/**
 * Admission: what happens to a delivered message before any handler runs. `admit` is pure, like
 * `classifyOutcome` after the handler: it either admits the message to run, or returns the ending
 * to settle at once (revoked, expired, unknown task, attempts exhausted, invalid message), or the
 * replay of a final record an earlier delivery already wrote.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { REVOKED_BEFORE_START, type ParseResult, type TaskMessage, type TaskRecord } from "../api/message.js";
import { TASK_ID_PATTERN } from "../api/naming.js";
import { resolveRetryPolicy, type ResolvedRetryPolicy } from "../api/policies.js";
import { isTerminalPhase } from "../api/constants.js";
import type { TaskDefinition } from "./define-task.js";
import { UnknownTaskError, WorkerLostError } from "./errors.js";
import type { Settlement } from "./settle.js";

/** A message admitted to run: its envelope, its handler and the retry policy in force. */
export interface Admitted {
  /** The validated envelope. */
  readonly message: TaskMessage;
  /** The registered handler of `message.task`. */
  readonly def: TaskDefinition;
  /** The message's retry policy with the handler's overrides applied (seconds). */
  readonly policy: ResolvedRetryPolicy;
}

/** The decision of `admit`: run the handler, or settle the message now. */
export type Admission = { readonly run: Admitted } | { readonly settle: Settlement };

/** What `admit` looks at. Times in ms. */
export interface AdmissionInput {
  /** The parsed body (`parseTaskMessage`). */
  readonly parsed: ParseResult;
  /** The JetStream delivery count, 1-based: this attempt's number. */
  readonly attempt: number;
  /** The `Nats-Msg-Id` header (the task id) and the `Celeriac-Task` header: used only when the body does not parse. */
  readonly headers: { readonly id: string | undefined; readonly task: string | undefined };
  /** The worker's queue: the identity of a record for a body that does not parse. */
  readonly queue: string;
  /** The worker's namespace, likewise. */
  readonly namespace: string;
  /** The subject the message came on (for the `InvalidMessage` detail); the worker's queue and namespace are its tokens. */
  readonly subject?: string | undefined;
  /** Registered handlers by task name. */
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** True when the task id has been revoked. */
  readonly isRevoked: (id: string) => boolean;
  /** The final record an earlier delivery wrote (see `finishedRecord`), if any. */
  readonly finished?: TaskRecord | undefined;
  /** Now, in ms since the epoch (for `expires`). */
  readonly nowMs: number;
}

/**
 * Decides a delivered message, in this order:
 * 1. body invalid → deadLetter `InvalidMessage` (recorded when the `Nats-Msg-Id` header is a valid task id);
 * 2. task id invalid → deadLetter `InvalidMessage`, nothing recorded;
 * 2b. envelope `queue`/`namespace` not the ones of the subject it came on (the worker's) →
 *    deadLetter `InvalidMessage`, nothing recorded (the envelope cannot be trusted to name a record);
 * 3. an earlier delivery recorded a final outcome → replay it (write again, ack);
 * 4. revoked → cancel; 5. past `expires` → expire;
 * 6. no handler for the task → deadLetter `UnknownTask`;
 * 7. delivery count above `maxAttempts` (the last attempt's worker was lost) → deadLetter
 *    `MaxAttemptsExceeded`, recording `maxAttempts` attempts;
 * 8. else run.
 * Pure; never throws.
 * @param input the parsed message, its delivery count and the worker's view (tasks, revocations, now)
 * @returns `{run}` with the admitted message, or `{settle}` with the ending (or replay) to settle now
 */
export function admit(input: AdmissionInput): Admission {
  const { parsed, attempt } = input;
  if (!parsed.ok) {
    const id = input.headers.id ?? "";
    const task = input.headers.task || "unknown";
    // best effort: a record for an id we can find, so result() callers learn why
    const identity = TASK_ID_PATTERN.test(id) ? { id, task, queue: input.queue, namespace: input.namespace, origin: { kind: "Client" as const } } : undefined;
    return { settle: { outcome: { action: "deadLetter", reason: "InvalidMessage" }, identity, task, attempts: attempt, error: { type: "InvalidMessage", message: parsed.reason }, detail: parsed.reason } };
  }
  const msg = parsed.message;
  if (!TASK_ID_PATTERN.test(msg.id)) {
    const detail = `id: "${msg.id.slice(0, 80)}" is not a valid task id: use 1-256 of A-Z a-z 0-9 _ = -`;
    return { settle: { outcome: { action: "deadLetter", reason: "InvalidMessage" }, identity: undefined, task: msg.task, attempts: attempt, detail } };
  }
  if (msg.queue !== input.queue || msg.namespace !== input.namespace) {
    const detail = `envelope queue/namespace "${msg.namespace}/${msg.queue}" does not match the subject it came on (${input.subject ?? `queue ${input.namespace}/${input.queue}`})`;
    return { settle: { outcome: { action: "deadLetter", reason: "InvalidMessage" }, identity: undefined, task: msg.task, attempts: attempt, detail } };
  }
  if (input.finished && isTerminalPhase(input.finished.status.phase)) return { settle: { replay: input.finished } };
  const base = { identity: msg, task: msg.task, attempts: attempt, queuedTime: msg.createdAt };
  if (input.isRevoked(msg.id)) return { settle: { ...base, outcome: { action: "cancel", phase: "Cancelled" }, error: { ...REVOKED_BEFORE_START } } };
  if (msg.expires && Date.parse(msg.expires) < input.nowMs) {
    return { settle: { ...base, outcome: { action: "expire", phase: "Expired" }, error: { type: "ExpiredError", message: `not started before it expired at ${msg.expires}` } } };
  }
  const def = input.tasks.get(msg.task);
  if (!def) {
    const registered = [...input.tasks.keys()].sort().join(", ");
    const text = `no handler registered for "${msg.task}" on queue "${msg.queue}"; registered: ${registered}`;
    return { settle: { ...base, outcome: { action: "deadLetter", reason: "UnknownTask" }, error: { type: new UnknownTaskError(text).name, message: text }, detail: text } };
  }
  const policy = resolveRetryPolicy(def.options.retry, msg.retry);
  if (attempt > policy.maxAttempts) {
    const text = `attempt ${attempt - 1} of ${policy.maxAttempts} did not finish: its worker was lost`;
    return { settle: { ...base, attempts: attempt - 1, outcome: { action: "deadLetter", reason: "MaxAttemptsExceeded" }, error: { type: new WorkerLostError(text).name, message: text }, detail: text } };
  }
  return { run: { message: msg, def, policy } };
}

/**
 * For a redelivery (delivery count > 1) of a valid message: the record of task `id` in the results
 * bucket when it is final (Succeeded, Failed, Cancelled, Expired), else undefined.
 * @param kv the queue's results bucket
 * @param id the task id (the record's key)
 * @param log where a failed lookup is logged
 * @returns the final record, or undefined when there is none or it is not final
 * @throws the KV error (or a JSON parse error), after logging it: the message is left for redelivery
 */
export async function finishedRecord(kv: KV, id: string, log: Logger): Promise<TaskRecord | undefined> {
  try {
    const prev = await kv.get(id);
    if (prev?.operation !== "PUT") return undefined;
    const rec = prev.json<TaskRecord>();
    return isTerminalPhase(rec.status.phase) ? rec : undefined;
  } catch (err) {
    log.warn({ err, taskId: id }, "Check of previous record failed");
    throw err;
  }
}
