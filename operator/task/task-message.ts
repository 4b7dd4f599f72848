/**
 * Pure: the task message the operator publishes for a Task resource.
 */
import { MESSAGE_VERSION, type TaskMessage } from "../../api/message.js";
import { resolveRetryPolicy } from "../../api/policies.js";
import { DEFAULT_TIMEOUT_SECONDS } from "../../api/defaults.js";
import type { QueueSpec } from "../../api/queue.js";
import type { TaskSpec } from "../../api/task.js";

/** The parts of a Task resource the message is built from. */
export interface TaskObject {
  metadata: { name: string; namespace: string; uid: string; creationTimestamp?: string | Date };
  spec: TaskSpec;
}

function iso(d: Date): string {
  return d.toISOString();
}

/**
 * Builds the envelope for a Task: id = the Task's uid (also the Nats-Msg-Id, so a republish is dropped as
 * a duplicate), retry and timeout resolved task → queue → defaults, countdownSeconds/expiresSeconds
 * turned into absolute `eta`/`expires` from `acceptedAt`.
 * @param task the Task (spec defaults applied by the API server)
 * @param queue the Queue's spec (defaults applied), or undefined when unknown
 * @param acceptedAt when the operator accepted the Task (its `queuedTime`); countdown and relative expiry count from it
 */
export function buildTaskMessage(task: TaskObject, queue: QueueSpec | undefined, acceptedAt: Date): TaskMessage {
  const s = task.spec;
  let eta: string | undefined;
  if (s.eta) eta = new Date(s.eta).toISOString();
  else if (s.countdownSeconds !== undefined && s.countdownSeconds > 0) eta = iso(new Date(acceptedAt.getTime() + s.countdownSeconds * 1000));
  const expiries: number[] = [];
  if (s.expires) expiries.push(new Date(s.expires).getTime());
  if (s.expiresSeconds !== undefined) expiries.push(acceptedAt.getTime() + s.expiresSeconds * 1000);
  const expires = expiries.length > 0 ? iso(new Date(Math.min(...expiries))) : undefined;
  return {
    v: MESSAGE_VERSION,
    id: task.metadata.uid,
    task: s.task,
    args: s.args ?? [],
    kwargs: (s.kwargs as Record<string, unknown> | undefined) ?? {},
    queue: s.queue,
    namespace: task.metadata.namespace,
    origin: { kind: "Task", namespace: task.metadata.namespace, name: task.metadata.name, uid: task.metadata.uid },
    ...(eta ? { eta } : {}),
    ...(expires ? { expires } : {}),
    timeoutSeconds: s.timeoutSeconds ?? queue?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    retry: resolveRetryPolicy(s.retry, queue?.retry),
    createdAt: iso(acceptedAt),
  };
}

/**
 * Size in bytes of a Task's `args` and `kwargs` as JSON (what counts against MAX_ARGS_BYTES).
 */
export function argsSize(spec: TaskSpec): number {
  return Buffer.byteLength(JSON.stringify(spec.args ?? [])) + Buffer.byteLength(JSON.stringify(spec.kwargs ?? {}));
}
