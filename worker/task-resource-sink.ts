/**
 * The second status store: for tasks published for a `Task` resource (`origin.kind === "Task"`), the
 * worker writes the record's status onto the Task through the `/status` subresource with its own
 * field manager (`celeriac-worker`), so `kubectl get tasks` and `kubectl wait --for=condition=Succeeded`
 * see it. Client-enqueued tasks (no resource) are skipped: their status lives in the results bucket only.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { CONDITION_TYPES, FIELD_MANAGERS, GROUP, MAX_INLINE_RESULT_BYTES, REASONS, RESOURCES, VERSION } from "../api/constants.js";
import { setCondition, type Condition } from "../api/conditions.js";
import type { TaskRecord } from "../api/message.js";
import type { TaskStatus } from "../api/task.js";
import { isConflict, isNotFound, kubeRequest, patchStatus, resourcePath, type KubeObject } from "../kube/k8s-client.js";
import type { StatusSink } from "./status-sink.js";

/** Status fields the worker owns; absent ones are cleared (`null`) so a stale `nextRetryTime` never lingers. */
const WORKER_FIELDS = ["phase", "attempts", "startTime", "completionTime", "nextRetryTime", "worker", "result", "resultRef", "error", "deadLettered"] as const;

const TASKS = { group: GROUP, version: VERSION, plural: RESOURCES.Task.plural };

/**
 * The status patch for a Task from a results-bucket record: the worker's fields, the result inline
 * when it encodes to at most 8 KiB (else a `resultRef` to the bucket), and the Running/Succeeded
 * conditions merged into `current` (the Task's present conditions, Accepted kept). Pure.
 * @param record the record the worker wrote to the results bucket
 * @param bucket the results bucket name (for `resultRef`)
 * @param current the Task's current conditions
 * @param now the current time
 */
export function taskStatusPatch(record: TaskRecord, bucket: string, current: readonly Condition[] | undefined, now: Date): Record<string, unknown> {
  const s = record.status;
  const out: Record<string, unknown> = {};
  for (const f of WORKER_FIELDS) out[f] = null;
  for (const [k, v] of Object.entries(s)) if ((WORKER_FIELDS as readonly string[]).includes(k) && v !== undefined) out[k] = v;
  if (s.result !== undefined) {
    const size = Buffer.byteLength(JSON.stringify(s.result));
    if (size > MAX_INLINE_RESULT_BYTES) {
      out.result = null;
      out.resultRef = { bucket, key: record.id, sizeBytes: size };
    }
  }
  const phase = s.phase;
  let conditions = [...(current ?? [])] as Condition[];
  const set = (type: string, status: "True" | "False", reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message }, now);
  };
  if (phase === "Running") set(CONDITION_TYPES.Task.Running, "True", REASONS.Started, `attempt ${s.attempts ?? 1} running on ${s.worker ?? "a worker"}`);
  else if (phase === "Retrying") set(CONDITION_TYPES.Task.Running, "False", REASONS.Retrying, `attempt ${s.attempts ?? 0} failed: ${s.error?.message ?? "error"}; next attempt at ${s.nextRetryTime ?? "soon"}`);
  else if (phase === "Succeeded" || phase === "Failed" || phase === "Cancelled" || phase === "Expired") {
    set(CONDITION_TYPES.Task.Running, "False", REASONS.Completed, `finished: ${phase}`);
    if (phase === "Succeeded") set(CONDITION_TYPES.Task.Succeeded, "True", REASONS.Completed, `succeeded after ${s.attempts ?? 1} attempt(s)`);
    else {
      const reason = phase === "Cancelled" ? REASONS.Revoked : phase === "Expired" ? REASONS.Expired : s.error?.type === "UnknownTaskError" ? REASONS.UnknownTask : s.error?.type === "TimeoutError" ? REASONS.TimedOut : REASONS.HandlerFailed;
      set(CONDITION_TYPES.Task.Succeeded, "False", reason, s.error?.message ?? phase);
    }
  }
  out.conditions = conditions;
  return out;
}

/** Writes task records onto their Task resources. */
export class TaskResourceSink implements StatusSink {
  readonly name = "task-resource";
  readonly #kc: KubeConfig;
  readonly #bucket: string;

  /**
   * @param kc cluster access (in-cluster ServiceAccount, or KUBECONFIG)
   * @param bucket the queue's results bucket name (for `resultRef`)
   */
  constructor(kc: KubeConfig, bucket: string) {
    this.#kc = kc;
    this.#bucket = bucket;
  }

  /**
   * Patches the Task's status, conditional on the resourceVersion read just before (retried on 409).
   * A Task that no longer exists, or was re-created with another uid, is left alone.
   * @throws Error `write status of task ns/name` on other API failures (the worker retries)
   */
  async write(record: TaskRecord): Promise<void> {
    const o = record.origin;
    if (o.kind !== "Task" || !o.namespace || !o.name) return;
    const ref = { ...TASKS, namespace: o.namespace, name: o.name };
    const path = resourcePath(TASKS, o.namespace, o.name, "status");
    for (let i = 0; i < 5; i++) {
      let task: KubeObject & { status?: TaskStatus };
      try {
        task = await kubeRequest(this.#kc, { method: "GET", path });
      } catch (err) {
        if (isNotFound(err)) return;
        throw new Error(`write status of task ${o.namespace}/${o.name}`, { cause: err });
      }
      if (o.uid && task.metadata?.uid !== o.uid) return;
      const status = taskStatusPatch(record, this.#bucket, task.status?.conditions as Condition[] | undefined, new Date());
      try {
        await patchStatus(this.#kc, ref, status, FIELD_MANAGERS.worker, task.metadata?.resourceVersion);
        return;
      } catch (err) {
        const cause = (err as Error).cause;
        if (isNotFound(cause)) return;
        if (!isConflict(cause)) throw new Error(`write status of task ${o.namespace}/${o.name}`, { cause: err });
      }
    }
    throw new Error(`write status of task ${o.namespace}/${o.name}: conflicts on 5 attempts`);
  }
}
