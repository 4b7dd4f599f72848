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
 * After a write it records core/v1 Events on the Task like a Job's (`taskEvents`: Retrying, Failed,
 * DeadLettered, Expired, Cancelled; source `celeriac-worker`), best effort. `status.startTime` stays
 * the first attempt's; `lastAttemptStartTime` is the
 * last one's.
 *
 * The Task is read before a write (GET through /status: the worker's Role allows tasks/status
 * only), for three guards: the message must belong to it (origin uid =
 * the live uid, origin namespace = the worker's), a terminal phase is never overwritten, and the
 * apply carries the resourceVersion read, so a Task that changed in between (e.g. turned terminal)
 * answers 409 and is read again. After this worker's own write (Running, Retrying) the object that
 * write returned stands for the read of the next one: the lock on its resourceVersion makes any
 * change by someone else since a 409, and the Task is then read again.
 */
import { formatDuration } from "../api/durations.js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { API_VERSION, CONDITION_TYPES, FIELD_MANAGERS, isTerminalPhase, MAX_INLINE_RESULT_BYTES, REASONS } from "../api/constants.js";
import { getCondition, setCondition, type Condition } from "../api/conditions.js";
import type { TaskRecord } from "../api/message.js";
import { CELERIAC_TYPES, type Task } from "../api/objects.js";
import type { TaskStatus } from "../api/task.js";
import { applyStatus, isConflict, isNotFound, kubeRequest, resourcePath, type KubeClient, type KubeObject } from "../kube/k8s-client.js";
import { createEvent, eventBody, type EventType } from "../kube/events.js";
import type { StatusSink } from "./status-sink.js";
import { TASK_RESOURCE_PROGRESS_INTERVAL_MS } from "./progress.js";

/** Status fields the worker owns, copied from the record when present. */
const WORKER_FIELDS = ["phase", "attempts", "startTime", "completionTime", "nextRetryTime", "worker", "error", "deadLettered", "waiting", "progress"] as const;

/** The condition types the worker owns on a Task; `Accepted` is the operator's. */
export const WORKER_CONDITION_TYPES: readonly string[] = [CONDITION_TYPES.Task.Running, CONDITION_TYPES.Task.Succeeded, CONDITION_TYPES.Task.Failed];

/** What `taskStatusApply` needs besides the record. */
export interface TaskStatusApplyOptions {
  /** The results bucket name (for `resultRef`). */
  readonly bucket: string;
  /** The Task's live status (its conditions' transition times and its first `startTime` are kept). */
  readonly live: TaskStatus | undefined;
  /** Write `lastAttemptStartTime` (default true). */
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
  if (isTerminalPhase(s.phase) && s.completionTime !== undefined && out.startTime !== undefined) {
    out.duration = formatDuration(Date.parse(s.completionTime) - Date.parse(out.startTime as string));
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

/** Re-exported from api/durations.ts, where the operator gets it too. */
export { formatDuration };

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

/** One Event to record on a Task. */
export interface TaskEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
}

/**
 * The Events a record's status calls for, like a Job's: `Retrying` (the error and the delay),
 * `Failed` (and `DeadLettered` when the message went to the dead-letter stream), `Expired`,
 * `Cancelled`. None for Running or Succeeded. Pure.
 */
export function taskEvents(record: TaskRecord): TaskEvent[] {
  const s = record.status;
  const err = s.error ? `${s.error.type}: ${s.error.message}` : "unknown error";
  switch (s.phase) {
    case "Retrying": {
      const delay = s.nextRetryTime ? Math.max(0, (Date.parse(s.nextRetryTime) - Date.parse(record.updatedAt)) / 1000) : undefined;
      return [{ type: "Warning", reason: REASONS.Retrying, message: `Attempt ${s.attempts ?? 0} failed: ${err}; retrying in ${delay === undefined ? "?" : delay.toFixed(1)} s${s.nextRetryTime ? ` (at ${s.nextRetryTime})` : ""}` }];
    }
    case "Failed":
      return [
        { type: "Warning", reason: REASONS.Failed, message: `Failed after ${s.attempts ?? 0} attempt(s): ${err}` },
        ...(s.deadLettered ? [{ type: "Warning" as const, reason: REASONS.DeadLettered, message: `Moved the task message to the queue's dead-letter stream: ${err}` }] : []),
      ];
    case "Expired":
      return [{ type: "Warning", reason: REASONS.Expired, message: `Expired: ${s.error?.message ?? "not started before it expired"}` }];
    case "Cancelled":
      return [{ type: "Normal", reason: REASONS.Cancelled, message: `Cancelled: ${s.error?.message ?? "revoked"}` }];
    default:
      return [];
  }
}

/** How many tasks' last-written Task a sink keeps (tasks in flight in one worker; more only costs a GET). */
const LAST_WRITTEN_MAX = 4096;

/** What a `TaskResourceSink` needs. */
export interface TaskResourceSinkOptions {
  /** The worker's namespace: a Task elsewhere is never written. */
  readonly namespace: string;
  /** Where a refused write is logged (warn). */
  readonly log: Logger;
  /** Write `status.lastAttemptStartTime` (default true). */
  readonly lastAttemptStartTime?: boolean;
  /** `reportingInstance` of the Events (the worker name; default `$POD_NAME` or the host name). */
  readonly instance?: string;
}

/** Writes task records onto their Task resources. */
export class TaskResourceSink implements StatusSink {
  readonly name = "task-resource";
  /** Progress reaches a Task at most twice a second (an apiserver write each, mostly without a GET). */
  readonly progressIntervalMs = TASK_RESOURCE_PROGRESS_INTERVAL_MS;
  readonly #kc: KubeClient;
  readonly #bucket: string;
  readonly #o: TaskResourceSinkOptions;
  readonly #lastAttempt: boolean;
  readonly #instance: string;
  /** Per task id, the Task as this worker's last (non-terminal) write left it. */
  readonly #lastWritten = new Map<string, Task>();
  #seq = 0;

  /**
   * @param kc cluster access (in-cluster ServiceAccount, or KUBECONFIG)
   * @param bucket the queue's results bucket name (for `resultRef`)
   * @param options the worker's namespace and logger
   */
  constructor(kc: KubeClient, bucket: string, options: TaskResourceSinkOptions) {
    this.#kc = kc;
    this.#bucket = bucket;
    this.#o = options;
    this.#lastAttempt = options.lastAttemptStartTime ?? true;
    this.#instance = options.instance ?? process.env.POD_NAME ?? hostname();
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
      // The Task as this worker's last write of the task left it, if any: the apply below is locked on
      // its resourceVersion, so a Task changed since (or deleted and made again) answers 409 and is
      // read afresh — the same guards, one GET fewer per write after the first.
      let live: Task | undefined = i === 0 ? this.#lastWritten.get(record.id) : undefined;
      this.#lastWritten.delete(record.id);
      if (!live) {
        try {
          // through /status: the worker's Role has get on tasks/status only (it returns the whole Task)
          live = await kubeRequest<Task>(this.#kc, { method: "GET", path: resourcePath(ref, namespace, o.name, "status") });
        } catch (err) {
          if (isNotFound(err)) return;
          throw new Error(`write status of task ${where}`, { cause: err });
        }
      }
      const why = refusal(record, live, this.#o.namespace);
      if (why) {
        const replay = isTerminalPhase(record.status.phase) && live.status?.phase === record.status.phase && live.metadata.uid === o.uid;
        if (!replay) this.#o.log.warn({ taskId: record.id, task: where, phase: record.status.phase, reason: why }, "Task status not written");
        return;
      }
      const status = taskStatusApply(record, { bucket: this.#bucket, live: live.status, lastAttemptStartTime: this.#lastAttempt, now: new Date() });
      try {
        // Fields the worker applied before and leaves out now (error, resultRef after a retry that
        // succeeded) are removed by server-side apply itself, the objects included.
        const rv = live.metadata.resourceVersion;
        const applied = await applyStatus<Task & KubeObject>(this.#kc, CELERIAC_TYPES.Task, { metadata: { name: o.name, namespace, ...(rv ? { resourceVersion: rv } : {}) }, status }, FIELD_MANAGERS.worker, { force: true });
        if (!isTerminalPhase(record.status.phase)) this.#remember(record.id, applied);
        await this.#recordEvents(record, applied);
        return;
      } catch (err) {
        const cause = (err as Error).cause;
        if (isNotFound(cause)) return;
        if (!isConflict(cause)) throw new Error(`write status of task ${where}`, { cause: err });
      }
    }
    throw new Error(`write status of task ${where}: conflicts on 5 attempts`);
  }

  /** Keeps `task` as the last write of task `id` left it, for the next write (bounded: oldest dropped). */
  #remember(id: string, task: Task): void {
    this.#lastWritten.set(id, task);
    if (this.#lastWritten.size > LAST_WRITTEN_MAX) this.#lastWritten.delete(this.#lastWritten.keys().next().value as string);
  }

  /** Records the record's Events on the Task; best effort (a failure is logged, never thrown). */
  async #recordEvents(record: TaskRecord, task: Task): Promise<void> {
    const events = taskEvents(record);
    if (events.length === 0) return;
    const involved = { apiVersion: API_VERSION, kind: CELERIAC_TYPES.Task.kind, name: task.metadata.name, namespace: task.metadata.namespace ?? record.namespace, uid: task.metadata.uid, resourceVersion: task.metadata.resourceVersion };
    const source = { component: FIELD_MANAGERS.worker, instance: this.#instance };
    const now = Date.now();
    for (const e of events) {
      try {
        await createEvent(this.#kc, eventBody(involved, e.type, e.reason, e.message, source, now, this.#seq++), FIELD_MANAGERS.worker);
      } catch (err) {
        this.#o.log.warn({ err, taskId: record.id, reason: e.reason }, "Task event not recorded");
      }
    }
  }
}

