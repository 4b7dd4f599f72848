/**
 * The desired RBAC of a Queue's workers: a ServiceAccount `<queue>-worker` (only when the user names
 * none), a Role `<queue>-worker` with the least the worker needs, and a RoleBinding of that Role to
 * whichever ServiceAccount the worker pods run as. Pure; every object carries the Queue's controller
 * ownerReference and the worker labels.
 */
import type { V1PolicyRule, V1Role, V1RoleBinding, V1ServiceAccount } from "@kubernetes/client-node";
import { GROUP, RESOURCES } from "../../api/constants.js";
import { queueNamespace, queueOwnerReference, userServiceAccountName, workerLabels, workerRbacName, workerServiceAccountName } from "./labels.js";
import type { Queue } from "../../api/objects.js";

/** Options of {@link desiredWorkerRole}. */
export interface WorkerRoleOptions {
  /**
   * Let workers `get` and `patch` pods in the namespace, so each keeps its own Pod's
   * `controller.kubernetes.io/pod-deletion-cost` equal to its in-flight count (issue 7 item 3).
   * RBAC cannot narrow this to "the caller's own pod" (names are unknown up front), and patching a
   * pod can change its image, so a compromised worker could tamper with other pods of the namespace.
   * Set `false` when the operator maintains the annotation instead. Default: true.
   */
  patchPods?: boolean;
}

/** Rules of the worker Role, in a fixed order: the minimum a worker needs. */
export function workerRoleRules(opts: WorkerRoleOptions = {}): V1PolicyRule[] {
  const rules: V1PolicyRule[] = [
    // Status writes onto Tasks; GET on the status subresource returns the whole Task, so no `tasks` rule is needed.
    { apiGroups: [GROUP], resources: [`${RESOURCES.Task.plural}/status`], verbs: ["get", "patch"] },
  ];
  if (opts.patchPods ?? true) rules.push({ apiGroups: [""], resources: ["pods"], verbs: ["get", "patch"] });
  rules.push({ apiGroups: [""], resources: ["events"], verbs: ["create"] });
  return rules;
}

/**
 * The ServiceAccount `<queue>-worker`, or `undefined` when the user runs workers under their own
 * (`spec.worker.serviceAccountName` or the template's `serviceAccountName`): the operator never
 * creates or owns a ServiceAccount it did not name. The Role and RoleBinding are rendered either way.
 */
export function desiredWorkerServiceAccount(queue: Queue): V1ServiceAccount | undefined {
  if (userServiceAccountName(queue) !== undefined) return undefined;
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: metadata(queue),
  };
}

/**
 * The Role `<queue>-worker`: `tasks/status` get+patch in the Queue's namespace, pods get+patch (for
 * the pod-deletion-cost annotation; see {@link WorkerRoleOptions.patchPods}) and events create.
 */
export function desiredWorkerRole(queue: Queue, opts: WorkerRoleOptions = {}): V1Role {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: metadata(queue),
    rules: workerRoleRules(opts),
  };
}

/**
 * The RoleBinding `<queue>-worker` of the Role `<queue>-worker` to the ServiceAccount the worker
 * pods run as (the user's, or `<queue>-worker`). `roleRef` is immutable in Kubernetes; it never
 * changes here because the Role name is fixed.
 */
export function desiredWorkerRoleBinding(queue: Queue): V1RoleBinding {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: metadata(queue),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: workerRbacName(queue.metadata.name) },
    subjects: [{ kind: "ServiceAccount", name: workerServiceAccountName(queue), namespace: queueNamespace(queue) }],
  };
}

function metadata(queue: Queue): { name: string; namespace: string; labels: Record<string, string>; ownerReferences: ReturnType<typeof queueOwnerReference>[] } {
  return {
    name: workerRbacName(queue.metadata.name),
    namespace: queueNamespace(queue),
    labels: workerLabels(queue.metadata.name),
    ownerReferences: [queueOwnerReference(queue)],
  };
}
