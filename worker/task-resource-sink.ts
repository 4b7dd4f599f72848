/**
 * The second status store: for tasks published for a `Task` resource (`origin.kind === "Task"`), the
 * worker writes the record's status onto the Task by server-side apply through the `/status`
 * subresource under its own field manager (`celeriac-worker`), so `kubectl get tasks` and
 * `kubectl wait --for=condition=Succeeded` see it. Client-enqueued tasks (no resource) are skipped:
 * their status lives in the results bucket only.
 *
 * Each apply is the worker's whole status intent: its fields and its own conditions (Running,
 * Succeeded, Failed). `conditions` is a list-map keyed by type, so the operator's `Accepted` stays
 * the operator's and is never read or re-sent here; a field the worker leaves out (a stale
 * `nextRetryTime`, an earlier `result`) is removed by the server, and `result` is sent as is, nulls
 * included, so the Task's result is the stored result exactly.
 *
 * The Task is read once per write, for three guards: the message must belong to it (origin uid =
 * the live uid, origin namespace = the worker's), a terminal phase is never overwritten, and the
 * apply carries the resourceVersion read, so a Task that changed in between (e.g. turned terminal)
 * answers 409 and is read again.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CONDITION_TYPES, FIELD_MANAGERS, isTerminalPhase, MAX_INLINE_RESULT_BYTES, REASONS } from "../api/constants.js";
import { getCondition, setCondition, type Condition } from "../api/conditions.js";
import type { TaskRecord } from "../api/message.js";
import { CELERIAC_TYPES, type Task } from "../api/objects.js";
import { TaskStatusSchema, type TaskStatus } from "../api/task.js";
import { applyStatus, getObject, isConflict, isNotFound, patchStatus } from "../kube/k8s-client.js";
import type { StatusSink } from "./status-sink.js";

/** Status fields the worker owns, copied from the record when present. */
const WORKER_FIELDS = ["phase", "attempts", "startTime", "completionTime", "nextRetryTime", "worker", "error", "deadLettered"] as const;

/** Object-valued worker fields, cleared by a merge patch before an apply that leaves them out (see `write`). */
const STALE_CLEARED = ["error", "resultRef"] as const;

/** The condition types the worker owns on a Task; `Accepted` is the operator's. */
export const WORKER_CONDITION_TYPES: readonly string[] = [CONDITION_TYPES.Task.Running, CONDITION_TYPES.Task.Succeeded, CONDITION_TYPES.Task.Failed];

/** What `taskStatusApply` needs besides the record. */
export interface TaskStatusApplyOptions {
  /** The results bucket name (for `resultRef`). */
  readonly bucket: string;
  /** The Task's live status (its conditions' transition times and its first `startTime` are kept). */
  readonly live: TaskStatus | undefined;
  /** Write `lastAttemptStartTime` (only when the Task schema declares it; else the server prunes it). */
  readonly lastAttemptStartTime: boolean;
  /** The current time. */
  readonly now: Date;
}

/**
 * The status the worker applies to a Task for a results-bucket record: its fields, the result inline
 * exactly as stored (nulls kept) when it encodes to at most 8 KiB, else a `resultRef` to the bucket,
 * and its own conditions only (Running / Succeeded / Failed; `lastTransitionTime` kept from `live`
 * unless the status flips). `startTime` is the first attempt's: the live one when the Task has it.
 * Pure; never throws.
 * @param record the record the worker wrote to the results bucket
 */
export function taskStatusApply(record: TaskRecord, o: TaskStatusApplyOptions): Record<string, unknown> {
  const s = record.status;
  const out: Record<string, unknown> = {};
  for (const f of WORKER_FIELDS) if (s[f] !== undefined) out[f] = s[f];
  if (s.startTime !== undefined) {
    out.startTime = o.live?.startTime ?? s.startTime;
    if (o.lastAttemptStartTime) out.lastAttemptStartTime = s.startTime;
  }
  if (s.result !== undefined) {
    const size = Buffer.byteLength(JSON.stringify(s.result));
    if (size > MAX_INLINE_RESULT_BYTES) out.resultRef = { bucket: o.bucket, key: record.id, sizeBytes: size };
    else out.result = s.result;
  }
  const live = (o.live?.conditions ?? []) as Condition[];
  let conditions: Condition[] = [];
  const set = (type: string, status: "True" | "False", reason: string, message: string) => {
    const prev = getCondition(live, type);
    conditions = setCondition([...conditions, ...(prev ? [prev] : [])], { type, status, reason, message }, o.now);
  };
  const phase = s.phase;
  const { Running, Succeeded, Failed } = CONDITION_TYPES.Task;
  if (phase === "Running") set(Running, "True", REASONS.Started, `attempt ${s.attempts ?? 1} running on ${s.worker ?? "a worker"}`);
  else if (phase === "Retrying") set(Running, "False", REASONS.Retrying, `attempt ${s.attempts ?? 0} failed: ${s.error?.message ?? "error"}; next attempt at ${s.nextRetryTime ?? "soon"}`);
  else if (isTerminalPhase(phase)) {
    set(Running, "False", REASONS.Completed, `finished: ${phase}`);
    if (phase === "Succeeded") set(Succeeded, "True", REASONS.Completed, `succeeded after ${s.attempts ?? 1} attempt(s)`);
    else {
      const reason = phase === "Cancelled" ? REASONS.Revoked : phase === "Expired" ? REASONS.Expired : failureReason(s);
      set(Succeeded, "False", reason, s.error?.message ?? phase ?? "");
      if (phase === "Failed") set(Failed, "True", reason, s.error?.message ?? "failed");
    }
  }
  out.conditions = conditions;
  return out;
}

/** The condition reason of a `Failed` status, from its error type. */
export function failureReason(s: TaskStatus): string {
  const t = s.error?.type;
  return t === "UnknownTaskError" ? REASONS.UnknownTask : t === "TimeoutError" ? REASONS.TimedOut : t === "InvalidMessage" ? REASONS.InvalidMessage : REASONS.HandlerFailed;
}

/**
 * Why the worker must not write `record` onto the live Task, or undefined when it may. Pure.
 * @param record the record (origin kind Task)
 * @param live the Task as read
 * @param namespace the worker's namespace
 */
export function refusal(record: TaskRecord, live: Task, namespace: string): string | undefined {
  const o = record.origin;
  if (!o.uid) return "the message's origin names the Task without a uid";
  if (live.metadata.uid !== o.uid) return `the message's origin uid ${o.uid} is not the Task's uid ${live.metadata.uid ?? "(none)"}`;
  if (o.namespace !== namespace) return `the Task's namespace ${o.namespace ?? "(none)"} is not the worker's namespace ${namespace}`;
  if (isTerminalPhase(live.status?.phase)) return `the Task already finished (phase ${live.status?.phase})`;
  return undefined;
}

/** What a `TaskResourceSink` needs. */
export interface TaskResourceSinkOptions {
  /** The worker's namespace: a Task elsewhere is never written. */
  readonly namespace: string;
  /** Where a refused write is logged (warn). */
  readonly log: Logger;
  /** Write `status.lastAttemptStartTime` (default: when the Task schema declares it). */
  readonly lastAttemptStartTime?: boolean;
}

/** Writes task records onto their Task resources. */
export class TaskResourceSink implements StatusSink {
  readonly name = "task-resource";
  readonly #kc: KubeConfig;
  readonly #bucket: string;
  readonly #o: TaskResourceSinkOptions;
  readonly #lastAttempt: boolean;

  /**
   * @param kc cluster access (in-cluster ServiceAccount, or KUBECONFIG)
   * @param bucket the queue's results bucket name (for `resultRef`)
   * @param options the worker's namespace and logger
   */
  constructor(kc: KubeConfig, bucket: string, options: TaskResourceSinkOptions) {
    this.#kc = kc;
    this.#bucket = bucket;
    this.#o = options;
    this.#lastAttempt = options.lastAttemptStartTime ?? schemaHasLastAttemptStartTime();
  }

  /**
   * Applies the record's status to its Task, locked to the resourceVersion read just before
   * (read again and retried on 409). Nothing is written — and a warning logged — when the message
   * does not belong to the Task or the Task already finished (see `refusal`); a Task that no longer
   * exists is left alone. A replay of the final record already on the Task writes nothing, silently.
   * @throws Error `write status of task ns/name` on other API failures (the worker retries)
   */
  async write(record: TaskRecord): Promise<void> {
    const o = record.origin;
    if (o.kind !== "Task" || !o.name) return;
    const namespace = o.namespace ?? record.namespace;
    const ref = { ...CELERIAC_TYPES.Task, namespace, name: o.name };
    const where = `${namespace}/${o.name}`;
    for (let i = 0; i < 5; i++) {
      let live: Task;
      try {
        live = await getObject<Task & { metadata: { name: string } }>(this.#kc, ref);
      } catch (err) {
        if (isNotFound((err as Error).cause)) return;
        throw new Error(`write status of task ${where}`, { cause: err });
      }
      const why = refusal(record, live, this.#o.namespace);
      if (why) {
        const replay = isTerminalPhase(record.status.phase) && live.status?.phase === record.status.phase && live.metadata.uid === o.uid;
        if (!replay) this.#o.log.warn({ taskId: record.id, task: where, phase: record.status.phase, reason: why }, "Task status not written");
        return;
      }
      const status = taskStatusApply(record, { bucket: this.#bucket, live: live.status, lastAttemptStartTime: this.#lastAttempt, now: new Date() });
      try {
        let rv = live.metadata.resourceVersion;
        // Object fields the worker sent before and leaves out now. Server-side apply removes them
        // (the map itself is owned), but the in-memory API server removes only their leaves and
        // then rejects the empty object, so they are cleared first; only after a retry.
        const stale = STALE_CLEARED.filter((f) => live.status?.[f] !== undefined && status[f] === undefined);
        if (stale.length > 0) {
          const cleared = await patchStatus(this.#kc, ref, Object.fromEntries(stale.map((f) => [f, null])), FIELD_MANAGERS.worker, rv);
          rv = cleared.metadata?.resourceVersion;
        }
        await applyStatus(this.#kc, CELERIAC_TYPES.Task, { metadata: { name: o.name, namespace, ...(rv ? { resourceVersion: rv } : {}) }, status }, FIELD_MANAGERS.worker, { force: true });
        return;
      } catch (err) {
        const cause = (err as Error).cause;
        if (isNotFound(cause)) return;
        if (!isConflict(cause)) throw new Error(`write status of task ${where}`, { cause: err });
      }
    }
    throw new Error(`write status of task ${where}: conflicts on 5 attempts`);
  }
}

/** True when the Task status schema (api/task.ts) declares `lastAttemptStartTime`. */
function schemaHasLastAttemptStartTime(): boolean {
  return "lastAttemptStartTime" in (TaskStatusSchema.properties as Record<string, unknown>);
}
