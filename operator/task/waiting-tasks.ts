/**
 * Which Tasks a Queue's change concerns: those naming it that still wait in phase Pending (reason
 * QueueNotFound) or have no phase yet — a Queue's appearance releases them — and, once the Queue is
 * gone, those Queued in it (the Task reconciler marks them QueueDeleted). The Task controller watches
 * Queues through this mapping. Pure.
 */
import { CONDITION_TYPES, REASONS } from "../../api/constants.js";
import { getCondition } from "../../api/conditions.js";
import type { Queue, Task } from "../../api/objects.js";
import type { ReconcileKey } from "../runtime/index.js";

/**
 * The keys of the Tasks in `tasks` (one namespace's, from the Task cache) waiting for `queue`.
 * @param queue the Queue that was added, changed or deleted
 * @param tasks the Tasks of the Queue's namespace
 * @param opts `gone`: the Queue is deleted or being deleted (its Queued Tasks are included)
 */
export function waitingTasks(queue: Queue, tasks: readonly Task[], opts: { gone?: boolean } = {}): ReconcileKey[] {
  const namespace = queue.metadata.namespace ?? "";
  return tasks
    .filter((t) => {
      if (t.spec.queue !== queue.metadata.name || (t.metadata.namespace ?? "") !== namespace) return false;
      const phase = t.status?.phase ?? "Pending";
      return phase === "Pending" || (opts.gone === true && phase === "Queued");
    })
    .map((t) => ({ namespace, name: t.metadata.name }));
}

/** True when the Task waits for NATS to come back (Accepted=False, reason NatsUnavailable). Pure. */
export function waitsOnNats(task: Task): boolean {
  return getCondition(task.status?.conditions, CONDITION_TYPES.Task.Accepted)?.reason === REASONS.NatsUnavailable;
}

/** The keys of the Tasks in `tasks` that wait for NATS (see {@link waitsOnNats}): requeued at once when NATS reconnects. Pure. */
export function tasksWaitingOnNats(tasks: readonly Task[]): ReconcileKey[] {
  return tasks.filter(waitsOnNats).map((t) => ({ namespace: t.metadata.namespace ?? "", name: t.metadata.name }));
}
