/**
 * The Workflow planner: from a Workflow (spec, last status) and what is known of its tasks, the
 * desired state — every step's phase and counts, the tasks to publish now, what to load first, the
 * Workflow's phase and conditions, and the Events of the transition. Pure: the reconciler
 * (workflow-reconciler.ts) does the I/O around it. Semantics: docs/workflows.md.
 *
 * - A step is ready when every dependency Succeeded; its tasks are `workflowTaskId(uid, step, g, i?)`
 *   with `g` its generation (kept in status, raised by retry-from-failed).
 * - Fail fast (Argo's DAG `failFast` default): once a task failed, no new task is published; running
 *   ones finish; steps left unrun end Cancelled.
 * - Then the hooks, one at a time: onFailure (when the steps did not all succeed), then onExit.
 * - `parallelism` caps the published-and-unfinished tasks of the Workflow.
 */
import type { TaskPhase } from "../../api/constants.js";
import { CONDITION_TYPES, REASONS, isTerminalPhase } from "../../api/constants.js";
import { setCondition } from "../../api/conditions.js";
import { formatDuration } from "../../api/durations.js";
import type { Workflow } from "../../api/objects.js";
import { checkWorkflowSpec, topologicalOrder } from "../../api/workflow-check.js";
import {
  STEP_TASK_IDS_SHOWN, workflowTaskId,
  type StepStatus, type WorkflowHook, type WorkflowHookName, type WorkflowPhase, type WorkflowSpec, type WorkflowStatus,
} from "../../api/workflow.js";

/** What is known of one task: its record's (or step-end notice's) phase and times. */
export interface TaskObservation {
  phase: TaskPhase;
  attempts?: number;
  startTime?: string;
  completionTime?: string;
  error?: { type: string; message: string };
}

/** The planner's view of the world besides the Workflow object. */
export interface WorkflowObservation {
  now: Date;
  /** Observed tasks by id (missing: nothing seen yet). */
  tasks: ReadonlyMap<string, TaskObservation>;
  /** Task ids known to be in NATS (published by this process, or found there). */
  published: ReadonlySet<string>;
  /** forEach lists of steps with `forEach.fromStep`, by step name, once loaded (`{error}`: the source's result is not a list). */
  items: ReadonlyMap<string, unknown[] | { error: string }>;
  /** True when the Queue exists (and is not being deleted). */
  queueExists(queue: string): boolean;
}

/** Where a dependency's result is read from: one task's record, or (forEach) the list of its tasks' records. */
export interface ResultSource {
  /** The dependency's step name (the kwarg it fills). */
  name: string;
  queue: string;
  ids: string[];
  /** True for a forEach step: the result is the list of `ids`' results. */
  list: boolean;
}

/** A task to publish now. */
export interface PlannedTask {
  id: string;
  /** Step name, or onFailure / onExit. */
  step: string;
  /** Index of the step in spec.steps (hooks: steps.length, steps.length + 1). */
  index: number;
  queue: string;
  run: WorkflowHook;
  /** forEach: the item, prepended to args. */
  item?: { value: unknown };
  /** Dependencies whose results go in kwargs under their names. */
  inputs: ResultSource[];
  /** Hooks: `kwargs.workflow`. */
  workflowArg?: { name: string; namespace: string; phase: WorkflowPhase; failedSteps: Array<{ name: string; error?: { type: string; message: string } }> };
}

/** A planner's answer. */
export interface WorkflowPlan {
  /** The status to write (result and resultRef are kept from the last status; the reconciler fills them when `loadResult` is set). */
  status: WorkflowStatus;
  /** Tasks to publish now, in order. */
  publish: PlannedTask[];
  /** Every task id of a ready step or hook (published or not), so an adopting operator looks each up in NATS once. */
  ready: string[];
  /** forEach steps whose source list must be loaded before they can be planned. */
  loadItems: ResultSource[];
  /** The final result to load (the Workflow just succeeded): the leaf steps' results. */
  loadResult?: ResultSource[];
  /** Events of this transition. */
  events: Array<{ type: "Normal" | "Warning"; reason: string; message: string }>;
  /** True when the Workflow is finished (phase Succeeded, Failed or Cancelled). */
  done: boolean;
}


/** The hook spec of `name`. */
function hookOf(wf: Workflow, name: WorkflowHookName): WorkflowHook | undefined {
  return name === "onFailure" ? wf.spec.onFailure : wf.spec.onExit;
}

/** Counts and first error of a set of task ids. */
function countTasks(ids: readonly string[], obs: WorkflowObservation) {
  let succeeded = 0, failed = 0, running = 0, attempts = 0;
  let firstStart: string | undefined, lastEnd: string | undefined;
  let error: StepStatus["error"];
  let cancelledCount = 0;
  for (const id of ids) {
    const t = obs.tasks.get(id);
    if (t && isTerminalPhase(t.phase)) {
      attempts += t.attempts ?? 0;
      if (t.phase === "Succeeded") succeeded++;
      else {
        failed++;
        if (t.phase === "Cancelled") cancelledCount++;
        error ??= { type: t.error?.type ?? `${t.phase}Error`, message: t.error?.message ?? `task ${id} ended ${t.phase}`, taskId: id };
      }
      if (t.completionTime && (!lastEnd || t.completionTime > lastEnd)) lastEnd = t.completionTime;
    } else if (obs.published.has(id) || t) running++;
    if (t?.startTime && (!firstStart || t.startTime < firstStart)) firstStart = t.startTime;
  }
  return { succeeded, failed, running, attempts, error, cancelledCount, lastEnd, firstStart };
}

/**
 * Plans one reconcile of a (valid, unfinished or just-retried) Workflow.
 * @param wf the Workflow (uid, namespace and name set)
 * @param obs what is known of its tasks (see WorkflowObservation)
 * @returns the desired status, the tasks to publish, what to load first, the Events
 * @throws InvalidWorkflowGraphError when the spec has a cycle (check with `specProblem` first; the reconciler does)
 */
export function planWorkflow(wf: Workflow, obs: WorkflowObservation): WorkflowPlan {
  const uid = wf.metadata.uid ?? "";
  const spec = wf.spec;
  const prev = wf.status ?? {};
  const prevSteps = new Map((prev.steps ?? []).map((s) => [s.name, s]));
  const order = topologicalOrder(spec.steps);
  const byName = new Map(spec.steps.map((s, i) => [s.name, { step: s, index: i }]));
  const queueOf = (r: { queue?: string }) => r.queue ?? spec.queue;
  const nowIso = obs.now.toISOString();
  const retries = prev.retries ?? 0;

  interface StepState { status: StepStatus; ids: string[] | undefined; list: boolean; unpublished: Array<{ id: string; item?: unknown }> }
  const states = new Map<string, StepState>();
  let anyFailedTask = false;
  let running = 0;
  const failedSteps: Array<{ name: string; error?: { type: string; message: string } }> = [];

  const loadItems: ResultSource[] = [];
  for (const name of order) {
    const { step } = byName.get(name)!;
    const p = prevSteps.get(name);
    const generation = p?.generation ?? 0;
    const queue = queueOf(step);
    const deps = step.dependsOn ?? [];
    const depStates = deps.map((d) => states.get(d)!);
    const base: StepStatus = { name, phase: "Pending", tasks: { total: 0, succeeded: 0, failed: 0, running: 0 }, ...(generation > 0 ? { generation } : {}) };
    // A step the last status shows finished stays as it was (until a retry gives it a new
    // generation): its records may be gone since (expired from the results bucket, its Queue
    // deleted), and an operator that starts again must not make it Pending or Running again.
    if (p && (p.phase === "Succeeded" || p.phase === "Failed" || p.phase === "Cancelled")) {
      const total = p.tasks.total;
      const ids = step.forEach ? Array.from({ length: total }, (_, i) => workflowTaskId(uid, name, generation, i)) : total > 0 ? [workflowTaskId(uid, name, generation)] : [];
      states.set(name, { status: { ...p }, ids, list: Boolean(step.forEach), unpublished: [] });
      if (p.tasks.failed > 0 || p.phase === "Failed") {
        anyFailedTask = true;
        failedSteps.push({ name, ...(p.error ? { error: { type: p.error.type, message: p.error.message } } : {}) });
      }
      continue;
    }
    const blockedBy = depStates.find((d) => d.status.phase === "Failed" || d.status.phase === "Cancelled");
    const waiting = depStates.filter((d) => d.status.phase !== "Succeeded").map((d) => d.status.name);
    // the task ids, when known
    let items: unknown[] | undefined;
    let itemsError: string | undefined;
    if (step.forEach?.items) items = step.forEach.items;
    else if (step.forEach?.fromStep && waiting.length === 0) {
      const got = obs.items.get(name);
      if (got === undefined) {
        const src = states.get(step.forEach.fromStep)!;
        loadItems.push({ name: step.forEach.fromStep, queue: queueOf(byName.get(step.forEach.fromStep)!.step), ids: src.ids ?? [], list: src.list });
      } else if (Array.isArray(got)) items = got;
      else itemsError = got.error;
    }
    const ids = step.forEach ? (items ? items.map((_, i) => workflowTaskId(uid, name, generation, i)) : undefined) : [workflowTaskId(uid, name, generation)];
    const st: StepState = { status: base, ids, list: Boolean(step.forEach), unpublished: [] };
    states.set(name, st);
    const c = ids ? countTasks(ids, obs) : undefined;
    if (c) {
      base.tasks = { total: ids!.length, succeeded: c.succeeded, failed: c.failed, running: c.running };
      if (c.attempts > 0) base.attempts = c.attempts;
      running += c.running;
      if (c.failed > 0) anyFailedTask = true;
    }
    if (ids && ids.length > 0) base.taskIds = ids.slice(0, STEP_TASK_IDS_SHOWN);
    const touched = c !== undefined && c.succeeded + c.failed + c.running > 0;
    // a task recorded Failed without running (its message could not be built) has no start: its end stands for it
    if (touched) base.startTime = p?.startTime && p.generation === base.generation ? p.startTime : (c?.firstStart ?? c?.lastEnd ?? nowIso);
    if (itemsError) {
      base.phase = "Failed";
      base.message = itemsError;
      base.error = { type: /at most \d+/.test(itemsError) ? "ForEachSourceTooLong" : /not in its results bucket/.test(itemsError) ? "ResultMissing" : "ForEachSourceNotAList", message: itemsError, taskId: (states.get(step.forEach!.fromStep!)!.ids ?? [""])[0]! };
      base.completionTime = p?.completionTime ?? nowIso;
      anyFailedTask = true;
      failedSteps.push({ name, error: { type: base.error.type, message: itemsError } });
      continue;
    }
    if (c && c.failed > 0) {
      base.error = c.error;
      // revoked tasks only: Cancelled; any Failed or Expired task: Failed
      base.phase = c.running > 0 ? "Running" : c.cancelledCount === c.failed ? "Cancelled" : "Failed";
      if (base.phase !== "Running") {
        base.completionTime = p?.phase === "Failed" && p.completionTime ? p.completionTime : (c.lastEnd ?? nowIso);
        base.message = `${c.failed} of ${ids!.length} task${ids!.length === 1 ? "" : "s"} ${base.phase === "Cancelled" ? "revoked" : "failed"}; first: ${c.error!.taskId}: ${c.error!.type}: ${c.error!.message}`;
      }
      failedSteps.push({ name, error: { type: c.error!.type, message: c.error!.message } });
      continue;
    }
    if (c && ids && c.succeeded === ids.length) {
      base.phase = "Succeeded";
      base.completionTime = p?.phase === "Succeeded" && p.completionTime ? p.completionTime : (c.lastEnd ?? nowIso);
      continue;
    }
    if (blockedBy && !touched) {
      base.phase = "Cancelled";
      base.message = `not run: step ${blockedBy.status.name} ${blockedBy.status.phase === "Failed" ? "failed" : "was cancelled"}`;
      continue;
    }
    if (waiting.length > 0) {
      base.message = `waiting for ${waiting.join(", ")}`;
      continue;
    }
    if (!ids) {
      base.message = `loading the list of step ${step.forEach!.fromStep}`;
      continue;
    }
    // ready: its unpublished tasks
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!obs.published.has(id) && !obs.tasks.has(id)) st.unpublished.push(step.forEach ? { id, item: items![i] } : { id });
    }
    base.phase = touched ? "Running" : "Pending";
    if (!obs.queueExists(queue)) base.message = `waiting for Queue "${queue}" to exist`;
  }

  // publish: nothing new after a failure; parallelism caps what runs
  const publish: PlannedTask[] = [];
  const ready: string[] = [];
  let budget = spec.parallelism !== undefined ? Math.max(0, spec.parallelism - running) : Number.POSITIVE_INFINITY;
  for (const name of order) {
    const st = states.get(name)!;
    const { step, index } = byName.get(name)!;
    if (st.unpublished.length === 0 && !(st.status.phase === "Pending" || st.status.phase === "Running")) continue;
    for (const id of st.ids ?? []) if (!obs.tasks.has(id) || !isTerminalPhase(obs.tasks.get(id)!.phase)) ready.push(id);
    if (anyFailedTask) continue;
    if (!obs.queueExists(queueOf(step))) continue;
    const inputs: ResultSource[] = (step.dependsOn ?? [])
      .filter((d) => d !== step.forEach?.fromStep)
      .map((d) => ({ name: d, queue: queueOf(byName.get(d)!.step), ids: states.get(d)!.ids ?? [], list: states.get(d)!.list }));
    for (const u of st.unpublished) {
      if (budget <= 0) break;
      budget--;
      publish.push({ id: u.id, step: name, index, queue: queueOf(step), run: step, ...(step.forEach ? { item: { value: u.item } } : {}), inputs });
    }
  }

  // a step that cannot run any more after a failure (never published, or partly) ends Cancelled
  if (anyFailedTask) {
    const cause = failedSteps[0]?.name ?? "?";
    const verb = states.get(cause)?.status.phase === "Cancelled" ? "was cancelled" : "failed";
    for (const name of order) {
      const st = states.get(name)!.status;
      if ((st.phase === "Pending" || st.phase === "Running") && st.tasks.running === 0) {
        st.phase = "Cancelled";
        st.message = `not run${st.tasks.succeeded > 0 ? ` (${st.tasks.total - st.tasks.succeeded} of ${st.tasks.total} tasks)` : ""}: step ${cause} ${verb}`;
        st.completionTime ??= nowIso;
      }
    }
  }

  const steps = spec.steps.map((s) => states.get(s.name)!.status);
  const finished = steps.filter((s) => s.phase === "Succeeded" || s.phase === "Failed" || s.phase === "Cancelled").length;
  const mainDone = finished === steps.length;
  const mainPhase: WorkflowPhase = !mainDone ? "Running" : steps.every((s) => s.phase === "Succeeded") ? "Succeeded" : steps.some((s) => s.phase === "Failed") ? "Failed" : "Cancelled";

  // hooks, one after the other
  const hookStatus: Partial<Record<WorkflowHookName, StepStatus>> = {};
  let hooksDone = true;
  let hookFailed: StepStatus | undefined;
  if (mainDone) {
    const hooks: WorkflowHookName[] = [...(mainPhase !== "Succeeded" && spec.onFailure ? (["onFailure"] as const) : []), ...(spec.onExit ? (["onExit"] as const) : [])];
    for (const h of hooks) {
      const run = hookOf(wf, h)!;
      const id = workflowTaskId(uid, h, retries);
      const c = countTasks([id], obs);
      const p = h === "onFailure" ? prev.onFailure : prev.onExit;
      if (p && (p.generation ?? 0) === retries && (p.phase === "Succeeded" || p.phase === "Failed")) {
        // finished, as the last status shows (its record may be gone since)
        hookStatus[h] = { ...p };
        if (p.phase === "Failed") hookFailed ??= hookStatus[h];
        continue;
      }
      const s: StepStatus = { name: h, phase: "Pending", tasks: { total: 1, succeeded: c.succeeded, failed: c.failed, running: c.running }, taskIds: [id], ...(retries > 0 ? { generation: retries } : {}) };
      if (c.attempts > 0) s.attempts = c.attempts;
      if (c.succeeded + c.failed + c.running > 0) s.startTime = p?.startTime && (p.generation ?? 0) === retries ? p.startTime : (c.firstStart ?? nowIso);
      hookStatus[h] = s;
      if (c.succeeded === 1) {
        s.phase = "Succeeded";
        s.completionTime = c.lastEnd ?? nowIso;
        continue;
      }
      if (c.failed === 1) {
        s.phase = "Failed";
        s.error = c.error;
        s.completionTime = c.lastEnd ?? nowIso;
        s.message = `${c.error!.type}: ${c.error!.message}`;
        hookFailed ??= s;
        continue;
      }
      hooksDone = false;
      if (c.running === 0) {
        ready.push(id);
        if (!obs.queueExists(queueOf(run))) s.message = `waiting for Queue "${queueOf(run)}" to exist`;
        else if (budget > 0) {
          publish.push({
            id, step: h, index: spec.steps.length + (h === "onFailure" ? 0 : 1), queue: queueOf(run), run, inputs: [],
            workflowArg: { name: wf.metadata.name, namespace: wf.metadata.namespace ?? "", phase: mainPhase, failedSteps },
          });
        }
      } else {
        s.phase = "Running";
        ready.push(id);
      }
      break; // one hook at a time
    }
  }

  const done = mainDone && hooksDone;
  const phase: WorkflowPhase = !done ? (steps.some((s) => s.phase !== "Pending") || publish.length > 0 ? "Running" : "Pending") : hookFailed && mainPhase === "Succeeded" ? "Failed" : mainPhase;
  const startTime = prev.startTime ?? (publish.length > 0 || steps.some((s) => s.startTime) ? nowIso : undefined);
  const status: WorkflowStatus = {
    ...(prev.retryRequest !== undefined ? { retryRequest: prev.retryRequest } : {}),
    ...(retries > 0 ? { retries } : {}),
    phase,
    progress: `${finished}/${steps.length}`,
    ...(startTime ? { startTime } : {}),
    steps,
    ...(hookStatus.onFailure ? { onFailure: hookStatus.onFailure } : {}),
    ...(hookStatus.onExit ? { onExit: hookStatus.onExit } : {}),
    observedGeneration: wf.metadata.generation ?? 0,
  };
  const firstFailed = steps.find((s) => s.phase === "Failed");
  if (phase === "Failed" || phase === "Cancelled") {
    status.message = firstFailed ? `step ${firstFailed.name} failed: ${firstFailed.error ? `${firstFailed.error.type}: ${firstFailed.error.message}` : firstFailed.message ?? ""}` : hookFailed ? `hook ${hookFailed.name} failed: ${hookFailed.message ?? ""}` : (steps.find((s) => s.error)?.error ? `step ${steps.find((s) => s.error)!.name} was cancelled` : "cancelled");
  } else if (phase === "Running" && anyFailedTask) {
    status.message = `step ${failedSteps[0]?.name} failed; finishing running steps${mainDone ? " and hooks" : ""}`;
  } else if (phase === "Pending" || phase === "Running") {
    // a step held by a missing Queue says so at the top (kubectl get -o wide's MESSAGE)
    const held = steps.find((s) => s.message?.startsWith("waiting for Queue"));
    if (held) status.message = `step ${held.name} is ${held.message}`;
  }
  if (done) {
    status.completionTime = prev.completionTime && prev.phase === phase ? prev.completionTime : nowIso;
    if (status.startTime) status.duration = formatDuration(Date.parse(status.completionTime) - Date.parse(status.startTime));
  }
  // the result: kept from the last status; loaded when the Workflow just succeeded
  let loadResult: ResultSource[] | undefined;
  if (phase === "Succeeded") {
    if (prev.result !== undefined) status.result = prev.result;
    else if (prev.resultRef) status.resultRef = prev.resultRef;
    else {
      const depended = new Set(spec.steps.flatMap((s) => s.dependsOn ?? []));
      loadResult = spec.steps.filter((s) => !depended.has(s.name)).map((s) => ({ name: s.name, queue: queueOf(s), ids: states.get(s.name)!.ids ?? [], list: Boolean(s.forEach) }));
    }
  }
  status.conditions = workflowConditions(wf, phase, status.message, obs.now);

  // events of the transition
  const events: WorkflowPlan["events"] = [];
  if (!prev.startTime && status.startTime) events.push({ type: "Normal", reason: REASONS.WorkflowStarted, message: `Started: published ${publish.length} task${publish.length === 1 ? "" : "s"} of step${new Set(publish.map((p) => p.step)).size === 1 ? "" : "s"} ${[...new Set(publish.map((p) => p.step))].join(", ")}` });
  for (const s of [...steps, ...Object.values(hookStatus)]) {
    const was = s.name === "onFailure" ? prev.onFailure : s.name === "onExit" ? prev.onExit : prevSteps.get(s.name);
    if (s.phase === "Failed" && (was?.phase !== "Failed" || (was.generation ?? 0) !== (s.generation ?? 0))) {
      events.push({ type: "Warning", reason: REASONS.StepFailed, message: `Step ${s.name} failed: ${s.message ?? ""}` });
    }
  }
  if (done && prev.phase !== phase) {
    if (phase === "Succeeded") events.push({ type: "Normal", reason: REASONS.Succeeded, message: `Workflow succeeded: ${steps.length} steps in ${status.duration ?? "0s"}` });
    else events.push({ type: "Warning", reason: phase === "Cancelled" ? REASONS.Cancelled : REASONS.Failed, message: `Workflow ${phase === "Cancelled" ? "cancelled" : "failed"}: ${status.message ?? ""}` });
  }
  return { status, publish, ready, loadItems, ...(loadResult ? { loadResult } : {}), events, done };
}

/**
 * The Succeeded and Failed conditions for `phase` (both False, reason Running or Pending, while
 * unfinished; the matching one True at the end), transition times kept from the last status.
 * @param message the status message (the Failed condition's message when it failed)
 */
export function workflowConditions(wf: Workflow, phase: WorkflowPhase, message: string | undefined, now: Date): NonNullable<WorkflowStatus["conditions"]> {
  const T = CONDITION_TYPES.Workflow;
  const g = wf.metadata.generation;
  const endReason = phase === "Cancelled" ? REASONS.Cancelled : REASONS.Failed;
  const ok = phase === "Succeeded";
  const bad = phase === "Failed" || phase === "Cancelled";
  const waitReason = phase === "Pending" ? "Pending" : REASONS.Running;
  let c = setCondition(wf.status?.conditions, { type: T.Succeeded, status: ok ? "True" : "False", reason: ok ? REASONS.Succeeded : bad ? endReason : waitReason, message: ok ? "every step succeeded" : bad ? (message ?? phase) : `the Workflow is ${phase.toLowerCase()}`, observedGeneration: g }, now);
  c = setCondition(c, { type: T.Failed, status: bad ? "True" : "False", reason: bad ? endReason : ok ? REASONS.Succeeded : waitReason, message: bad ? (message ?? phase) : ok ? "every step succeeded" : `the Workflow is ${phase.toLowerCase()}`, observedGeneration: g }, now);
  return c.filter((x) => x.type === T.Succeeded || x.type === T.Failed);
}

/**
 * The status that starts a retry from the failed steps (Argo's `retry`): every step that did not
 * succeed gets generation + 1 (new task ids) and phase Pending; succeeded steps keep their status;
 * the hooks' statuses and the final result are dropped; `retries` + 1, `retryRequest` = `request`,
 * phase Running. Pure.
 * @param wf a Workflow in phase Failed or Cancelled
 * @param request the celeriac.io/retry annotation value acted on
 */
export function retryStatus(wf: Workflow, request: string): WorkflowStatus {
  const prev = wf.status ?? {};
  const steps = (prev.steps ?? []).map((s): StepStatus =>
    s.phase === "Succeeded" ? s : { name: s.name, phase: "Pending", tasks: { total: 0, succeeded: 0, failed: 0, running: 0 }, generation: (s.generation ?? 0) + 1 },
  );
  return {
    phase: "Running",
    progress: `${steps.filter((s) => s.phase === "Succeeded").length}/${wf.spec.steps.length}`,
    ...(prev.startTime ? { startTime: prev.startTime } : {}),
    steps,
    retries: (prev.retries ?? 0) + 1,
    retryRequest: request,
    conditions: workflowConditions(wf, "Running", undefined, new Date()),
    observedGeneration: wf.metadata.generation ?? 0,
  };
}

/**
 * The spec's problems that `kubectl apply` lets through (api/workflow-check.ts: a cycle of three or
 * more steps, a kwarg named like a dependency — the CRD's CEL rules cannot see them), as one
 * message naming the steps and the fix; undefined when the spec is sound. Pure.
 */
export function specProblem(spec: WorkflowSpec): string | undefined {
  const problems = checkWorkflowSpec(spec);
  if (problems.length === 0) return undefined;
  return problems.map((p) => p.message).join("; ");
}

