/**
 * Which Tasks a Queue's appearance releases: those naming it that still wait in phase Pending
 * (reason QueueNotFound) or have no phase yet. The Task controller watches Queues through this
 * mapping. Pure.
 */
import type { Queue, Task } from "../../api/objects.js";
import type { ReconcileKey } from "../runtime/index.js";

/**
 * The keys of the Tasks in `tasks` (one namespace's, from the Task cache) waiting for `queue`.
 * @param queue the Queue that was added, changed or deleted
 * @param tasks the Tasks of the Queue's namespace
 */
export function waitingTasks(queue: Queue, tasks: readonly Task[]): ReconcileKey[] {
  const namespace = queue.metadata.namespace ?? "";
  return tasks
    .filter((t) => t.spec.queue === queue.metadata.name && (t.status?.phase ?? "Pending") === "Pending" && (t.metadata.namespace ?? "") === namespace)
    .map((t) => ({ namespace, name: t.metadata.name }));
}
