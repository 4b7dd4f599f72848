/**
 * `status.waiting` on Task resources: what the flow-control dispatcher holds back, said on the Task
 * (phase Queued, like a container's `state.waiting`), and cleared once the task has started. The
 * dispatcher writes the reason into the task's record in the results bucket; the operator mirrors it
 * here because the Task's status is what `kubectl get tasks -o wide` (column WAITING) shows.
 */
import { FIELD_MANAGERS } from "../../api/constants.js";
import type { Waiting } from "../../api/flow.js";
import type { TaskIdentity } from "../../api/message.js";
import { CELERIAC_TYPES, type Task } from "../../api/objects.js";
import { isConflict, isNotFound, kubeRequest, resourcePath, type KubeClient } from "../../kube/k8s-client.js";

/** Merge-patches the Task's status subresource, locked on `resourceVersion`. */
async function patchStatus(kc: KubeClient, namespace: string, name: string, resourceVersion: string | undefined, status: Record<string, unknown>): Promise<void> {
  await kubeRequest(kc, {
    method: "PATCH",
    path: resourcePath(CELERIAC_TYPES.Task, namespace, name, "status"),
    query: { fieldManager: FIELD_MANAGERS.operator },
    body: { metadata: resourceVersion ? { resourceVersion } : {}, status },
    contentType: "application/merge-patch+json",
  });
}

/** True when two waiting states say the same (reason and message). Pure. */
export function sameWaiting(a: Waiting | undefined, b: Waiting | undefined): boolean {
  return a?.reason === b?.reason && a?.message === b?.message;
}

/**
 * Puts `waiting` on the Task a held task was published for, while it is still Queued (a conflict
 * or a Task gone means a worker or a delete came first: nothing to say). Never throws: a failure is
 * logged at debug (the record in the results bucket says it anyway).
 * @param getTask the operator's cached Task
 */
export async function markTaskWaiting(
  kc: KubeClient,
  getTask: (namespace: string, name: string) => Task | undefined,
  identity: TaskIdentity,
  waiting: Waiting,
  log: { debug: (o: object, m: string) => void },
): Promise<void> {
  const o = identity.origin;
  if (o.kind !== "Task" || !o.namespace || !o.name) return;
  const t = getTask(o.namespace, o.name);
  if (!t || (o.uid && t.metadata.uid !== o.uid) || t.metadata.deletionTimestamp) return;
  if (t.status?.phase !== "Queued" || sameWaiting(t.status.waiting, waiting)) return;
  try {
    await patchStatus(kc, o.namespace, o.name, t.metadata.resourceVersion, { waiting });
  } catch (err) {
    if (!isConflict(err) && !isNotFound(err)) log.debug({ err, task: o.name }, "Could not put status.waiting on the Task");
  }
}

/** True when a Task says it waits but has started or finished (its `waiting` is stale). Pure. */
export function hasStaleWaiting(task: Task): boolean {
  return task.status?.waiting !== undefined && task.status.phase !== "Queued" && task.status.phase !== "Pending" && task.status.phase !== undefined;
}

/**
 * Removes a stale `status.waiting` (merge patch `waiting: null`), locked on the version read.
 * @throws KubeApiError except a conflict (a newer write: the next reconcile looks again) or not-found
 */
export async function clearTaskWaiting(kc: KubeClient, task: Task): Promise<void> {
  const { namespace, name, resourceVersion } = task.metadata;
  if (!namespace) return;
  try {
    await patchStatus(kc, namespace, name, resourceVersion, { waiting: null });
  } catch (err) {
    if (!isConflict(err) && !isNotFound(err)) throw err;
  }
}
