/**
 * Builds the four CustomResourceDefinitions from the TypeBox schemas in this folder — the schemas
 * are the one owner of the API; `crds/*.yaml` and `docs/api.md` are generated from them by
 * `npm run generate` (scripts/generate.ts), and `npm test` fails when the generated files are stale.
 */
import { API_VERSION, CATEGORY, GROUP, RESOURCES, VERSION } from "./constants.js";
import { QUEUE_PRINTER_COLUMNS, QueueSpecSchema, QueueStatusSchema } from "./queue.js";
import { SCHEDULE_PRINTER_COLUMNS, ScheduleSpecSchema, ScheduleStatusSchema } from "./schedule.js";
import { TASK_PRINTER_COLUMNS, TaskSpecSchema, TaskStatusSchema } from "./task.js";
import { WORKFLOW_PRINTER_COLUMNS, WorkflowSpecSchema, WorkflowStatusSchema } from "./workflow.js";
import type { JSONSchemaProps } from "./validation.js";

/** A printer column of a CRD version (`additionalPrinterColumns` item). */
export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

/** Minimal shape of an `apiextensions.k8s.io/v1` CustomResourceDefinition. */
export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    scope: "Namespaced" | "Cluster";
    names: { kind: string; plural: string; singular: string; listKind: string; shortNames: string[]; categories: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
    }>;
  };
}

/** Strips TypeBox's symbol keys and returns plain JSON. */
function plain(schema: unknown): JSONSchemaProps {
  return JSON.parse(JSON.stringify(schema)) as JSONSchemaProps;
}

function rootSchema(kind: string, description: string, spec: unknown, status: unknown, rules: ReadonlyArray<{ rule: string; message: string }>): JSONSchemaProps {
  return {
    type: "object",
    description,
    required: ["spec"],
    ...(rules.length > 0 ? { "x-kubernetes-validations": [...rules] } : {}),
    properties: {
      apiVersion: { type: "string", description: `APIVersion defines the versioned schema of this representation of an object: ${API_VERSION}.` },
      kind: { type: "string", description: `Kind is a string value representing the REST resource this object represents: ${kind}.` },
      metadata: { type: "object" },
      spec: plain(spec),
      status: plain(status),
    },
  };
}

function crd(
  r: (typeof RESOURCES)[keyof typeof RESOURCES],
  description: string,
  spec: unknown,
  status: unknown,
  columns: PrinterColumn[],
  rules: ReadonlyArray<{ rule: string; message: string }> = [],
): CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${r.plural}.${GROUP}`, labels: { "app.kubernetes.io/name": "celeriac", "app.kubernetes.io/part-of": "celeriac" } },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: r.kind, plural: r.plural, singular: r.singular, listKind: r.listKind, shortNames: [...r.shortNames], categories: [CATEGORY] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: rootSchema(r.kind, description, spec, status, rules) },
          subresources: { status: {} },
          additionalPrinterColumns: columns,
        },
      ],
    },
  };
}

/** CEL rule on a Queue's name: a DNS-1123 label, since it names the worker Deployment, Service account and stream. */
export const QUEUE_NAME_RULE = "size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
/** Message of {@link QUEUE_NAME_RULE}. */
export const QUEUE_NAME_MESSAGE =
  "Queue name must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit): it names the worker Deployment and the NATS stream";

/** The Queue CRD (`queues.celeriac.io`). */
export const QUEUE_CRD = crd(
  RESOURCES.Queue,
  "Queue is a named task queue: a NATS JetStream stream with its dead-letter stream and results bucket, and the autoscaled worker Deployment that runs its tasks.",
  QueueSpecSchema,
  QueueStatusSchema,
  QUEUE_PRINTER_COLUMNS,
  [{ rule: QUEUE_NAME_RULE, message: QUEUE_NAME_MESSAGE }],
);
/** The Task CRD (`tasks.celeriac.io`). */
export const TASK_CRD = crd(
  RESOURCES.Task,
  "Task is one background task: a registered handler name and its JSON arguments, run once by a worker of its Queue, with retries, timeout, countdown/eta and expiry. Its status carries the phase, attempts, result or error.",
  TaskSpecSchema,
  TaskStatusSchema,
  TASK_PRINTER_COLUMNS,
);
/** The Schedule CRD (`schedules.celeriac.io`). */
export const SCHEDULE_CRD = crd(
  RESOURCES.Schedule,
  "Schedule creates Tasks periodically from a template: cron expressions in a time zone or fixed intervals, with overlap (concurrencyPolicy) and missed-run policies.",
  ScheduleSpecSchema,
  ScheduleStatusSchema,
  SCHEDULE_PRINTER_COLUMNS,
);

/** The Workflow CRD (`workflows.celeriac.io`). */
export const WORKFLOW_CRD = crd(
  RESOURCES.Workflow,
  "Workflow is a DAG of tasks: steps with dependencies (dependsOn), fan-outs (forEach) and hooks (onFailure, onExit), run by the Queues' workers with no pod per step. Each step's result is passed to its dependents by name; status shows every step's phase and counts, and the final result.",
  WorkflowSpecSchema,
  WorkflowStatusSchema,
  WORKFLOW_PRINTER_COLUMNS,
);

/** Every CRD, in install order, with the file name `crds/` stores it under. */
export const ALL_CRDS: ReadonlyArray<{ file: string; crd: CustomResourceDefinition }> = [
  { file: "celeriac.io_queues.yaml", crd: QUEUE_CRD },
  { file: "celeriac.io_tasks.yaml", crd: TASK_CRD },
  { file: "celeriac.io_schedules.yaml", crd: SCHEDULE_CRD },
  { file: "celeriac.io_workflows.yaml", crd: WORKFLOW_CRD },
];

/**
 * The openAPIV3Schema for a Celeriac kind.
 * @param kind Queue, Task, Schedule or Workflow
 * @throws Error for any other kind
 */
export function schemaForKind(kind: string): JSONSchemaProps {
  const found = ALL_CRDS.find((c) => c.crd.spec.names.kind === kind);
  if (!found) throw new Error(`unknown kind "${kind}": expected one of ${ALL_CRDS.map((c) => c.crd.spec.names.kind).join(", ")}`);
  return found.crd.spec.versions[0]!.schema.openAPIV3Schema;
}
