/**
 * Names, labels and the owner reference shared by every child object the operator renders for a
 * Queue (worker Deployment, ServiceAccount, Role, RoleBinding, KEDA ScaledObject). Pure. The builders
 * take the whole `Queue` (api/objects.ts) with the CRD's defaults applied; they still fall back to
 * `api/defaults.ts` for any absent spec field.
 */
import type { V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, LABELS, MANAGED_BY, RESOURCES } from "../../api/constants.js";
import type { Queue } from "../../api/objects.js";

/**
 * The Queue's namespace: every child lives there too. A Queue read from the API server always has one.
 * @throws Error when `metadata.namespace` is missing (an object not read from the API server)
 */
export function queueNamespace(queue: Queue): string {
  const ns = queue.metadata.namespace;
  if (!ns) throw new Error(`render children of Queue ${queue.metadata.name}: metadata.namespace is missing`);
  return ns;
}

/** `app.kubernetes.io/name` of worker objects. */
export const WORKER_APP_NAME = "celeriac-worker";
/** `app.kubernetes.io/component` of worker objects. */
export const WORKER_COMPONENT = "worker";

/** Name of a Queue's worker Deployment: `<queue>-workers`. */
export function workerDeploymentName(queue: string): string {
  return `${queue}-workers`;
}

/** Name of the ServiceAccount, Role and RoleBinding the operator creates for a Queue's workers: `<queue>-worker`. */
export function workerRbacName(queue: string): string {
  return `${queue}-worker`;
}

/**
 * The ServiceAccount worker pods run as: the pod template's `serviceAccountName`, else
 * `spec.worker.serviceAccountName`, else `<queue>-worker` (created by the operator).
 */
export function workerServiceAccountName(queue: Queue): string {
  return userServiceAccountName(queue) ?? workerRbacName(queue.metadata.name);
}

/**
 * The ServiceAccount name the user chose, if any (pod template first, then `spec.worker.serviceAccountName`).
 * @returns undefined when the operator's default `<queue>-worker` applies
 */
export function userServiceAccountName(queue: Queue): string | undefined {
  const tpl = queue.spec.worker?.template as { spec?: { serviceAccountName?: unknown } } | undefined;
  const fromTemplate = tpl?.spec?.serviceAccountName;
  if (typeof fromTemplate === "string" && fromTemplate !== "") return fromTemplate;
  const fromField = queue.spec.worker?.serviceAccountName;
  return fromField !== undefined && fromField !== "" ? fromField : undefined;
}

/**
 * Selector labels of the worker Deployment: `celeriac.io/queue` and `app.kubernetes.io/instance`,
 * both the Queue name. Immutable once a Deployment exists, so never change them.
 */
export function workerSelectorLabels(queue: string): Record<string, string> {
  return { [LABELS.queue]: queue, [LABELS.instance]: queue };
}

/**
 * Labels on every worker object and pod: the selector labels plus `app.kubernetes.io/name`
 * (`celeriac-worker`), `component` (`worker`) and `managed-by` (`celeriac-operator`).
 */
export function workerLabels(queue: string): Record<string, string> {
  return {
    ...workerSelectorLabels(queue),
    [LABELS.name]: WORKER_APP_NAME,
    [LABELS.component]: WORKER_COMPONENT,
    [LABELS.managedBy]: MANAGED_BY,
  };
}

/**
 * The controller ownerReference every child carries, so garbage collection deletes it with the
 * Queue (`controller: true`, `blockOwnerDeletion: true`; kubebuilder `SetControllerReference`).
 * @throws Error when the Queue has no uid (an object not read from the API server)
 */
export function queueOwnerReference(queue: Queue): V1OwnerReference {
  const uid = queue.metadata.uid;
  if (!uid) throw new Error(`build owner reference of Queue ${queue.metadata.name}: metadata.uid is missing`);
  return {
    apiVersion: API_VERSION,
    kind: RESOURCES.Queue.kind,
    name: queue.metadata.name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * The Queue a worker Pod belongs to, from its `celeriac.io/queue` label, as reconcile keys (none for a
 * Pod without the label): the Queue controller's mapping of worker Pod events. Pure.
 */
export function queueOfWorkerPod(pod: { metadata?: { namespace?: string; labels?: Record<string, string> } }): Array<{ namespace: string; name: string }> {
  const queue = pod.metadata?.labels?.[LABELS.queue];
  return queue ? [{ namespace: pod.metadata?.namespace ?? "", name: queue }] : [];
}
