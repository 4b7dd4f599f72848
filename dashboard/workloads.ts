/**
 * The dashboard's Schedules and Workflows pages, read from the Kubernetes API (docs/dashboard.md):
 * the namespace's Schedule and Workflow resources (api/schedule.ts, api/workflow.ts), and the Tasks
 * and Workflows a Schedule created (label `celeriac.io/schedule`), mapped into the shapes the pages
 * draw. The mapping functions are pure (table-tested in test/dashboard/workloads.test.ts); the
 * readers are thin shells over kube/k8s-client.ts `listObjects`/`getObject`.
 *
 * Times are RFC 3339 strings, as the resources hold them. A Task resource's task id (its NATS
 * message id, the dashboard's `#/task/<id>`) is its `metadata.uid`; a Workflow step's task ids are
 * in `status.steps[].taskIds` (`<workflow uid>_<step>…`, api/workflow.ts `workflowTaskId`).
 */
import { ANNOTATIONS, CONDITION_TYPES, LABELS, isTerminalPhase } from "../api/constants.js";
import { CELERIAC_TYPES, type Schedule, type Task, type Workflow } from "../api/objects.js";
import type { StepStatus, WorkflowStep } from "../api/workflow.js";
import { apiErrorCode, getObject, isNotFound, listObjects, type KubeClient } from "../kube/k8s-client.js";

/** What the Schedules and Workflows API answers (HTTP 503) when the dashboard has no Kubernetes API. */
export const NO_KUBE_MESSAGE = "no Kubernetes API: start with --kubeconfig or run celeriac dev up";

/** How many runs of one Schedule its page lists, newest first. */
export const MAX_SCHEDULE_RUNS = 50;

/** A Workflow's phases that are final (its history counts them as finished). */
const WORKFLOW_DONE = new Set(["Succeeded", "Failed", "Cancelled"]);

/** The `Ready` condition of a Schedule, as the page shows it. */
export interface ReadyView {
  status: string;
  reason?: string;
  message?: string;
}

/** One run of a Schedule: a Task or Workflow it created. */
export interface ScheduleRun {
  /** metadata.name (`<schedule>-<unix seconds>`). */
  name: string;
  kind: "Task" | "Workflow";
  /** metadata.uid; for a Task, also its task id (`#/task/<uid>`). */
  uid?: string;
  /** Nominal run time: the `celeriac.io/scheduled-at` annotation, else the creation time. */
  scheduledAt?: string;
  /** status.phase; absent when nothing picked it up yet. */
  phase?: string;
  /** status.completionTime. */
  completionTime?: string;
  /** Not finished yet (no terminal phase). */
  active: boolean;
  /** A Task's error message (its first line), or a Workflow's status.message. */
  message?: string;
}

/** A row of the Schedules list. */
export interface ScheduleRow {
  name: string;
  /** spec.schedule: cron, macro or `@every <duration>`. */
  schedule: string;
  /** spec.timeZone (default UTC). */
  timeZone: string;
  suspend: boolean;
  concurrencyPolicy: string;
  /** What each run creates. */
  creates: "Task" | "Workflow";
  ready?: ReadyView;
  /** status.nextScheduleTime. */
  nextScheduleTime?: string;
  /** status.lastScheduleTime: nominal time of the last run that created something. */
  lastScheduleTime?: string;
  /** status.lastSuccessfulTime. */
  lastSuccessfulTime?: string;
  /** The newest finished run (by nominal time): its name, kind, uid, phase and completion time. */
  lastOutcome?: Pick<ScheduleRun, "name" | "kind" | "uid" | "phase" | "completionTime">;
  /** status.missedRuns (0 when unset). */
  missedRuns: number;
  /** status.lastMissedTime. */
  lastMissedTime?: string;
  /** Runs not finished (status.active). */
  active: number;
}

/** A Schedule's page: its row, the runs it still has (newest first) and its spec. */
export interface ScheduleDetail extends ScheduleRow {
  /** At most {@link MAX_SCHEDULE_RUNS} runs, newest first (older finished ones are deleted by the history limits). */
  runs: ScheduleRun[];
  /** More runs exist than listed. */
  runsTruncated: boolean;
  successfulTasksHistoryLimit?: number;
  failedTasksHistoryLimit?: number;
  missedRunPolicy?: string;
  startingDeadlineSeconds?: number;
  createdAt?: string;
}

/** A row of the Workflows list. */
export interface WorkflowRow {
  name: string;
  /** status.phase; `Pending` until the operator wrote a status. */
  phase: string;
  /** Steps in a final phase (Succeeded, Failed, Cancelled). */
  stepsDone: number;
  /** spec.steps' length. */
  stepsTotal: number;
  /** spec.queue. */
  queue: string;
  /** status.startTime: when the first step was published. */
  startTime?: string;
  /** status.completionTime. */
  completionTime?: string;
  /** status.duration (Go-style, e.g. `1.5s`). */
  duration?: string;
  /** status.message: why it failed or waits. */
  message?: string;
  /** The Schedule that created it (label `celeriac.io/schedule`). */
  schedule?: string;
  createdAt?: string;
}

/** One node of a Workflow's DAG: a step, or a hook (onFailure / onExit). */
export interface WorkflowStepView {
  name: string;
  /** True for onFailure / onExit. */
  hook: boolean;
  /** The handler name. */
  task: string;
  /** The step's queue (its own, else spec.queue). */
  queue: string;
  dependsOn: string[];
  /** A fan-out: over `items` (their count) or the result of `fromStep`. */
  forEach?: { items: number } | { fromStep: string };
  /** status.steps[].phase; `Pending` when the status has none yet. */
  phase: string;
  /** Task counts: total (1, or the items), succeeded, failed, running. */
  tasks: { total: number; succeeded: number; failed: number; running: number };
  /** The first task ids (all of a plain step's); links to `#/task/<id>`. */
  taskIds: string[];
  /** Task ids not listed (a fan-out's beyond the first five). */
  moreTasks: number;
  attempts?: number;
  /** retry-from-failed generation (0: first run). */
  generation?: number;
  startTime?: string;
  completionTime?: string;
  message?: string;
  /** The first error among the step's tasks. */
  error?: { type: string; message: string; taskId: string };
}

/** An edge of the DAG: `to` waits for `from` (a dependency), or a hook runs after the Workflow's final steps. */
export interface WorkflowEdge {
  from: string;
  to: string;
  kind: "dependsOn" | "hook";
}

/** A Workflow's page: its row, the DAG's nodes and edges, and the result. */
export interface WorkflowDetail extends WorkflowRow {
  uid?: string;
  /** Steps in spec order, then the hooks that are defined. */
  steps: WorkflowStepView[];
  edges: WorkflowEdge[];
  parallelism?: number;
  retries?: number;
  /** status.result (absent when there is none yet, or it is in resultRef). */
  result?: unknown;
  resultRef?: { queue: string; taskId: string; sizeBytes: number };
  conditions: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }>;
}

/** The `Ready` condition of a Schedule. Pure. */
function readyOf(s: Schedule): ReadyView | undefined {
  const c = s.status?.conditions?.find((x) => x.type === CONDITION_TYPES.Schedule.Ready);
  return c ? { status: c.status, ...(c.reason ? { reason: c.reason } : {}), ...(c.message ? { message: c.message } : {}) } : undefined;
}

const firstLine = (s: string | undefined): string | undefined => (s ? s.split("\n")[0]!.slice(0, 200) : undefined);

/** A Task a Schedule created, as a run. Pure. */
export function taskRun(t: Pick<Task, "metadata" | "status">): ScheduleRun {
  const phase = t.status?.phase;
  const message = firstLine(t.status?.error?.message);
  return {
    name: t.metadata.name,
    kind: "Task",
    ...(t.metadata.uid ? { uid: t.metadata.uid } : {}),
    ...nominal(t.metadata),
    ...(phase ? { phase } : {}),
    ...(t.status?.completionTime ? { completionTime: t.status.completionTime } : {}),
    active: !(phase && isTerminalPhase(phase)),
    ...(message ? { message } : {}),
  };
}

/** A Workflow a Schedule created, as a run. Pure. */
export function workflowRun(w: Pick<Workflow, "metadata" | "status">): ScheduleRun {
  const phase = w.status?.phase;
  const message = firstLine(w.status?.message);
  return {
    name: w.metadata.name,
    kind: "Workflow",
    ...(w.metadata.uid ? { uid: w.metadata.uid } : {}),
    ...nominal(w.metadata),
    ...(phase ? { phase } : {}),
    ...(w.status?.completionTime ? { completionTime: w.status.completionTime } : {}),
    active: !(phase && WORKFLOW_DONE.has(phase)),
    ...(message ? { message } : {}),
  };
}

function nominal(m: { annotations?: Record<string, string>; creationTimestamp?: string }): { scheduledAt?: string } {
  const at = m.annotations?.[ANNOTATIONS.scheduledAt] ?? m.creationTimestamp;
  return at ? { scheduledAt: at } : {};
}

const timeOf = (r: ScheduleRun): number => {
  const t = r.scheduledAt ? Date.parse(r.scheduledAt) : NaN;
  return Number.isNaN(t) ? 0 : t;
};

/** Runs newest first (by nominal time, then name, descending). Pure; does not change `runs`. */
export function newestFirst(runs: readonly ScheduleRun[]): ScheduleRun[] {
  return [...runs].sort((a, b) => timeOf(b) - timeOf(a) || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
}

/**
 * A Schedule's row of the Schedules list.
 * @param s the Schedule
 * @param runs its runs (Tasks and Workflows labelled with its name), in any order
 */
export function scheduleRow(s: Schedule, runs: readonly ScheduleRun[]): ScheduleRow {
  const st = s.status ?? {};
  const ready = readyOf(s);
  const last = newestFirst(runs).find((r) => !r.active);
  return {
    name: s.metadata.name,
    schedule: s.spec.schedule,
    timeZone: s.spec.timeZone ?? "UTC",
    suspend: s.spec.suspend === true,
    concurrencyPolicy: s.spec.concurrencyPolicy ?? "Allow",
    creates: s.spec.workflowTemplate ? "Workflow" : "Task",
    ...(ready ? { ready } : {}),
    ...(st.nextScheduleTime ? { nextScheduleTime: st.nextScheduleTime } : {}),
    ...(st.lastScheduleTime ? { lastScheduleTime: st.lastScheduleTime } : {}),
    ...(st.lastSuccessfulTime ? { lastSuccessfulTime: st.lastSuccessfulTime } : {}),
    ...(last
      ? { lastOutcome: { name: last.name, kind: last.kind, ...(last.uid ? { uid: last.uid } : {}), ...(last.phase ? { phase: last.phase } : {}), ...(last.completionTime ? { completionTime: last.completionTime } : {}) } }
      : {}),
    missedRuns: st.missedRuns ?? 0,
    ...(st.lastMissedTime ? { lastMissedTime: st.lastMissedTime } : {}),
    active: st.active?.length ?? runs.filter((r) => r.active).length,
  };
}

/**
 * A Schedule's page.
 * @param s the Schedule
 * @param runs its runs, in any order; the newest {@link MAX_SCHEDULE_RUNS} are listed
 */
export function scheduleDetail(s: Schedule, runs: readonly ScheduleRun[]): ScheduleDetail {
  const sorted = newestFirst(runs);
  const sp = s.spec;
  return {
    ...scheduleRow(s, runs),
    runs: sorted.slice(0, MAX_SCHEDULE_RUNS),
    runsTruncated: sorted.length > MAX_SCHEDULE_RUNS,
    ...(sp.successfulTasksHistoryLimit !== undefined ? { successfulTasksHistoryLimit: sp.successfulTasksHistoryLimit } : {}),
    ...(sp.failedTasksHistoryLimit !== undefined ? { failedTasksHistoryLimit: sp.failedTasksHistoryLimit } : {}),
    ...(sp.missedRunPolicy ? { missedRunPolicy: sp.missedRunPolicy } : {}),
    ...(sp.startingDeadlineSeconds !== undefined ? { startingDeadlineSeconds: sp.startingDeadlineSeconds } : {}),
    ...(s.metadata.creationTimestamp ? { createdAt: s.metadata.creationTimestamp } : {}),
  };
}

/** A Workflow's row of the Workflows list. Pure. */
export function workflowRow(w: Workflow): WorkflowRow {
  const st = w.status ?? {};
  const done = (st.steps ?? []).filter((x) => WORKFLOW_DONE.has(x.phase)).length;
  const schedule = w.metadata.labels?.[LABELS.schedule];
  return {
    name: w.metadata.name,
    phase: st.phase ?? "Pending",
    stepsDone: done,
    stepsTotal: w.spec.steps.length,
    queue: w.spec.queue,
    ...(st.startTime ? { startTime: st.startTime } : {}),
    ...(st.completionTime ? { completionTime: st.completionTime } : {}),
    ...(st.duration ? { duration: st.duration } : {}),
    ...(st.message ? { message: st.message } : {}),
    ...(schedule ? { schedule } : {}),
    ...(w.metadata.creationTimestamp ? { createdAt: w.metadata.creationTimestamp } : {}),
  };
}

/** One step (or hook) of a Workflow with its status. Pure. */
function stepView(name: string, spec: Pick<WorkflowStep, "task" | "queue"> & Partial<Pick<WorkflowStep, "dependsOn" | "forEach">>, defaultQueue: string, st: StepStatus | undefined, hook: boolean): WorkflowStepView {
  const fe = spec.forEach;
  const forEach: WorkflowStepView["forEach"] = fe ? (fe.fromStep !== undefined ? { fromStep: fe.fromStep } : { items: fe.items?.length ?? 0 }) : undefined;
  const tasks = st?.tasks ?? { total: forEach === undefined ? 1 : "items" in forEach ? forEach.items : 0, succeeded: 0, failed: 0, running: 0 };
  const ids = st?.taskIds ?? [];
  return {
    name,
    hook,
    task: spec.task,
    queue: spec.queue ?? defaultQueue,
    dependsOn: [...(spec.dependsOn ?? [])],
    ...(forEach ? { forEach } : {}),
    phase: st?.phase ?? "Pending",
    tasks,
    taskIds: ids,
    moreTasks: Math.max(0, tasks.total - ids.length),
    ...(st?.attempts !== undefined ? { attempts: st.attempts } : {}),
    ...(st?.generation !== undefined ? { generation: st.generation } : {}),
    ...(st?.startTime ? { startTime: st.startTime } : {}),
    ...(st?.completionTime ? { completionTime: st.completionTime } : {}),
    ...(st?.message ? { message: st.message } : {}),
    ...(st?.error ? { error: { type: st.error.type, message: firstLine(st.error.message) ?? "", taskId: st.error.taskId } } : {}),
  };
}

/**
 * A Workflow's page: its steps in spec order (status matched by name; `Pending` without one), then
 * its hooks, and the DAG's edges: one per dependency (from the dependency to the step), and from
 * each final step (one no other step depends on) to each hook. Pure.
 */
export function workflowDetail(w: Workflow): WorkflowDetail {
  const st = w.status ?? {};
  const byName = new Map((st.steps ?? []).map((x) => [x.name, x]));
  const steps = w.spec.steps.map((s) => stepView(s.name, s, w.spec.queue, byName.get(s.name), false));
  const edges: WorkflowEdge[] = steps.flatMap((s) => s.dependsOn.map((d) => ({ from: d, to: s.name, kind: "dependsOn" as const })));
  const depended = new Set(steps.flatMap((s) => s.dependsOn));
  const finals = steps.filter((s) => !depended.has(s.name)).map((s) => s.name);
  for (const hook of ["onFailure", "onExit"] as const) {
    const spec = w.spec[hook];
    if (!spec) continue;
    steps.push(stepView(hook, spec, w.spec.queue, st[hook], true));
    for (const f of finals) edges.push({ from: f, to: hook, kind: "hook" });
  }
  return {
    ...workflowRow(w),
    ...(w.metadata.uid ? { uid: w.metadata.uid } : {}),
    steps,
    edges,
    ...(w.spec.parallelism !== undefined ? { parallelism: w.spec.parallelism } : {}),
    ...(st.retries !== undefined ? { retries: st.retries } : {}),
    ...("result" in st ? { result: st.result } : {}),
    ...(st.resultRef ? { resultRef: st.resultRef } : {}),
    conditions: (st.conditions ?? []).map((c) => ({ type: c.type, status: c.status, ...(c.reason ? { reason: c.reason } : {}), ...(c.message ? { message: c.message } : {}), ...(c.lastTransitionTime ? { lastTransitionTime: c.lastTransitionTime } : {}) })),
  };
}

/**
 * The message of a 404 for a Schedule or Workflow that does not exist, naming those that do. Pure.
 * @param kind `Schedule` or `Workflow`
 * @param names the existing names (any order)
 */
export function notFoundMessage(kind: "Schedule" | "Workflow", name: string, namespace: string, names: readonly string[]): string {
  const what = kind.toLowerCase();
  return names.length === 0
    ? `${what} "${name}" not found in namespace "${namespace}": there are no ${kind}s in namespace "${namespace}"`
    : `${what} "${name}" not found in namespace "${namespace}"; ${kind}s in namespace "${namespace}": ${[...names].sort().join(", ")}`;
}

/** An error with the HTTP status the API answers with. */
export class WorkloadsError extends Error {
  /**
   * @param status HTTP status: 404 (no such object), 503 (no Kubernetes API, or a CRD not installed), 502 (the API failed)
   */
  constructor(readonly status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WorkloadsError";
  }
}

/** The innermost message of an error's cause chain, for the page. */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  const parts: string[] = [];
  for (let i = 0; e && i < 6; i++) {
    if (e.message) parts.push(e.message);
    e = e.cause as typeof e;
  }
  return parts.join(": ");
}

/** A Kubernetes API failure as a WorkloadsError: a missing CRD (404 on a list) is 503, anything else 502. */
function apiFailure(err: unknown, plural: string): WorkloadsError {
  if (isNotFound(err)) return new WorkloadsError(503, `the ${plural}.celeriac.io CRD is not installed in this cluster: apply the chart's CRDs (kubectl apply --server-side -f charts/celeriac/crds/)`, { cause: err });
  const code = apiErrorCode(err);
  return new WorkloadsError(code === 401 || code === 403 ? code : 502, `Kubernetes API: ${rootMessage(err)}`, { cause: err });
}

/** Reads the Schedules and Workflows of one namespace for the dashboard. */
export class WorkloadsReader {
  /**
   * @param kube the Kubernetes API (undefined: every read throws WorkloadsError 503 {@link NO_KUBE_MESSAGE})
   * @param namespace the dashboard's namespace
   */
  constructor(readonly kube: KubeClient | undefined, readonly namespace: string) {}

  #kube(): KubeClient {
    if (!this.kube) throw new WorkloadsError(503, NO_KUBE_MESSAGE);
    return this.kube;
  }

  async #list<T extends Schedule | Task | Workflow>(kind: "Schedule" | "Task" | "Workflow", labelSelector?: string): Promise<T[]> {
    const type = CELERIAC_TYPES[kind];
    try {
      return (await listObjects(this.#kube(), type, { namespace: this.namespace, ...(labelSelector ? { labelSelector } : {}) })).items as unknown as T[];
    } catch (err) {
      if (err instanceof WorkloadsError) throw err;
      throw apiFailure(err, type.plural);
    }
  }

  /** The runs of every Schedule, by Schedule name (Tasks and Workflows with the schedule label). */
  async #runsBySchedule(selector: string): Promise<Map<string, ScheduleRun[]>> {
    const [tasks, workflows] = await Promise.all([this.#list<Task>("Task", selector), this.#list<Workflow>("Workflow", selector)]);
    const out = new Map<string, ScheduleRun[]>();
    const add = (label: string | undefined, r: ScheduleRun) => {
      if (!label) return;
      let l = out.get(label);
      if (!l) out.set(label, (l = []));
      l.push(r);
    };
    for (const t of tasks) add(t.metadata.labels?.[LABELS.schedule], taskRun(t));
    for (const w of workflows) add(w.metadata.labels?.[LABELS.schedule], workflowRun(w));
    return out;
  }

  /** The Schedules list, by name. @throws WorkloadsError */
  async schedules(): Promise<{ namespace: string; items: ScheduleRow[] }> {
    const [schedules, runs] = await Promise.all([this.#list<Schedule>("Schedule"), this.#runsBySchedule(LABELS.schedule)]);
    const items = schedules.map((s) => scheduleRow(s, runs.get(s.metadata.name) ?? [])).sort((a, b) => (a.name < b.name ? -1 : 1));
    return { namespace: this.namespace, items };
  }

  /** One Schedule with its runs. @throws WorkloadsError 404 naming the Schedules that exist */
  async schedule(name: string): Promise<ScheduleDetail> {
    const s = await this.#get<Schedule>("Schedule", name);
    const runs = await this.#runsBySchedule(`${LABELS.schedule}=${name}`);
    return scheduleDetail(s, runs.get(name) ?? []);
  }

  /** The Workflows list, newest first. @throws WorkloadsError */
  async workflows(): Promise<{ namespace: string; items: WorkflowRow[] }> {
    const items = (await this.#list<Workflow>("Workflow")).map(workflowRow)
      .sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? "") || (a.name < b.name ? -1 : 1));
    return { namespace: this.namespace, items };
  }

  /** One Workflow with its DAG. @throws WorkloadsError 404 naming the Workflows that exist */
  async workflow(name: string): Promise<WorkflowDetail> {
    return workflowDetail(await this.#get<Workflow>("Workflow", name));
  }

  async #get<T extends Schedule | Workflow>(kind: "Schedule" | "Workflow", name: string): Promise<T> {
    const type = CELERIAC_TYPES[kind];
    try {
      return (await getObject(this.#kube(), { ...type, namespace: this.namespace, name })) as unknown as T;
    } catch (err) {
      if (err instanceof WorkloadsError) throw err;
      if (!isNotFound(err)) throw apiFailure(err, type.plural);
      // a 404: the object is missing, or the CRD is (then the list says so)
      const names = (await this.#list<T>(kind)).map((o) => o.metadata.name);
      throw new WorkloadsError(404, notFoundMessage(kind, name, this.namespace, names));
    }
  }
}
