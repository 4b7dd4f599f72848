/**
 * The Celeriac custom resources as whole objects — `{apiVersion, kind, metadata, spec, status?}` —
 * typed once, from the schemas in `queue.ts`, `task.ts`, `schedule.ts` and `workflow.ts` (kubebuilder's
 * `api/v1/*_types.go`). Operator, worker, client, CLI and tests use these types; nobody declares
 * a local shape of a Queue, Task, Schedule or Workflow.
 *
 * Also the resource types (group, version, plural, kind) of each kind, declared once.
 */
import { GROUP, RESOURCES, VERSION } from "./constants.js";
import type { QueueSpec, QueueStatus } from "./queue.js";
import type { ScheduleSpec, ScheduleStatus } from "./schedule.js";
import type { TaskSpec, TaskStatus } from "./task.js";
import type { WorkflowSpec, WorkflowStatus } from "./workflow.js";

/** `metav1.OwnerReference`. */
export type OwnerReference = {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
};

/**
 * The subset of `metav1.ObjectMeta` Celeriac reads and writes. Timestamps are RFC 3339 strings.
 * A type alias (not an interface) so it is assignable to index-signature shapes such as the
 * runtime's `KubeObject`.
 */
export type ObjectMeta = {
  name: string;
  namespace?: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
};

/** A whole Celeriac object of kind `K` with spec `S` and status `St`. */
export type CeleriacObject<K extends string, S, St> = {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: St;
};

/** A `Queue` (`celeriac.io/v1alpha1`): a stream, its dead-letter stream and results bucket, and workers. */
export type Queue = CeleriacObject<"Queue", QueueSpec, QueueStatus>;
/** A `Task` (`celeriac.io/v1alpha1`): one task to run on a queue. */
export type Task = CeleriacObject<"Task", TaskSpec, TaskStatus>;
/** A `Schedule` (`celeriac.io/v1alpha1`): periodic Tasks from a template. */
export type Schedule = CeleriacObject<"Schedule", ScheduleSpec, ScheduleStatus>;
/** A `Workflow` (`celeriac.io/v1alpha1`): a DAG of steps run as tasks. */
export type Workflow = CeleriacObject<"Workflow", WorkflowSpec, WorkflowStatus>;

/** A resource type as the API's URL layout needs it (same shape as the runtime's `ResourceType`). */
export type CeleriacResourceType = {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: true;
};

/** The resource type of each Celeriac kind: `CELERIAC_TYPES.Task` → `{group: "celeriac.io", version: "v1alpha1", plural: "tasks", …}`. */
export const CELERIAC_TYPES = {
  Queue: { group: GROUP, version: VERSION, plural: RESOURCES.Queue.plural, kind: RESOURCES.Queue.kind, namespaced: true },
  Task: { group: GROUP, version: VERSION, plural: RESOURCES.Task.plural, kind: RESOURCES.Task.kind, namespaced: true },
  Schedule: { group: GROUP, version: VERSION, plural: RESOURCES.Schedule.plural, kind: RESOURCES.Schedule.kind, namespaced: true },
  Workflow: { group: GROUP, version: VERSION, plural: RESOURCES.Workflow.plural, kind: RESOURCES.Workflow.kind, namespaced: true },
} as const satisfies Record<keyof typeof RESOURCES, CeleriacResourceType>;
