/**
 * The Schedule policy engine: given a Schedule, the Tasks and Workflows it owns and the current time,
 * which Tasks (taskTemplate) or Workflows (workflowTemplate) to create, which children to cancel and
 * delete, which runs were missed, the new status, the Events to emit and when to look again. Pure:
 * the clock is an argument; no clients, no env. The reconciler is a thin shell that applies the plan
 * (see planScheduleRun).
 *
 * Vocabulary and defaults are CronJob's (kubernetes/kubernetes `pkg/controller/cronjob`,
 * `cronjob_controllerv2.go` `syncCronJob`, `utils.go` `mostRecentScheduleTime`), with these changes:
 * - runs are found since the newest of lastScheduleTime, lastMissedTime, the newest owned Task's
 *   nominal time and creationTimestamp, so a missed run is recorded once and never re-noticed;
 * - every missed run is counted (status.missedRuns, lastMissedTime) and reported as an Event;
 *   none is dropped silently, there is no hidden "100 missed times" rule;
 * - `missedRunPolicy` chooses between RunLatest (CronJob's), Skip and RunAll (capped by missedRunsLimit);
 * - `concurrencyPolicy: Forbid` skips and records the run immediately; it does not start it late
 *   when the active Task finishes (CronJob does, within startingDeadlineSeconds);
 * - runs are whole seconds and the requeue is exact (CronJob adds 100 ms and has minute granularity);
 * - a run is a Task or, with a workflowTemplate, a Workflow; both kinds of child are one population
 *   for the policies (an active Workflow counts for Forbid and Replace as an active Task does, the
 *   history limits count both), so switching templates keeps the guarantees.
 */
import { checkWorkflowSpec } from "../../api/workflow-check.js";
import { DEFAULT_SCHEDULE } from "../../api/defaults.js";
import { CONDITION_TYPES, REASONS } from "../../api/constants.js";
import { getCondition, setCondition } from "../../api/conditions.js";
import type { ScheduleSpec, ScheduleStatus } from "../../api/schedule.js";
import { nextRun, parseSchedule, runsBetween } from "./next-run.js";
import { taskNameFor } from "./task-name.js";
import { isActiveTask, nominalTimeOf, tasksBeyondHistory, toDate, type ScheduleChildKind, type ScheduleTaskInfo } from "./history.js";

/**
 * Why a run was not started:
 * - `Downtime`: the operator was not reconciling when it was due (before operatorStartTime, or a
 *   newer run was already due when the operator looked) and missedRunPolicy did not start it;
 * - `Suspended`: it fell while the Schedule was suspended and missedRunPolicy did not start it on resume;
 * - `Forbid`: concurrencyPolicy Forbid and a Task was still active (or a newer run of the same
 *   catch-up batch was started instead);
 * - `Replace`: concurrencyPolicy Replace and a newer run of the same catch-up batch replaced it;
 * - `StartingDeadline`: it could not start within startingDeadlineSeconds of its nominal time.
 */
export type MissedReason = "Downtime" | "Suspended" | "Forbid" | "Replace" | "StartingDeadline";

/** A run not started. */
export interface MissedRun {
  /** Nominal run time. */
  nominalTime: Date;
  /** Why it was not started. */
  reason: MissedReason;
}

/** A Task (or Workflow) to create. */
export interface PlannedRun {
  /** Deterministic name (taskNameFor): create it; AlreadyExists means it is already done. */
  name: string;
  /** What to create: a Workflow when the spec has a workflowTemplate, else a Task. */
  kind: ScheduleChildKind;
  /** Nominal run time: put it in the ANNOTATIONS.scheduledAt annotation (RFC 3339). */
  nominalTime: Date;
}

/** An Event to record on the Schedule (CronJob's reasons where one exists). */
export interface ScheduleEvent {
  type: "Normal" | "Warning";
  /** CamelCase: SuccessfulCreate, SuccessfulCancel, SuccessfulDelete, MissSchedule, JobAlreadyActive, TooManyMissedTimes, InvalidSchedule. */
  reason: string;
  /** Human-readable, starts with a capital, no trailing period. */
  message: string;
  /** The Task or Workflow the event is about (create, cancel, delete): emit it only after that call succeeded. */
  taskName?: string;
}

/** Input of planScheduleRun. Times are Dates or RFC 3339 strings. */
export interface SchedulePlanInput {
  /** Schedule metadata.name: the prefix of Task and Workflow names. */
  name: string;
  /** Schedule metadata.creationTimestamp: where runs start when there is no status yet. */
  creationTimestamp: Date | string;
  /** Schedule metadata.generation, copied to status.observedGeneration and the Ready condition. */
  generation?: number;
  /** Schedule spec (defaults from DEFAULT_SCHEDULE are applied here). */
  spec: ScheduleSpec;
  /** Current Schedule status (may be empty). */
  status?: ScheduleStatus;
  /**
   * Every Task and Workflow this Schedule owns (ownerReference or LABELS.schedule), from caches that
   * have seen our own creates; Workflows with `kind: "Workflow"`.
   */
  tasks: readonly ScheduleTaskInfo[];
  /** The current time (injected). */
  now: Date;
  /** Overrides status.lastScheduleTime (for callers that track it elsewhere); usually leave unset. */
  lastScheduleTime?: Date | string;
  /**
   * When this operator instance started reconciling Schedules (process start, or leadership acquired).
   * Runs due before it were missed by downtime; missedRunPolicy Skip still starts a run due after it.
   * Unset: only a run at most ON_TIME_TOLERANCE_MS late counts as on time.
   */
  operatorStartTime?: Date;
}

/** What to do, from planScheduleRun. */
export interface SchedulePlan {
  /** Tasks or Workflows to create, oldest first. Create in order; stop at the first error other than AlreadyExists. */
  create: PlannedRun[];
  /** Names of active Tasks and Workflows to cancel (delete) before creating (concurrencyPolicy Replace); the kind is the input's. */
  cancel: string[];
  /** Names of finished Tasks and Workflows to delete (history limits), oldest first; the kind is the input's. */
  delete: string[];
  /** Runs not started, oldest first; already counted in `status`. */
  missed: MissedRun[];
  /** The complete new status: write it after the creates succeeded (one status write). */
  status: ScheduleStatus;
  /** Events to emit (those with `taskName` only once that call succeeded). */
  events: ScheduleEvent[];
  /**
   * Milliseconds until the next nominal run (requeue exactly then; 0 = more missed runs to process now);
   * capped at MAX_REQUEUE_MS (setTimeout's limit) — an early wake-up just plans again.
   * Undefined: nothing will ever be due (suspended, invalid, or the expression never fires again).
   */
  requeueAfterMs: number | undefined;
}

/**
 * Event reasons of Schedules besides the condition reasons in REASONS: CronJob's
 * (kubernetes/kubernetes `pkg/controller/cronjob`), so `kubectl get events` reads the same.
 */
export const SCHEDULE_EVENT_REASONS = {
  SuccessfulCreate: "SuccessfulCreate",
  SuccessfulCancel: "SuccessfulCancel",
  SuccessfulDelete: "SuccessfulDelete",
  MissSchedule: "MissSchedule",
  JobAlreadyActive: "JobAlreadyActive",
  TooManyMissedTimes: "TooManyMissedTimes",
} as const;

/** How late (ms) a run may be and still count as on time for missedRunPolicy Skip. */
export const ON_TIME_TOLERANCE_MS = 1000;
/** Most missed runs one plan records before handing the rest to the next plan (requeueAfterMs 0). */
export const MAX_MISSED_PER_PLAN = 1000;
/** Most missed runs listed as individual Events in one plan; the rest are summed up in one TooManyMissedTimes Event. */
export const MAX_MISSED_EVENTS = 10;
/** Largest requeueAfterMs: 2^31 − 1 ms (about 24.8 days), the most setTimeout accepts. */
export const MAX_REQUEUE_MS = 2_147_483_647;

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
const maxDate = (...ds: Array<Date | undefined>): Date | undefined => {
  let best: Date | undefined;
  for (const d of ds) if (d && (!best || d.getTime() > best.getTime())) best = d;
  return best;
};

/**
 * Plans one reconcile of a Schedule. Pure and idempotent: planning again with the created Tasks or
 * Workflows present (or with the returned status) creates nothing new. "Task" below stands for
 * either kind of child.
 *
 * Order of decisions:
 * 1. history: finished Tasks beyond successfulTasksHistoryLimit / failedTasksHistoryLimit (always);
 * 2. invalid expression or zone, or a workflowTemplate with a problem kubectl apply lets through (a
 *    cycle of three or more steps, a kwarg named like a dependency: api/workflow-check.ts):
 *    Ready=False/InvalidSchedule with the parser's (or the check's) message, nothing created,
 *    no requeue (a spec change triggers the next reconcile);
 * 3. suspend: nothing created; runs that fall due are left for missedRunPolicy on resume (reason
 *    Suspended when it does not start them), Ready=True/Suspended, no requeue;
 * 4. due runs = nominal times in (cursor, now]; older than startingDeadlineSeconds → missed
 *    (StartingDeadline); of the rest, missedRunPolicy picks what starts: RunLatest the newest,
 *    RunAll the newest missedRunsLimit (oldest first), Skip the newest only if it is on time;
 * 5. concurrencyPolicy: Forbid/Replace start at most one run per plan (the newest); Forbid with an
 *    active Task starts none (reason Forbid); Replace cancels the active Tasks first;
 * 6. status, Events, and requeueAfterMs = exactly until the next nominal run.
 * @throws never for bad user input (reported in status); only for a malformed `name` (not a DNS-1123 subdomain)
 */
export function planScheduleRun(input: SchedulePlanInput): SchedulePlan {
  const { name, spec, tasks, now } = input;
  const nowMs = now.getTime();
  const prev: ScheduleStatus = input.status ?? {};
  const timeZone = spec.timeZone ?? DEFAULT_SCHEDULE.timeZone;
  const missedRunPolicy = spec.missedRunPolicy ?? DEFAULT_SCHEDULE.missedRunPolicy;
  const concurrencyPolicy = spec.concurrencyPolicy ?? DEFAULT_SCHEDULE.concurrencyPolicy;
  const missedRunsLimit = Math.max(1, spec.missedRunsLimit ?? DEFAULT_SCHEDULE.missedRunsLimit);
  const generation = input.generation;
  const readyType = CONDITION_TYPES.Schedule.Ready;
  const prevReady = getCondition(prev.conditions, readyType);
  const events: ScheduleEvent[] = [];
  const runKind: ScheduleChildKind = spec.workflowTemplate ? "Workflow" : "Task";
  const kindOf = new Map(tasks.map((t) => [t.name, t.kind ?? "Task"]));
  const noun = (childName: string | undefined) => kindOf.get(childName ?? "") ?? "Task";

  // 1. History, whatever else happens.
  const toDelete = tasksBeyondHistory(
    name,
    tasks,
    spec.successfulTasksHistoryLimit ?? DEFAULT_SCHEDULE.successfulTasksHistoryLimit,
    spec.failedTasksHistoryLimit ?? DEFAULT_SCHEDULE.failedTasksHistoryLimit,
  );
  for (const t of toDelete) {
    events.push({ type: "Normal", reason: SCHEDULE_EVENT_REASONS.SuccessfulDelete, message: `Deleted finished ${noun(t)} ${t} beyond the history limit`, taskName: t });
  }
  const activeTasks = tasks
    .filter(isActiveTask)
    .sort((a, b) => (nominalTimeOf(name, a)?.getTime() ?? 0) - (nominalTimeOf(name, b)?.getTime() ?? 0) || (a.name < b.name ? -1 : 1));
  let lastSuccessful = toDate(prev.lastSuccessfulTime);
  for (const t of tasks) if (t.phase === "Succeeded") lastSuccessful = maxDate(lastSuccessful, toDate(t.completionTime));
  const taskNames = new Set(tasks.map((t) => t.name));
  let newestTask: Date | undefined;
  for (const t of tasks) {
    const n = nominalTimeOf(name, t);
    if (n && n.getTime() <= nowMs) newestTask = maxDate(newestTask, n);
  }
  const lastSchedule = maxDate(toDate(input.lastScheduleTime ?? prev.lastScheduleTime), newestTask);

  const baseStatus = (active: Array<{ name: string; uid?: string }>): ScheduleStatus => {
    const s: ScheduleStatus = {};
    if (lastSchedule) s.lastScheduleTime = rfc3339(lastSchedule);
    if (lastSuccessful) s.lastSuccessfulTime = rfc3339(lastSuccessful);
    s.active = active;
    s.missedRuns = prev.missedRuns ?? 0;
    if (prev.lastMissedTime) s.lastMissedTime = prev.lastMissedTime;
    if (generation !== undefined) s.observedGeneration = generation;
    return s;
  };
  const ref = (childName: string, uid: string | undefined, kind: ScheduleChildKind): { name: string; uid?: string; kind?: "Workflow" } => ({
    name: childName,
    ...(uid ? { uid } : {}),
    ...(kind === "Workflow" ? { kind } : {}),
  });
  const activeRefs = activeTasks.map((t) => ref(t.name, t.uid, t.kind ?? "Task"));
  const withGen = <T extends object>(c: T) => (generation !== undefined ? { ...c, observedGeneration: generation } : c);

  // 2. Invalid expression or zone, or a workflowTemplate the operator would fail every run of (a
  //    cycle of three or more steps, a kwarg named like a dependency: what kubectl apply lets through)
  const templateProblems = spec.workflowTemplate ? checkWorkflowSpec(spec.workflowTemplate.spec) : [];
  const parsed = templateProblems.length > 0
    ? { ok: false as const, message: `spec.workflowTemplate: ${templateProblems.map((p) => p.message).join("; ")}: no Workflow is created until the template is fixed` }
    : parseSchedule(spec.schedule, timeZone);
  if (!parsed.ok) {
    const status = baseStatus(activeRefs);
    status.conditions = setCondition(
      prev.conditions,
      withGen({ type: readyType, status: "False" as const, reason: REASONS.InvalidSchedule, message: parsed.message }),
      now,
    );
    if (!(prevReady?.reason === REASONS.InvalidSchedule && prevReady.message === parsed.message)) {
      events.push({ type: "Warning", reason: REASONS.InvalidSchedule, message: parsed.message });
    }
    return { create: [], cancel: [], delete: toDelete, missed: [], status, events, requeueAfterMs: undefined };
  }

  // 3. Suspended: leave due runs to missedRunPolicy on resume.
  if (spec.suspend) {
    const status = baseStatus(activeRefs);
    status.conditions = setCondition(
      prev.conditions,
      withGen({
        type: readyType,
        status: "True" as const,
        reason: REASONS.Suspended,
        message: `Suspended: no ${runKind}s are created; on resume, runs due meanwhile are handled by missedRunPolicy ${missedRunPolicy}`,
      }),
      now,
    );
    return { create: [], cancel: [], delete: toDelete, missed: [], status, events, requeueAfterMs: undefined };
  }
  const wasSuspended = prevReady?.reason === REASONS.Suspended;
  const operatorStartMs = input.operatorStartTime?.getTime();

  // 4. Due runs since the cursor.
  const cursor = maxDate(toDate(input.creationTimestamp), lastSchedule, toDate(prev.lastMissedTime)) ?? now;
  const keep = missedRunPolicy === "RunAll" ? missedRunsLimit : 1;
  const pageLimit = MAX_MISSED_PER_PLAN + keep;
  const due = runsBetween(spec.schedule, timeZone, cursor, now, pageLimit + 1);
  const cutoffMs = spec.startingDeadlineSeconds !== undefined ? nowMs - spec.startingDeadlineSeconds * 1000 : -Infinity;
  const causeOf = (t: Date): MissedReason => {
    if (t.getTime() < cutoffMs) return "StartingDeadline";
    if (wasSuspended && (operatorStartMs === undefined || t.getTime() >= operatorStartMs)) return "Suspended";
    return "Downtime";
  };

  const missed: MissedRun[] = [];
  let starts: Date[] = [];
  let cancel: string[] = [];
  let more = false;
  if (due.length > pageLimit) {
    // More due runs than one plan handles: each of the first MAX_MISSED_PER_PLAN has more than `keep`
    // newer due runs, so every policy misses it. Record them and continue at once with the rest.
    more = true;
    for (const t of due.slice(0, MAX_MISSED_PER_PLAN)) missed.push({ nominalTime: t, reason: causeOf(t) });
  } else {
    const inDeadline = due.filter((t) => t.getTime() >= cutoffMs);
    const latest = inDeadline[inDeadline.length - 1];
    if (missedRunPolicy === "RunAll") starts = inDeadline.slice(-missedRunsLimit);
    else if (missedRunPolicy === "Skip") {
      const onTime = (t: Date) =>
        nowMs - t.getTime() <= ON_TIME_TOLERANCE_MS || (!wasSuspended && operatorStartMs !== undefined && t.getTime() >= operatorStartMs);
      starts = latest && latest.getTime() === due[due.length - 1]?.getTime() && onTime(latest) ? [latest] : [];
    } else starts = latest ? [latest] : [];

    // 5. Concurrency.
    const reasonOf = new Map<number, MissedReason>();
    if (concurrencyPolicy !== "Allow" && starts.length > 1) {
      for (const t of starts.slice(0, -1)) reasonOf.set(t.getTime(), concurrencyPolicy === "Forbid" ? "Forbid" : "Replace");
      starts = starts.slice(-1);
    }
    if (concurrencyPolicy === "Forbid" && activeTasks.length > 0) {
      for (const t of starts) reasonOf.set(t.getTime(), "Forbid");
      starts = [];
    }
    if (concurrencyPolicy === "Replace" && activeTasks.length > 0 && starts.length > 0) cancel = activeTasks.map((t) => t.name);
    const started = new Set(starts.map((t) => t.getTime()));
    for (const t of due) if (!started.has(t.getTime())) missed.push({ nominalTime: t, reason: reasonOf.get(t.getTime()) ?? causeOf(t) });
  }

  const create: PlannedRun[] = starts
    .map((t) => ({ name: taskNameFor(name, t), kind: runKind, nominalTime: t }))
    .filter((r) => !taskNames.has(r.name));

  // 6. Status, Events, requeue.
  const status = baseStatus([...activeRefs, ...create.map((r) => ref(r.name, undefined, r.kind))]);
  const newest = maxDate(lastSchedule, ...starts);
  if (newest) status.lastScheduleTime = rfc3339(newest);
  if (missed.length > 0) {
    status.missedRuns = (prev.missedRuns ?? 0) + missed.length;
    const lastMissed = maxDate(toDate(prev.lastMissedTime), ...missed.map((m) => m.nominalTime));
    if (lastMissed) status.lastMissedTime = rfc3339(lastMissed);
  }
  const cursorAfter = maxDate(cursor, now) ?? now;
  const next = nextRun(spec.schedule, timeZone, cursorAfter);
  if (next) status.nextScheduleTime = rfc3339(next);
  status.conditions = setCondition(
    prev.conditions,
    withGen({ type: readyType, status: "True" as const, reason: REASONS.Scheduled, message: `Schedule "${spec.schedule}" in ${parsed.timeZone} is valid` }),
    now,
  );

  for (const c of cancel) {
    events.push({ type: "Normal", reason: SCHEDULE_EVENT_REASONS.SuccessfulCancel, message: `Cancelled active ${noun(c)} ${c} to start a new run (concurrencyPolicy Replace)`, taskName: c });
  }
  for (const r of create) {
    events.push({ type: "Normal", reason: SCHEDULE_EVENT_REASONS.SuccessfulCreate, message: `Created ${r.kind} ${r.name} for the run at ${rfc3339(r.nominalTime)}`, taskName: r.name });
  }
  for (const m of missed.slice(0, MAX_MISSED_EVENTS)) events.push(missedEvent(m, activeTasks[0] && { name: activeTasks[0].name, kind: activeTasks[0].kind ?? "Task" }));
  if (missed.length > MAX_MISSED_EVENTS) {
    const counts = new Map<MissedReason, number>();
    for (const m of missed) counts.set(m.reason, (counts.get(m.reason) ?? 0) + 1);
    const byReason = [...counts].map(([r, n]) => `${r}: ${n}`).join(", ");
    const first = missed[0]!.nominalTime;
    const last = missed[missed.length - 1]!.nominalTime;
    events.push({
      type: "Warning",
      reason: SCHEDULE_EVENT_REASONS.TooManyMissedTimes,
      message: `Missed ${missed.length} runs from ${rfc3339(first)} to ${rfc3339(last)} (${byReason}); the first ${MAX_MISSED_EVENTS} are listed as Events, all are counted in status.missedRuns`,
    });
  }

  const requeueAfterMs = more ? 0 : next ? Math.min(MAX_REQUEUE_MS, Math.max(0, next.getTime() - nowMs)) : undefined;
  return { create, cancel, delete: toDelete, missed, status, events, requeueAfterMs };
}

function missedEvent(m: MissedRun, active: { name: string; kind: ScheduleChildKind } | undefined): ScheduleEvent {
  const at = rfc3339(m.nominalTime);
  switch (m.reason) {
    case "Forbid":
      return {
        type: "Warning",
        reason: SCHEDULE_EVENT_REASONS.JobAlreadyActive,
        message: active
          ? `Skipped the run at ${at}: ${active.kind} ${active.name} is still active and concurrencyPolicy is Forbid`
          : `Skipped the run at ${at}: a newer run started instead and concurrencyPolicy is Forbid`,
      };
    case "Replace":
      return { type: "Warning", reason: SCHEDULE_EVENT_REASONS.MissSchedule, message: `Skipped the run at ${at}: a newer run replaced it (concurrencyPolicy Replace)` };
    case "StartingDeadline":
      return { type: "Warning", reason: SCHEDULE_EVENT_REASONS.MissSchedule, message: `Missed the run at ${at}: not started within startingDeadlineSeconds` };
    case "Suspended":
      return { type: "Warning", reason: SCHEDULE_EVENT_REASONS.MissSchedule, message: `Missed the run at ${at}: the Schedule was suspended (missedRunPolicy)` };
    default:
      return { type: "Warning", reason: SCHEDULE_EVENT_REASONS.MissSchedule, message: `Missed the run at ${at}: the operator was not running (missedRunPolicy)` };
  }
}
