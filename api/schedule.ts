/**
 * The `Schedule` resource (celeriac.io/v1alpha1): periodic Tasks or Workflows, CronJob's vocabulary with
 * Celery beat's intervals, fixing both: never fires twice, records every missed run, fires within a second.
 */
import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_SCHEDULE } from "./defaults.js";
import { taskSpecSchema } from "./task.js";
import { workflowSpecSchema } from "./workflow.js";
import { Conditions, StringEnum, StringMap, Timestamp } from "./schema-helpers.js";

/**
 * Coarse shape of a schedule expression, checked at admission: 5 cron fields, a macro, or
 * `@every <duration>`. The cron library checks the rest at reconcile time (condition Ready=False,
 * reason InvalidSchedule, with the parser's message).
 */
export const SCHEDULE_PATTERN =
  "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every ([0-9]+(\\.[0-9]+)?(ms|s|m|h))+|\\S+( +\\S+){4})$";
/** Coarse shape of an IANA time zone name (e.g. Europe/Berlin, UTC); the zone database checks the rest. */
export const TIME_ZONE_PATTERN = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";

/** Message of the rule refusing a Schedule with neither template (kube shows `spec.taskTemplate: Required value: <this>`). */
export const SCHEDULE_TEMPLATE_REQUIRED_MESSAGE =
  "set exactly one of spec.taskTemplate (a Task per run) or spec.workflowTemplate (a Workflow per run)";
/** Message of the rule refusing a Schedule with both templates (kube shows `spec.workflowTemplate: Forbidden: <this>`). */
export const SCHEDULE_TEMPLATE_BOTH_MESSAGE =
  "set exactly one of spec.taskTemplate (a Task per run) or spec.workflowTemplate (a Workflow per run), not both: remove one";

/**
 * CEL rules on `Schedule.spec`: exactly one of taskTemplate / workflowTemplate. Two rules, so that the
 * missing case keeps the field path and reason it had when taskTemplate was required
 * (`spec.taskTemplate`, FieldValueRequired) and the both case points at the field to remove.
 */
export const SCHEDULE_SPEC_RULES = [
  { rule: "has(self.taskTemplate) || has(self.workflowTemplate)", message: SCHEDULE_TEMPLATE_REQUIRED_MESSAGE, reason: "FieldValueRequired", fieldPath: ".taskTemplate" },
  { rule: "!(has(self.taskTemplate) && has(self.workflowTemplate))", message: SCHEDULE_TEMPLATE_BOTH_MESSAGE, reason: "FieldValueForbidden", fieldPath: ".workflowTemplate" },
];

/** Schema of `Schedule.spec`. */
export const ScheduleSpecSchema = Type.Object(
  {
    schedule: Type.String({
      minLength: 1,
      maxLength: 256,
      pattern: SCHEDULE_PATTERN,
      description: "When to run: a 5-field cron expression (minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\"), a macro (@yearly, @monthly, @weekly, @daily, @hourly), or \"@every <duration>\" for fixed intervals, sub-minute allowed (e.g. \"@every 15s\", Celery beat's interval schedule). Required.",
    }),
    timeZone: Type.Optional(
      Type.String({ pattern: TIME_ZONE_PATTERN, maxLength: 64, default: DEFAULT_SCHEDULE.timeZone, description: "IANA time zone the cron expression is read in, e.g. Europe/Berlin. A local time skipped by a DST change runs once at the first valid instant after it; a repeated one runs once, at its first occurrence." }),
    ),
    taskTemplate: Type.Optional(Type.Object(
      {
        metadata: Type.Optional(
          Type.Object(
            {
              labels: Type.Optional(StringMap({ description: "Labels of each created Task." })),
              annotations: Type.Optional(StringMap({ description: "Annotations of each created Task." })),
            },
            { description: "Labels and annotations copied to each Task." },
          ),
        ),
        spec: taskSpecSchema("Spec of each created Task (the same fields as Task.spec)."),
      },
      { description: "The Task created at each run. Set exactly one of taskTemplate or workflowTemplate." },
    )),
    workflowTemplate: Type.Optional(Type.Object(
      {
        metadata: Type.Optional(
          Type.Object(
            {
              labels: Type.Optional(StringMap({ description: "Labels of each created Workflow." })),
              annotations: Type.Optional(StringMap({ description: "Annotations of each created Workflow." })),
            },
            { description: "Labels and annotations copied to each Workflow." },
          ),
        ),
        spec: workflowSpecSchema("Spec of each created Workflow (the same fields as Workflow.spec; it may change here, each run's Workflow keeps the spec it was created with)."),
      },
      { description: "The Workflow created at each run (named like a Task would be, <schedule>-<unix seconds>), instead of a Task. The same policies apply: concurrencyPolicy counts a Workflow as active until its phase is Succeeded, Failed or Cancelled (Replace deletes it, which revokes its unfinished steps), and the history limits count finished Workflows. Set exactly one of taskTemplate or workflowTemplate." },
    )),
    concurrencyPolicy: Type.Optional(
      StringEnum(["Allow", "Forbid", "Replace"] as const, { default: DEFAULT_SCHEDULE.concurrencyPolicy, description: "When a run is due while an earlier Task or Workflow still runs: Allow starts another; Forbid skips this run (recorded in status and as an Event); Replace cancels the running Task or Workflow (deleting it), then starts the new one (CronJob semantics)." }),
    ),
    startingDeadlineSeconds: Type.Optional(
      Type.Integer({ minimum: 0, description: "A run that could not start within this many seconds of its nominal time counts as missed. Unset: no deadline." }),
    ),
    missedRunPolicy: Type.Optional(
      StringEnum(["RunLatest", "Skip", "RunAll"] as const, { default: DEFAULT_SCHEDULE.missedRunPolicy, description: "Runs missed while the operator was down or the Schedule suspended: RunLatest starts only the most recent (CronJob's behaviour), Skip starts none, RunAll starts each, oldest first, up to missedRunsLimit. Every missed run is counted in status and reported as an Event." }),
    ),
    missedRunsLimit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, default: DEFAULT_SCHEDULE.missedRunsLimit, description: "Most missed runs RunAll starts at once; older ones are recorded as missed." }),
    ),
    suspend: Type.Optional(Type.Boolean({ default: false, description: "Stop creating Tasks (or Workflows); running ones are not affected." })),
    successfulTasksHistoryLimit: Type.Optional(
      Type.Integer({ minimum: 0, default: DEFAULT_SCHEDULE.successfulTasksHistoryLimit, description: "Succeeded Tasks kept; older ones are deleted. With a workflowTemplate, Succeeded Workflows are counted (and deleted) the same way; Tasks and Workflows of the Schedule are counted together." }),
    ),
    failedTasksHistoryLimit: Type.Optional(
      Type.Integer({ minimum: 0, default: DEFAULT_SCHEDULE.failedTasksHistoryLimit, description: "Failed, Cancelled or Expired Tasks kept; older ones are deleted. With a workflowTemplate, Failed and Cancelled Workflows are counted (and deleted) the same way; Tasks and Workflows of the Schedule are counted together." }),
    ),
  },
  { description: "Desired state of the schedule: when to run and what to create at each run, a Task (taskTemplate) or a Workflow (workflowTemplate).", "x-kubernetes-validations": SCHEDULE_SPEC_RULES },
);
/** `Schedule.spec`. */
export type ScheduleSpec = Static<typeof ScheduleSpecSchema>;

/** Schema of `Schedule.status`. */
export const ScheduleStatusSchema = Type.Object(
  {
    lastScheduleTime: Type.Optional(Timestamp({ description: "Nominal time of the last run that created a Task (or Workflow)." })),
    nextScheduleTime: Type.Optional(Timestamp({ description: "Nominal time of the next run." })),
    lastSuccessfulTime: Type.Optional(Timestamp({ description: "When the last created Task (or Workflow) succeeded: its status.completionTime." })),
    active: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ description: "Task or Workflow name." }),
            uid: Type.Optional(Type.String({ description: "Its uid." })),
            kind: Type.Optional(StringEnum(["Task", "Workflow"] as const, { description: "Workflow for a Workflow; unset for a Task." })),
          },
          { description: "A Task or Workflow that has not finished." },
        ),
        { description: "Tasks and Workflows created by this Schedule that have not finished (a Workflow until its phase is Succeeded, Failed or Cancelled)." },
      ),
    ),
    missedRuns: Type.Optional(Type.Integer({ minimum: 0, description: "Runs not started (missed during downtime or suspend, skipped by Forbid or startingDeadlineSeconds), counted since creation." })),
    lastMissedTime: Type.Optional(Timestamp({ description: "Nominal time of the last missed run." })),
    conditions: Type.Optional(Conditions("Ready condition (False with reason InvalidSchedule for a bad cron expression or time zone).")),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: "The .metadata.generation last reconciled." })),
  },
  { description: "Observed state of the schedule." },
);
/** `Schedule.status`. */
export type ScheduleStatus = Static<typeof ScheduleStatusSchema>;

/** Printer columns of `kubectl get schedules`. */
export const SCHEDULE_PRINTER_COLUMNS = [
  { name: "Schedule", type: "string", jsonPath: ".spec.schedule", description: "Cron expression or interval." },
  { name: "TimeZone", type: "string", jsonPath: ".spec.timeZone", priority: 1 },
  { name: "Suspend", type: "boolean", jsonPath: ".spec.suspend" },
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Last Schedule", type: "date", jsonPath: ".status.lastScheduleTime" },
  { name: "Next", type: "string", jsonPath: ".status.nextScheduleTime", priority: 1 },
  { name: "Missed", type: "integer", jsonPath: ".status.missedRuns", priority: 1 },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];
