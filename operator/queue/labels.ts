/**
 * Names, labels and the owner reference shared by every child object the operator renders for a
 * Queue (worker Deployment, ServiceAccount, Role, RoleBinding, KEDA ScaledObject). Pure.
 */
import type { V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, LABELS, MANAGED_BY, RESOURCES } from "../../api/constants.js";
import type { QueueSpec } from "../../api/queue.js";

/**
 * The parts of a Queue the builders read: identity for names and the owner reference, and the spec
 * (CRD defaults applied; builders still fall back to `api/defaults.ts` for any absent field).
 */
export interface QueueObject {
  metadata: {
    /** Queue name, a DNS-1123 label. */
    name: string;
    /** Namespace of the Queue; every child lives there too. */
    namespace: string;
    /** The Queue's uid, for the controller ownerReference. */
    uid: string;
    /** `.metadata.generation`; not rendered, accepted so a whole Queue can be passed. */
    generation?: number;
  };
  spec: QueueSpec;
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
export function workerServiceAccountName(queue: QueueObject): string {
  return userServiceAccountName(queue) ?? workerRbacName(queue.metadata.name);
}

/**
 * The ServiceAccount name the user chose, if any (pod template first, then `spec.worker.serviceAccountName`).
 * @returns undefined when the operator's default `<queue>-worker` applies
 */
export function userServiceAccountName(queue: QueueObject): string | undefined {
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
 */
export function queueOwnerReference(queue: QueueObject): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: RESOURCES.Queue.kind,
    name: queue.metadata.name,
    uid: queue.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}
