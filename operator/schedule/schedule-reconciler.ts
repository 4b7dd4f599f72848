/**
 * Schedule reconciler: the thin I/O shell around `planScheduleRun`. It never writes a Schedule's spec
 * (GitOps tools own it), only its status, and creates each run's Task (or, with a workflowTemplate,
 * its Workflow) under a deterministic name, so a second operator, a restart or a replayed event cannot
 * create the same run twice (AlreadyExists = done).
 * It requeues exactly for the next due time instead of polling. An invalid expression or time zone is
 * written to the Ready condition and then raised as a TerminalError (one Warning Event, no retry).
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { ANNOTATIONS, API_VERSION, CONDITION_TYPES, FIELD_MANAGERS, LABELS, REASONS, RESOURCES } from "../../api/constants.js";
import { getCondition } from "../../api/conditions.js";
import { CELERIAC_TYPES, type Schedule, type Task, type Workflow } from "../../api/objects.js";
import type { ScheduleStatus } from "../../api/schedule.js";
import {
  TerminalError, createObject, deleteObject, isAlreadyExists, listObjects, patchStatus,
  type EventSink, type ObjectReconciler, type ResourceType, type ReconcileContext, type ReconcileKey, type ReconcileResult,
} from "../runtime/index.js";
import { toScheduleTaskInfo, toScheduleWorkflowInfo, type ScheduleChildKind } from "./history.js";
import { planScheduleRun } from "./plan.js";

/** Dependencies of the Schedule reconciler. */
export interface ScheduleReconcilerDeps {
  kc: KubeConfig;
  getSchedule(namespace: string, name: string): Schedule | undefined;
  /** Tasks in `namespace` labelled with this schedule (from the Task informer cache). */
  tasksOf(namespace: string, schedule: string): readonly Pick<Task, "metadata" | "status">[];
  /**
   * Workflows in `namespace` whose LABELS.schedule label is `schedule` (the label value, see
   * scheduleLabelValue), from the Workflow informer cache. Unset: a Schedule with a workflowTemplate
   * lists its Workflows from the API server at each reconcile (correct, but one LIST per reconcile;
   * a Schedule with only a taskTemplate then sees no Workflows).
   */
  workflowsOf?(namespace: string, schedule: string): readonly Pick<Workflow, "metadata" | "status">[];
  events: EventSink;
  /**
   * When this operator started reconciling (leadership acquired): earlier due runs were missed by
   * downtime. A function when it changes after construction (a standby replica taking over).
   */
  startedAt: Date | (() => Date);
  now?: () => Date;
  /** Called with the lateness of each created run, ms (nominal time → Task or Workflow created), for metrics. */
  onFired?: (latenessMs: number) => void;
}

const TASKS = CELERIAC_TYPES.Task;
const WORKFLOWS = CELERIAC_TYPES.Workflow;
const TYPE_OF: Record<ScheduleChildKind, ResourceType> = { Task: TASKS, Workflow: WORKFLOWS };

/** The message of the error a Schedule with neither template gets (the CRD's CEL rule normally refuses it first). */
const NO_TEMPLATE = "spec.taskTemplate: Required value: set exactly one of spec.taskTemplate (a Task per run) or spec.workflowTemplate (a Workflow per run)";

/** The metadata every child of a run gets (see taskForRun). */
function runMetadata(schedule: Schedule, name: string, nominalTime: Date, tmpl: { labels?: Record<string, string>; annotations?: Record<string, string> } | undefined) {
  return {
    name,
    namespace: schedule.metadata.namespace,
    labels: { ...(tmpl?.labels ?? {}), [LABELS.schedule]: scheduleLabelValue(schedule.metadata.name) },
    annotations: { ...(tmpl?.annotations ?? {}), [ANNOTATIONS.scheduledAt]: nominalTime.toISOString() },
    ownerReferences: [
      { apiVersion: API_VERSION, kind: RESOURCES.Schedule.kind, name: schedule.metadata.name, uid: schedule.metadata.uid ?? "", controller: true, blockOwnerDeletion: true },
    ],
  };
}

/**
 * The Task object for one run: the template's spec, labels and annotations (never the Schedule's own
 * labels, where GitOps tools keep their tracking metadata), the schedule label, the nominal time
 * annotation, and a controller ownerReference to the Schedule.
 * Pure.
 * @throws TerminalError when the Schedule has no taskTemplate
 */
export function taskForRun(schedule: Schedule, name: string, nominalTime: Date): Task {
  const tmpl = schedule.spec.taskTemplate;
  if (!tmpl) throw new TerminalError(NO_TEMPLATE, { reason: REASONS.InvalidSpec });
  return { apiVersion: API_VERSION, kind: RESOURCES.Task.kind, metadata: runMetadata(schedule, name, nominalTime, tmpl.metadata), spec: structuredClone(tmpl.spec) };
}

/**
 * The Workflow object for one run of a Schedule with a workflowTemplate: the template's spec, labels
 * and annotations, the schedule label, the nominal time annotation and a controller ownerReference
 * to the Schedule, as taskForRun does for a Task. The Workflow controller adds its own finalizer.
 * Pure.
 * @throws TerminalError when the Schedule has no workflowTemplate
 */
export function workflowForRun(schedule: Schedule, name: string, nominalTime: Date): Workflow {
  const tmpl = schedule.spec.workflowTemplate;
  if (!tmpl) throw new TerminalError("spec.workflowTemplate: Required value: this run is a Workflow run but the Schedule has no workflowTemplate", { reason: REASONS.InvalidSpec });
  return { apiVersion: API_VERSION, kind: RESOURCES.Workflow.kind, metadata: runMetadata(schedule, name, nominalTime, tmpl.metadata), spec: structuredClone(tmpl.spec) };
}

/**
 * Label value identifying a Schedule's Tasks and Workflows. Label values are limited to 63
 * characters; longer Schedule names are cut to 54 and suffixed with an 8-hex hash of the full name. Pure.
 */
export function scheduleLabelValue(name: string): string {
  if (name.length <= 63) return name;
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return `${name.slice(0, 54).replace(/[-.]+$/, "")}-${h.toString(16).padStart(8, "0")}`;
}

/**
 * The merge patch turning status `live` into `desired`: desired's fields, and null for each top-level
 * field of `live` that desired no longer has (e.g. nextScheduleTime while suspended). Pure.
 * @returns undefined when nothing changes
 */
export function statusPatch(live: ScheduleStatus | undefined, desired: ScheduleStatus): Record<string, unknown> | undefined {
  const cur = (live ?? {}) as Record<string, unknown>;
  const want = desired as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(want)) if (JSON.stringify(v) !== JSON.stringify(cur[k])) patch[k] = v;
  for (const k of Object.keys(cur)) if (!(k in want)) patch[k] = null;
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** Reconciles Schedule resources. */
export class ScheduleReconciler implements ObjectReconciler {
  readonly #d: ScheduleReconcilerDeps;
  readonly #now: () => Date;
  /**
   * Our last status write per Schedule key: the object the API server returned and the older
   * resourceVersions it supersedes. While the informer cache still shows one of those, a reconcile
   * (e.g. the one the new Task's event triggers) plans from the returned object instead of the stale
   * cached one, so it neither repeats work nor loses a conflict (controller-runtime's "expectations").
   */
  readonly #written = new Map<string, { stale: Set<string>; obj: Schedule }>();

  constructor(deps: ScheduleReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Plans and applies one Schedule: cancel (Replace), create due runs oldest first, delete beyond the
   * history limits, then one status write. Its children are its Tasks and its Workflows (both are
   * planned together); a run creates a Workflow when the spec has a workflowTemplate, else a Task.
   * Cancelling a Workflow deletes it (its finalizer revokes its unfinished steps).
   * @throws TerminalError `InvalidSchedule` after writing it to the Ready condition (not retried);
   *   `InvalidSpec` for a Schedule with neither template (which the CRD's CEL rule refuses at admission)
   * @throws Error on API failures other than AlreadyExists (the controller retries with back-off;
   *   the status is not written, so the next plan sees the same due runs and the Tasks already made)
   */
  async reconcile(k: ReconcileKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const { namespace, name } = k;
    const key = `${namespace}/${name}`;
    let s = this.#d.getSchedule(namespace, name);
    const written = this.#written.get(key);
    if (written && s?.metadata.resourceVersion && written.stale.has(s.metadata.resourceVersion)) s = written.obj;
    else this.#written.delete(key);
    if (!s || s.metadata.deletionTimestamp) return {};
    if (!s.spec.taskTemplate && !s.spec.workflowTemplate) throw new TerminalError(NO_TEMPLATE, { reason: REASONS.InvalidSpec });
    const now = this.#now();
    const label = scheduleLabelValue(name);
    const tasks = this.#d.tasksOf(namespace, label).map(toScheduleTaskInfo);
    const workflows = (await this.#workflowsOf(namespace, label, s)).map(toScheduleWorkflowInfo);
    const kindOf = new Map<string, ScheduleChildKind>([...workflows, ...tasks].map((c) => [c.name, c.kind ?? "Task"]));
    const typeOf = (child: string) => ({ ...TYPE_OF[kindOf.get(child) ?? "Task"], namespace, name: child });
    const plan = planScheduleRun({
      name: s.metadata.name,
      creationTimestamp: s.metadata.creationTimestamp ?? now.toISOString(),
      ...(s.metadata.generation !== undefined ? { generation: s.metadata.generation } : {}),
      spec: s.spec,
      ...(s.status ? { status: s.status } : {}),
      tasks: [...tasks, ...workflows],
      now,
      operatorStartTime: typeof this.#d.startedAt === "function" ? this.#d.startedAt() : this.#d.startedAt,
    });
    const done = new Set<string>();
    for (const child of plan.cancel) {
      await deleteObject(this.#d.kc, typeOf(child));
      done.add(child);
    }
    for (const run of plan.create) {
      try {
        if (run.kind === "Workflow") await createObject(this.#d.kc, WORKFLOWS, workflowForRun(s, run.name, run.nominalTime), FIELD_MANAGERS.operator);
        else await createObject(this.#d.kc, TASKS, taskForRun(s, run.name, run.nominalTime), FIELD_MANAGERS.operator);
        this.#d.onFired?.(this.#now().getTime() - run.nominalTime.getTime());
        if (run.kind === "Workflow") ctx.log.info({ workflow: run.name, nominalTime: run.nominalTime.toISOString() }, "Created scheduled workflow");
        else ctx.log.info({ task: run.name, nominalTime: run.nominalTime.toISOString() }, "Created scheduled task");
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      done.add(run.name);
    }
    for (const child of plan.delete) {
      await deleteObject(this.#d.kc, typeOf(child));
      done.add(child);
    }
    const ready = getCondition(plan.status.conditions, CONDITION_TYPES.Schedule.Ready);
    const invalid = ready?.reason === REASONS.InvalidSchedule ? ready.message : undefined;
    for (const e of plan.events) {
      if (invalid !== undefined && e.reason === REASONS.InvalidSchedule) continue; // the TerminalError below records it
      if (!e.taskName || done.has(e.taskName)) this.#d.events.event(s, e.type, e.reason, e.message);
    }
    const patch = statusPatch(s.status, plan.status);
    if (patch) {
      // Optimistic lock on the version planned from: a plan made from a stale cache (its own last
      // status write not seen yet) must not overwrite newer counts; 409 Conflict → requeue.
      const obj = await patchStatus<Schedule>(this.#d.kc, { ...CELERIAC_TYPES.Schedule, namespace, name }, patch, FIELD_MANAGERS.operator, s.metadata.resourceVersion);
      const from = s.metadata.resourceVersion;
      if (from && obj?.metadata?.resourceVersion && obj.metadata.resourceVersion !== from) {
        const stale = new Set(s === written?.obj ? [...written.stale].slice(-15) : []);
        this.#written.set(key, { stale: stale.add(from), obj });
      }
    }
    if (invalid !== undefined) throw new TerminalError(invalid, { reason: REASONS.InvalidSchedule });
    return plan.requeueAfterMs === undefined ? {} : { requeueAfterMs: plan.requeueAfterMs };
  }

  /** The Schedule's Workflows: from the cache (deps.workflowsOf), else, with a workflowTemplate, from the API server. */
  async #workflowsOf(namespace: string, label: string, s: Schedule): Promise<readonly Pick<Workflow, "metadata" | "status">[]> {
    if (this.#d.workflowsOf) return this.#d.workflowsOf(namespace, label);
    if (!s.spec.workflowTemplate) return [];
    return (await listObjects<Workflow>(this.#d.kc, WORKFLOWS, { namespace, labelSelector: `${LABELS.schedule}=${label}` })).items;
  }
}
