/**
 * The dashboard's lookup of a task by the name of its Task resource (`#/task/monthly-report`,
 * `/api/tasks?id=monthly-report`), as `celeriac tasks get monthly-report` does (cli/task-resource.ts):
 * a Task's task id is its `metadata.uid`. Reads the Task through the Kubernetes API the dashboard
 * has (DashboardOptions.kube), never a kubeconfig of its own, with the CLI's `readTaskResource`.
 */
import type { TaskView } from "../api/cli-output.js";
import type { Condition } from "../api/conditions.js";
import type { Task } from "../api/objects.js";



/** What the dashboard read of a Task resource, added to a task view as `taskResource`. */
export interface TaskResourceInfo {
  /** The Task's name. */
  name: string;
  /** Its uid: the task id. */
  uid: string;
  /** status.phase, when the operator wrote one. */
  phase?: string;
  /** The message of its newest condition that has one (e.g. why it is Pending). */
  message?: string;
  /** The reason of that condition (e.g. QueueNotFound). */
  reason?: string;
  /** status.conditions as stored. */
  conditions: Condition[];
  /** spec.args and spec.kwargs (the Task keeps them: its page shows them when the record has none). */
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** A task view plus what the Task resource says (the dashboard's `/api/tasks?id=` answer for a Task name). */
export type TaskResourceView = Partial<TaskView> & Pick<TaskView, "id" | "task" | "queue" | "namespace" | "origin" | "timeline"> & { taskResource: TaskResourceInfo };


/** The Task's info for its page: phase, the newest condition's reason and message, spec args. Pure. */
export function taskResourceInfo(t: Task): TaskResourceInfo {
  const conditions = (t.status?.conditions ?? []) as Condition[];
  const withMessage = [...conditions].filter((c) => c.message).sort((a, b) => Date.parse(b.lastTransitionTime) - Date.parse(a.lastTransitionTime))[0];
  return {
    name: t.metadata.name,
    uid: t.metadata.uid ?? "",
    ...(t.status?.phase ? { phase: t.status.phase } : {}),
    ...(withMessage ? { message: withMessage.message, reason: withMessage.reason } : {}),
    conditions,
    args: t.spec.args ?? [],
    kwargs: (t.spec.kwargs ?? {}) as Record<string, unknown>,
  };
}

/**
 * The view of a Task resource no worker has recorded yet (e.g. Pending: QueueNotFound): its
 * phase and args from the resource, a timeline of its creation. Pure.
 */
export function viewOfTaskResource(t: Task): TaskResourceView {
  const info = taskResourceInfo(t);
  return {
    id: info.uid,
    task: t.spec.task,
    queue: t.spec.queue,
    namespace: t.metadata.namespace ?? "",
    origin: { kind: "Task", namespace: t.metadata.namespace ?? "", name: t.metadata.name, uid: info.uid },
    ...(info.phase ? { phase: info.phase as TaskView["phase"] } : {}),
    args: info.args,
    kwargs: info.kwargs,
    timeline: t.metadata.creationTimestamp ? [{ time: t.metadata.creationTimestamp, event: "Task resource created (no worker has recorded it yet)" }] : [],
    taskResource: info,
  };
}
