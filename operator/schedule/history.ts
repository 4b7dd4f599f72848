/**
 * The Tasks and Workflows a Schedule owns, as the planner sees them, and the history limits: which
 * finished ones to delete. Pure.
 *
 * CronJob semantics (kubernetes/kubernetes `cronjob_controllerv2.go` `cleanupFinishedJobs`): keep the
 * newest `successfulJobsHistoryLimit` succeeded and `failedJobsHistoryLimit` failed children, delete
 * the older ones; running children are never deleted. Celeriac counts Failed, Cancelled and Expired
 * as failed, and orders by nominal run time (CronJob orders by start time). A Workflow child is
 * treated as a Task: its phases Pending and Running are active, Succeeded, Failed and Cancelled
 * terminal; Tasks and Workflows of one Schedule are counted together (one history).
 */
import { ANNOTATIONS, isTerminalPhase } from "../../api/constants.js";
import type { Task, Workflow } from "../../api/objects.js";
import { nominalTimeFromTaskName } from "./task-name.js";

/** The kinds of object a Schedule creates: a Task (taskTemplate) or a Workflow (workflowTemplate). */
export type ScheduleChildKind = "Task" | "Workflow";

/** A Task or Workflow owned by the Schedule, reduced to what the planner reads. Times are Dates or RFC 3339 strings. */
export interface ScheduleTaskInfo {
  /** metadata.name (unique across both kinds: both are named by taskNameFor) */
  name: string;
  /** Which kind it is; undefined = Task */
  kind?: ScheduleChildKind;
  /** metadata.uid, copied into status.active when present */
  uid?: string;
  /** status.phase; undefined = not yet picked up (counts as active) */
  phase?: string;
  /** metadata.creationTimestamp */
  creationTimestamp?: Date | string;
  /** The nominal run time: the `celeriac.io/scheduled-at` annotation (ANNOTATIONS.scheduledAt) */
  scheduledAt?: Date | string;
  /** status.completionTime: when it reached a terminal phase (for lastSuccessfulTime) */
  completionTime?: Date | string;
}

/**
 * Reduces a Task (as read from the API or a cache; only its metadata and status are read) to
 * ScheduleTaskInfo.
 */
export function toScheduleTaskInfo(task: Pick<Task, "metadata" | "status">): ScheduleTaskInfo {
  return {
    name: task.metadata.name,
    uid: task.metadata.uid,
    phase: task.status?.phase,
    creationTimestamp: task.metadata.creationTimestamp,
    scheduledAt: task.metadata.annotations?.[ANNOTATIONS.scheduledAt],
    completionTime: task.status?.completionTime,
  };
}

/**
 * Reduces a Workflow (as read from the API or a cache; only its metadata and status are read) to
 * ScheduleTaskInfo with kind Workflow.
 */
export function toScheduleWorkflowInfo(workflow: Pick<Workflow, "metadata" | "status">): ScheduleTaskInfo {
  return {
    name: workflow.metadata.name,
    kind: "Workflow",
    uid: workflow.metadata.uid,
    phase: workflow.status?.phase,
    creationTimestamp: workflow.metadata.creationTimestamp,
    scheduledAt: workflow.metadata.annotations?.[ANNOTATIONS.scheduledAt],
    completionTime: workflow.status?.completionTime,
  };
}

/** Parses a Date or RFC 3339 string; undefined for missing or unparseable values. */
export function toDate(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * The nominal run time of a Task: its scheduled-at annotation, else the time in its name
 * (see taskNameFor), else its creationTimestamp.
 * @returns the time, or undefined when none is known
 */
export function nominalTimeOf(scheduleName: string, task: ScheduleTaskInfo): Date | undefined {
  return toDate(task.scheduledAt) ?? nominalTimeFromTaskName(scheduleName, task.name) ?? toDate(task.creationTimestamp);
}

/** True for a Task or Workflow that has not reached a terminal phase (including one with no phase yet). */
export function isActiveTask(task: ScheduleTaskInfo): boolean {
  return !isTerminalPhase(task.phase);
}

/** True for Failed, Cancelled and Expired (the phases failedTasksHistoryLimit counts; a Workflow is never Expired). */
export function isFailedTask(task: ScheduleTaskInfo): boolean {
  return isTerminalPhase(task.phase) && task.phase !== "Succeeded";
}

/**
 * The finished Tasks and Workflows to delete so that at most `successfulLimit` Succeeded and
 * `failedLimit` Failed/Cancelled/Expired ones remain; the oldest (by nominal run time, then name) go first.
 * @param scheduleName the owning Schedule (used to read nominal times from names)
 * @param tasks every Task and Workflow the Schedule owns
 * @param successfulLimit spec.successfulTasksHistoryLimit (≥ 0)
 * @param failedLimit spec.failedTasksHistoryLimit (≥ 0)
 * @returns names to delete, oldest first
 */
export function tasksBeyondHistory(
  scheduleName: string,
  tasks: readonly ScheduleTaskInfo[],
  successfulLimit: number,
  failedLimit: number,
): string[] {
  const byAge = (a: ScheduleTaskInfo, b: ScheduleTaskInfo) => {
    const ta = nominalTimeOf(scheduleName, a)?.getTime() ?? 0;
    const tb = nominalTimeOf(scheduleName, b)?.getTime() ?? 0;
    return ta - tb || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  };
  const succeeded = tasks.filter((t) => t.phase === "Succeeded").sort(byAge);
  const failed = tasks.filter(isFailedTask).sort(byAge);
  const excess = (list: ScheduleTaskInfo[], limit: number) => list.slice(0, Math.max(0, list.length - Math.max(0, limit)));
  return [...excess(succeeded, successfulLimit), ...excess(failed, failedLimit)].sort(byAge).map((t) => t.name);
}
