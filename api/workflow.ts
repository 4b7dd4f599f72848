/**
 * The `Workflow` resource (celeriac.io/v1alpha1): a declarative DAG of tasks — Argo Workflows' `dag`
 * template with no pod per step — run by the Queues' warm workers. Spec and status schemas, the CEL
 * rules checked at `kubectl apply`, printer columns, and the naming rules every process shares: the
 * task id of each step's task and the results-bucket key a worker writes when a step's task ends.
 * Pure; see docs/workflows.md.
 *
 * Task ids: step `s` of the Workflow with uid `u` runs as task `u_s`; a `forEach` step's item `i` as
 * `u_s_i`; a step re-run by retry-from-failed for the `n`-th time (n ≥ 1) as `u_s_gn` (items
 * `u_s_gn_i`); the hooks as `u_onFailure` and `u_onExit` (same suffixes). Step names are DNS-1123
 * labels, which never hold `_`, so no two steps' ids can collide, and the same object (same uid)
 * always derives the same ids: that makes publishing idempotent (`Nats-Msg-Id` = the task id).
 */
import { Type, type Static } from "@sinclair/typebox";
import { QUEUE_NAME_PATTERN, TASK_NAME_PATTERN } from "./naming.js";
import { retryPolicySchema } from "./policies.js";
import { TaskErrorSchema } from "./task.js";
import { AnyJson, Conditions, FreeObject, StringEnum, Timestamp } from "./schema-helpers.js";
import { MAX_TIMEOUT_SECONDS } from "./policies.js";

/** Pattern of a step name: a DNS-1123 label (at most 63 characters; no `_`, which task ids use as separator). */
export const STEP_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** Most steps of one Workflow (`spec.steps`). A fan-out of more tasks is one `forEach` step. */
export const MAX_WORKFLOW_STEPS = 200;
/** Most dependencies of one step. */
export const MAX_STEP_DEPENDENCIES = 32;
/** Most tasks one `forEach` step fans out to. */
export const MAX_FOR_EACH_ITEMS = 10_000;
/** How many task ids a step's status lists (the rest are counted): a fan-out keeps its object small. */
export const STEP_TASK_IDS_SHOWN = 5;
/** Largest final result kept inline in `status.result`, bytes (8 KiB, as a Task's); larger ones are referenced by `status.resultRef`. */
export const MAX_WORKFLOW_INLINE_RESULT_BYTES = 8 * 1024;
/** The names of the two hooks, as they appear in task ids and status. */
export const WORKFLOW_HOOKS = ["onFailure", "onExit"] as const;
/** A hook name. */
export type WorkflowHookName = (typeof WORKFLOW_HOOKS)[number];

/** Workflow phases (`status.phase`). Terminal: Succeeded, Failed, Cancelled. */
export const WORKFLOW_PHASES = ["Pending", "Running", "Succeeded", "Failed", "Cancelled"] as const;
/** A Workflow phase. */
export type WorkflowPhase = (typeof WORKFLOW_PHASES)[number];
/** Step phases (`status.steps[].phase`): Cancelled also covers a step that never ran because an earlier one failed. */
export const STEP_PHASES = ["Pending", "Running", "Succeeded", "Failed", "Cancelled"] as const;
/** A step phase. */
export type StepPhase = (typeof STEP_PHASES)[number];

/** Message of the rule that makes a Workflow's spec immutable. */
export const WORKFLOW_SPEC_IMMUTABLE_MESSAGE = "spec is immutable after creation: delete and recreate the Workflow (a Schedule with a workflowTemplate creates a new one per run)";

/** The fields a step and a hook share: what to run and how. */
function runFields() {
  return {
    task: Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: TASK_NAME_PATTERN,
      description: "Registered handler name, as passed to defineTask() in the worker's tasks module, e.g. reports.generate. Required.",
    }),
    args: Type.Optional(
      Type.Array(AnyJson({ description: "Any JSON value, null included." }), {
        description: "Positional arguments (JSON array). A forEach step's item is prepended: the handler gets (item, ...args).",
      }),
    ),
    kwargs: Type.Optional(
      FreeObject({
        description:
          "Keyword arguments (JSON object). The result of each dependency (dependsOn) is added under the dependency's step name, e.g. a step that depends on `fetch` gets kwargs.fetch; so a key here may not be the name of a dependency. A forEach step's source (forEach.fromStep) is not added: each task gets its item instead.",
      }),
    ),
    queue: Type.Optional(
      Type.String({ minLength: 1, maxLength: 63, pattern: QUEUE_NAME_PATTERN, description: "Queue (same namespace) that runs this step. Default: spec.queue." }),
    ),
    retry: Type.Optional(retryPolicySchema(false)),
    timeoutSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS, description: "Handler time limit in seconds, per attempt. Default: the Queue's timeoutSeconds." }),
    ),
    priority: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 9, description: "Priority 0-9 (9 first) on a Queue with flow control priorities; as a Task's spec.priority." }),
    ),
  };
}

/** Per-step CEL rules (on `spec.steps[i]`), each naming the step. */
export const WORKFLOW_STEP_RULES = [
  {
    rule: "!has(self.dependsOn) || !(self.name in self.dependsOn)",
    messageExpression: "'step \"' + self.name + '\" depends on itself: remove it from its own dependsOn'",
  },
  {
    rule: "!has(self.forEach) || !has(self.forEach.fromStep) || (has(self.dependsOn) && self.forEach.fromStep in self.dependsOn)",
    messageExpression: "'step \"' + self.name + '\": forEach.fromStep \"' + self.forEach.fromStep + '\" is not one of its dependencies: add it to dependsOn'",
  },
  {
    rule: "!has(self.kwargs) || !has(self.dependsOn) || !self.dependsOn.exists(d, d in self.kwargs)",
    messageExpression:
      "'step \"' + self.name + '\": kwargs.' + self.dependsOn.filter(d, d in self.kwargs)[0] + ' is where the result of dependency \"' + self.dependsOn.filter(d, d in self.kwargs)[0] + '\" goes: rename the kwarg'",
  },
];

/** CEL rules on `spec.steps` (the list), each naming the step at fault. Cycles longer than two steps are found by the operator and `celeriac validate` (CEL has no recursion). */
export const WORKFLOW_STEPS_RULES = [
  {
    rule: "self.all(s, self.exists_one(t, t.name == s.name))",
    messageExpression: "'step name \"' + self.filter(s, !self.exists_one(t, t.name == s.name))[0].name + '\" is used more than once: step names must be unique'",
  },
  {
    rule: "self.all(s, !has(s.dependsOn) || s.dependsOn.all(d, self.exists(t, t.name == d)))",
    messageExpression:
      "self.filter(s, has(s.dependsOn) && s.dependsOn.exists(d, !self.exists(t, t.name == d))).map(s, 'step \"' + s.name + '\" dependsOn \"' + s.dependsOn.filter(d, !self.exists(t, t.name == d))[0] + '\", which is not a step of this Workflow')[0]",
  },
  {
    rule: "self.all(a, !has(a.dependsOn) || a.dependsOn.all(b, !self.exists(t, t.name == b && has(t.dependsOn) && a.name in t.dependsOn)))",
    messageExpression:
      "self.filter(a, has(a.dependsOn) && a.dependsOn.exists(b, self.exists(t, t.name == b && has(t.dependsOn) && a.name in t.dependsOn))).map(a, 'steps \"' + a.name + '\" and \"' + a.dependsOn.filter(b, self.exists(t, t.name == b && has(t.dependsOn) && a.name in t.dependsOn))[0] + '\" depend on each other (a cycle): a Workflow is a DAG')[0]",
  },
];

/** Schema of one step (`spec.steps[i]`). */
export const WorkflowStepSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63, pattern: STEP_NAME_PATTERN, description: "Step name, unique in the Workflow: a DNS-1123 label (lowercase letters, digits and '-'). Dependents name it in dependsOn and receive its result as kwargs.<name>. Required." }),
    ...runFields(),
    dependsOn: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 63, pattern: STEP_NAME_PATTERN }), {
        maxItems: MAX_STEP_DEPENDENCIES,
        description: "Steps that must succeed before this one starts. Their results are passed in kwargs under their names. Unset or empty: starts at once.",
        "x-kubernetes-list-type": "set",
      }),
    ),
    forEach: Type.Optional(
      Type.Object(
        {
          items: Type.Optional(Type.Array(AnyJson({ description: "One item, any JSON." }), { maxItems: MAX_FOR_EACH_ITEMS, description: "A literal JSON list to fan out over." })),
          fromStep: Type.Optional(
            Type.String({ minLength: 1, maxLength: 63, pattern: STEP_NAME_PATTERN, description: "A dependency (in dependsOn) whose result is the JSON list to fan out over; a result that is not a list fails this step." }),
          ),
        },
        {
          description: `Fan out: one task per item (at most ${MAX_FOR_EACH_ITEMS}), each called (item, ...args); the step succeeds when every task did, and its result is the list of their results, in item order. Give items or fromStep, not both. An empty list succeeds at once with [].`,
          "x-kubernetes-validations": [{ rule: "has(self.items) != has(self.fromStep)", message: "forEach needs exactly one of items (a literal list) or fromStep (a dependency whose result is a list)" }],
        },
      ),
    ),
  },
  { description: "One step of the DAG: a task, when it may start (dependsOn), and an optional fan-out (forEach).", "x-kubernetes-validations": WORKFLOW_STEP_RULES },
);
/** `spec.steps[i]`. */
export type WorkflowStep = Static<typeof WorkflowStepSchema>;

/** Schema of a hook (`spec.onFailure`, `spec.onExit`). */
export const WorkflowHookSchema = Type.Object(runFields(), {
  description: "A task run once when the Workflow ends, with kwargs.workflow = {name, namespace, phase, failedSteps: [{name, error}]} added to its kwargs.",
});
/** `spec.onFailure` / `spec.onExit`. */
export type WorkflowHook = Static<typeof WorkflowHookSchema>;

/**
 * Fields of a Workflow spec, shared with a Schedule's `workflowTemplate.spec`.
 * @param description the spec node's description
 * @param extraRules more `x-kubernetes-validations` on the spec node (Workflow.spec adds immutability)
 */
export function workflowSpecSchema(description: string, extraRules: ReadonlyArray<{ rule: string; message: string }> = []) {
  return Type.Object(
    {
      queue: Type.String({
        minLength: 1,
        maxLength: 63,
        pattern: QUEUE_NAME_PATTERN,
        description: "Queue (same namespace) of every step that names none. Required. Steps wait (phase Pending) until their Queue exists.",
      }),
      steps: Type.Array(WorkflowStepSchema, {
        minItems: 1,
        maxItems: MAX_WORKFLOW_STEPS,
        description: `The DAG's steps (1-${MAX_WORKFLOW_STEPS}), in any order: a step starts when every step it dependsOn has succeeded. When a step fails (after its retries), no new step starts, running ones finish, and the steps that did not run end Cancelled.`,
        "x-kubernetes-validations": WORKFLOW_STEPS_RULES,
      }),
      onFailure: Type.Optional(WorkflowHookSchema),
      onExit: Type.Optional(WorkflowHookSchema),
      parallelism: Type.Optional(
        Type.Integer({ minimum: 1, description: "Most tasks of this Workflow running at once (forEach items count one each). Unset: no limit but the Queues' own." }),
      ),
      ttlSecondsAfterFinished: Type.Optional(
        Type.Integer({ minimum: 0, description: "Delete the Workflow this many seconds after it finished (Job semantics). Unset: keep it." }),
      ),
    },
    { description, ...(extraRules.length > 0 ? { "x-kubernetes-validations": [...extraRules] } : {}) },
  );
}

/** Schema of `Workflow.spec`. */
export const WorkflowSpecSchema = workflowSpecSchema(
  "The DAG to run: steps with dependencies and fan-outs, hooks (onFailure runs first when a step failed, then onExit always), parallelism and clean-up. Immutable after creation: delete and recreate the Workflow to change it; retry a failed one with `celeriac workflow retry <name>` (or the celeriac.io/retry annotation).",
  [{ rule: "self == oldSelf", message: WORKFLOW_SPEC_IMMUTABLE_MESSAGE }],
);
/** `Workflow.spec`. */
export type WorkflowSpec = Static<typeof WorkflowSpecSchema>;

/** Schema of a step's (or hook's) status. */
export const StepStatusSchema = Type.Object(
  {
    name: Type.String({ description: "Step name (onFailure / onExit for the hooks)." }),
    phase: StringEnum(STEP_PHASES, { description: "Pending (waiting for dependencies, its Queue or parallelism), Running (tasks published), Succeeded, Failed, or Cancelled (revoked, or never run because an earlier step failed)." }),
    tasks: Type.Object(
      {
        total: Type.Integer({ minimum: 0, description: "Tasks of the step (1, or the forEach items)." }),
        succeeded: Type.Integer({ minimum: 0, description: "Succeeded tasks." }),
        failed: Type.Integer({ minimum: 0, description: "Failed, Expired or Cancelled tasks." }),
        running: Type.Integer({ minimum: 0, description: "Published and not finished." }),
      },
      { description: "Counts of the step's tasks." },
    ),
    taskIds: Type.Optional(Type.Array(Type.String(), { maxItems: STEP_TASK_IDS_SHOWN, description: `The first ${STEP_TASK_IDS_SHOWN} task ids (all of them for a plain step): look them up with celeriac or the results bucket.` })),
    attempts: Type.Optional(Type.Integer({ minimum: 0, description: "Attempts started, summed over the step's finished tasks." })),
    generation: Type.Optional(Type.Integer({ minimum: 0, description: "How many times retry-from-failed re-ran this step (its task ids carry _g<n>)." })),
    startTime: Type.Optional(Timestamp({ description: "When the step's first task started (when it was published, until a worker reports)." })),
    completionTime: Type.Optional(Timestamp({ description: "When the step finished." })),
    message: Type.Optional(Type.String({ description: "Why the step is Pending, Failed or Cancelled." })),
    error: Type.Optional(
      Type.Object({ ...TaskErrorSchema.properties, taskId: Type.String({ description: "The task whose error this is." }) }, { description: "The first error among the step's tasks." }),
    ),
  },
  { description: "Status of one step." },
);
/** `status.steps[i]`. */
export type StepStatus = Static<typeof StepStatusSchema>;

/** Schema of `Workflow.status`. */
export const WorkflowStatusSchema = Type.Object(
  {
    phase: Type.Optional(StringEnum(WORKFLOW_PHASES, { description: "Pending, Running, Succeeded, Failed (a step or a hook failed, or the spec is invalid) or Cancelled (a step's task was revoked)." })),
    progress: Type.Optional(Type.String({ description: "Finished steps / steps, e.g. 7/12 (kubectl's PROGRESS column)." })),
    message: Type.Optional(Type.String({ description: "Why the Workflow failed or waits, naming the step." })),
    startTime: Type.Optional(Timestamp({ description: "When the first step was published." })),
    completionTime: Type.Optional(Timestamp({ description: "When the Workflow finished (hooks included)." })),
    duration: Type.Optional(Type.String({ description: "completionTime − startTime as a Go-style duration (e.g. 1.5s), kubectl's DURATION column." })),
    steps: Type.Optional(Type.Array(StepStatusSchema, { description: "Per step, in spec order.", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })),
    onFailure: Type.Optional(StepStatusSchema),
    onExit: Type.Optional(StepStatusSchema),
    result: Type.Optional(AnyJson({ description: "Result of the final step (the one step no other depends on; with several, an object of their results by name), when at most 8 KiB of JSON; else see resultRef." })),
    resultRef: Type.Optional(
      Type.Object(
        {
          queue: Type.String({ description: "Queue whose results bucket holds it." }),
          taskId: Type.String({ description: "Key in the results bucket: the final step's task id, or wfresult.<uid> (a JSON object {v: 1, result}) for a result combined from several tasks (a fan-out, several final steps)." }),
          sizeBytes: Type.Integer({ minimum: 0, description: "Size of the encoded result, in bytes." }),
        },
        { description: "Where a final result too large for status is kept (the results bucket, until its TTL)." },
      ),
    ),
    retries: Type.Optional(Type.Integer({ minimum: 0, description: "Retries from the failed step done so far." })),
    retryRequest: Type.Optional(Type.String({ description: "The celeriac.io/retry annotation value last acted on." })),
    conditions: Type.Optional(Conditions("Succeeded and Failed conditions (metav1.Condition): True once the Workflow ended that way, so `kubectl wait --for=condition=Succeeded` (or Failed) works.")),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: "The .metadata.generation the operator last acted on." })),
  },
  { description: "Observed state of the Workflow, written by the operator." },
);
/** `Workflow.status`. */
export type WorkflowStatus = Static<typeof WorkflowStatusSchema>;

/** Printer columns of `kubectl get workflows`. */
export const WORKFLOW_PRINTER_COLUMNS = [
  { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Workflow phase." },
  { name: "Progress", type: "string", jsonPath: ".status.progress", description: "Finished steps / steps." },
  { name: "Duration", type: "string", jsonPath: ".status.duration", description: "First step's publish to completion." },
  { name: "Queue", type: "string", jsonPath: ".spec.queue", priority: 1, description: "Default queue of the steps." },
  { name: "Message", type: "string", jsonPath: ".status.message", priority: 1, description: "Why it failed or waits." },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

/**
 * The task id of a step's task (module header).
 * @param uid the Workflow's metadata.uid
 * @param step a step name, or a hook name (onFailure, onExit)
 * @param generation retry-from-failed generation of the step (0: first run)
 * @param item the forEach item index, for a fan-out
 * @returns e.g. `3f2a…_fetch`, `3f2a…_fetch_g1_17`
 */
export function workflowTaskId(uid: string, step: string, generation = 0, item?: number): string {
  return `${uid}_${step}${generation > 0 ? `_g${generation}` : ""}${item !== undefined ? `_${item}` : ""}`;
}

/** Results-bucket key (in spec.queue's bucket) of a final result combined from several tasks and too large for status: `{v: 1, result}`. */
export const workflowResultKey = (uid: string): string => `wfresult.${uid}`;

/** Results-bucket key prefix of step-end notices: `wf.<workflow uid>.<task id>`. */
export const WORKFLOW_EVENT_PREFIX = "wf.";
/** Results-bucket key of the notice a worker writes when task `taskId` of Workflow `uid` ends. */
export const workflowEventKey = (uid: string, taskId: string): string => `${WORKFLOW_EVENT_PREFIX}${uid}.${taskId}`;

/**
 * A step-end notice (`wf.<uid>.<task id>` in the step's queue's results bucket), written by the
 * worker's settle step (CanvasRuntime.afterFinal) after the task's final record: the operator
 * watches `wf.>` to move the Workflow on at once, without polling records. The record stays the
 * truth (the result is read from it); a missed notice is caught up by the resync.
 */
export interface WorkflowStepEvent {
  v: 1;
  /** The task id. */
  id: string;
  /** Its final phase. */
  phase: "Succeeded" | "Failed" | "Cancelled" | "Expired";
  attempts?: number;
  startTime?: string;
  completionTime?: string;
  error?: { type: string; message: string };
}
