/**
 * The pure core of the Schedule controller: next-run computation, deterministic Task (and Workflow)
 * names, history limits and the policy engine (planScheduleRun). The reconciler shell applies the plan; see
 * docs/schedules.md for the user-facing rules.
 */
export { parseSchedule, nextRun, runsBetween, type ParseResult } from "./next-run.js";
export { parseGoDuration } from "./go-duration.js";
export { canonicalTimeZone, zoneOffsetMs, instantToWall, wallToInstant } from "./zone-time.js";
export { taskNameFor, nominalTimeFromTaskName, isDnsSubdomain, MAX_TASK_NAME_LENGTH } from "./task-name.js";
export {
  tasksBeyondHistory,
  toScheduleTaskInfo,
  toScheduleWorkflowInfo,
  nominalTimeOf,
  isActiveTask,
  isFailedTask,
  toDate,
  type ScheduleTaskInfo,
  type ScheduleChildKind,
} from "./history.js";
export {
  planScheduleRun,
  ON_TIME_TOLERANCE_MS,
  MAX_MISSED_PER_PLAN,
  MAX_MISSED_EVENTS,
  MAX_REQUEUE_MS,
  type SchedulePlanInput,
  type SchedulePlan,
  type PlannedRun,
  type MissedRun,
  type MissedReason,
  type ScheduleEvent,
} from "./plan.js";
