/**
 * JSON Schemas of what the operations commands print with `-o json` (and `-o yaml`, the same
 * objects): the one owner of those shapes. The TypeScript types the commands build their output
 * with are derived from these schemas (`Static<…>`: cli/commands/tasks.ts `TaskView`,
 * nats/dead-letters.ts `DeadLetter`, `ReplayOutcome`, nats/task-records.ts `TimelineEvent`,
 * `RevokeOutcome`), so code and schema cannot drift; scripts/generate.ts writes each schema of
 * {@link CLI_OUTPUT_SCHEMAS} to `docs/schemas/cli/<command with "-" for " ">.schema.json`
 * (checked by `generate --check`), and test/cli/output-schemas.test.ts validates real output
 * against them with Ajv.
 *
 * The published schemas are closed: every object the CLI builds has `additionalProperties: false`
 * (so a renamed or added field changes the schema with it), except the free JSON a task carries
 * (args, kwargs, result, progress meta). Draft-07 JSON Schema, `$id` under
 * `https://celeriac.io/schemas/cli/`.
 */
import { INSPECT_OUTPUT_SCHEMAS } from "./control.js";
import { QueueListOutputSchema, QueuePauseOutputSchema, QueuePurgeOutputSchema, QueueStatusOutputSchema } from "./queue-ops.js";
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TASK_PHASES } from "./constants.js";
import { TaskRecordSchema, TaskMessageSchema } from "./message.js";
import { TaskErrorSchema, TaskProgressSchema, TaskStatusSchema } from "./task.js";
import { AnyJson, FreeObject, StringEnum, StringMap, Timestamp } from "./schema-helpers.js";

/** Base of every CLI output schema's `$id`. */
export const CLI_SCHEMA_ID_BASE = "https://celeriac.io/schemas/cli/";

/** The file name of command `command`'s schema: `tasks get` → `tasks-get.schema.json`. Pure. */
export function cliSchemaFile(command: string): string {
  return `${command.trim().split(/\s+/).join("-")}.schema.json`;
}

// ---- celeriac tasks ---------------------------------------------------------------------------

/** Where `tasks get` found a task's args and kwargs. */
export const ArgsSourceSchema = StringEnum(["dead-letter", "canvas", "queued-message"] as const, {
  description: "Where args and kwargs were found: dead-letter (the dead-letter stream), canvas (the canvas record's tree; a chain step's args there lack its parent's result), queued-message (the message still queued in the work, delayed or held stream).",
});

/** One event of a task's timeline. */
export const TimelineEventSchema = Type.Object(
  {
    time: Type.String({ description: "When (RFC 3339)." }),
    event: Type.String({ description: "What happened: Queued, Started (attempt n), Revoke requested, Next attempt due, the final phase, Record written (phase), or Enqueued (no worker has recorded it yet)." }),
  },
  { description: "One event of the task's timeline, from the times its record carries." },
);

/** What `celeriac tasks get <id> -o json` prints. */
export const TaskViewSchema = Type.Object(
  {
    id: Type.String({ description: "Task id." }),
    task: Type.String({ description: "Task name." }),
    queue: Type.String({ description: "Queue whose results bucket holds the record." }),
    namespace: Type.String({ description: "Namespace of the queue." }),
    origin: TaskMessageSchema.properties.origin,
    phase: Type.Optional(StringEnum(TASK_PHASES, { description: "Phase of the record; Queued for a queued task no worker has recorded yet." })),
    attempts: Type.Optional(Type.Integer({ minimum: 0, description: "Attempts started so far." })),
    worker: Type.Optional(Type.String({ description: "Worker that ran the last attempt." })),
    args: Type.Optional(Type.Array(AnyJson(), { description: "Positional arguments, when still kept (see argsSource)." })),
    kwargs: Type.Optional(FreeObject({ description: "Keyword arguments, when still kept." })),
    argsSource: Type.Optional(ArgsSourceSchema),
    result: Type.Optional(AnyJson({ description: "The handler's return value (Succeeded, at most 8 KiB; else resultRef)." })),
    resultRef: Type.Optional(TaskStatusSchema.properties.resultRef),
    error: Type.Optional(TaskErrorSchema),
    deadLettered: Type.Optional(Type.Boolean({ description: "True when the message is in the queue's dead-letter stream." })),
    timeline: Type.Array(TimelineEventSchema, { description: "State changes, oldest first." }),
    canvas: Type.Optional(
      Type.Object(
        {
          root: Type.Optional(Type.String({ description: "The canvas id this task is a step of." })),
          parent: Type.Optional(Type.String({ description: "Id of the task or join whose result it received." })),
          step: Type.Optional(Type.Integer({ minimum: 0, description: "Index in its parent composite." })),
          failedStep: Type.Optional(Type.Object({ id: Type.String(), task: Type.String() }, { description: "The earlier step that failed or was revoked (this task never ran)." })),
          children: Type.Optional(Type.Array(Type.String(), { description: "For a canvas id: the ids of its tasks, in tree order." })),
        },
        { description: "The canvas this task is a step of (status.canvas), and, for a canvas id, its steps." },
      ),
    ),
    revokedAt: Type.Optional(Timestamp({ description: "When it was revoked (its revoked.<id> marker)." })),
    retryOf: Type.Optional(Type.String({ description: "The task this one re-runs (celeriac tasks retry, or the dead-lettered task a celeriac dlq replay re-runs)." })),
    replayOf: Type.Optional(
      Type.Object(
        { stream: Type.String({ description: "The dead-letter stream." }), seq: Type.Integer({ minimum: 1, description: "The dead letter's sequence in it." }) },
        { description: "For a replay (celeriac dlq replay): the dead letter it replays." },
      ),
    ),
    eta: Type.Optional(Timestamp({ description: "A delayed task's ETA (countdown/eta), read from its message in the delayed stream: it waits there until then." })),
    progress: Type.Optional(TaskProgressSchema),
    retries: Type.Optional(Type.Array(Type.String(), { description: "The tasks that re-run this one, oldest first." })),
    updatedAt: Type.Optional(Timestamp({ description: "When the record was last written." })),
    record: Type.Optional(TaskRecordSchema),
  },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("tasks get")}`, title: "celeriac tasks get -o json", description: "One task: its record's fields, args from where they are still kept, its timeline and links, and the record as stored (absent for a queued task no worker has recorded yet)." },
);
/** What `tasks get -o json|yaml` prints. */
export type TaskView = Static<typeof TaskViewSchema>;

/** What `celeriac tasks list -o json` prints: `{items}` of records as stored. */
export const TaskListSchema = Type.Object(
  { items: Type.Array(TaskRecordSchema, { description: "Task records of the results buckets, newest first (by last write; across queues by updatedAt): the newest --limit matches." }) },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("tasks list")}`, title: "celeriac tasks list -o json", description: "Task records matching the selection (--state, --task, --since, --limit)." },
);

/** What `celeriac tasks result <id> -o json` prints: the result itself. */
export const TaskResultSchema = Type.Unknown({
  $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("tasks result")}`,
  title: "celeriac tasks result -o json",
  description: "The task's result, any JSON value (null when the handler returned nothing). Printed only when the task Succeeded; otherwise nothing is printed on standard output and the exit code is 1.",
});

/** One outcome of `tasks revoke`. */
export const RevokeOutcomeSchema = Type.Object(
  {
    id: Type.String({ description: "Task id." }),
    before: Type.Optional(Type.String({ description: "The phase before the revoke; absent: no record yet." })),
    action: StringEnum(["cancelled", "aborted", "finished", "marked"] as const, { description: "cancelled: not started, it never runs; aborted: running, its signal is aborted; finished: already ended, nothing done; marked: no record yet, it never starts." }),
  },
  { description: "What revoking one task found and did." },
);

/** What `celeriac tasks revoke <id>... -o json` prints. */
export const TaskRevokeSchema = Type.Object(
  { items: Type.Array(Type.Composite([RevokeOutcomeSchema, Type.Object({ queue: Type.String({ description: "The queue the task is in." }) })]), { description: "One per id found (ids not found are reported on standard error, exit code 1)." }) },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("tasks revoke")}`, title: "celeriac tasks revoke -o json", description: "What each revoke did." },
);

/** What `celeriac tasks retry <id> -o json` prints. */
export const TaskRetrySchema = Type.Object(
  {
    id: Type.String({ description: "The new task's id (<old id>-retry-<n>, or a UUID when that is too long)." }),
    retryOf: Type.String({ description: "The task it re-runs." }),
    queue: Type.String(),
    namespace: Type.String(),
    task: Type.String({ description: "Task name." }),
    createdAt: Timestamp({ description: "When the retry was enqueued." }),
    argsSource: Type.Optional(ArgsSourceSchema),
  },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("tasks retry")}`, title: "celeriac tasks retry -o json", description: "The task enqueued to re-run a Failed, Cancelled or Expired one." },
);
/** What `tasks retry -o json|yaml` prints. */
export type TaskRetryOutput = Static<typeof TaskRetrySchema>;

// ---- celeriac dlq -----------------------------------------------------------------------------

/** One dead letter as `celeriac dlq` lists it. */
export const DeadLetterSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: "Sequence in the dead-letter stream: what dlq show|replay|purge <seq> take." }),
    deadLetteredAt: Timestamp({ description: "When it was dead-lettered (the dead-letter stream's timestamp)." }),
    id: Type.Optional(Type.String({ description: "The task id from the body, when the body is a JSON object with a string id." })),
    task: Type.Optional(Type.String({ description: "The task name: the Celeriac-Task header, else the body's task." })),
    reason: Type.Optional(Type.String({ description: "Celeriac-Dead-Reason: MaxAttemptsExceeded, Unrecoverable, UnknownTask, InvalidMessage, TimedOut." })),
    attempts: Type.Optional(Type.Integer({ minimum: 0, description: "Celeriac-Dead-Attempts." })),
    error: Type.Optional(Type.String({ description: "Celeriac-Dead-Detail: the error or validation message." })),
    originalStream: Type.Optional(Type.String({ description: "Celeriac-Dead-Stream: the stream the original message was in." })),
    originalSeq: Type.Optional(Type.Integer({ minimum: 0, description: "Celeriac-Dead-Stream-Seq: its sequence there." })),
    replay: Type.Optional(
      Type.Object(
        { id: Type.String({ description: "The replay's task id (<id>-r<seq>)." }), phase: Type.Optional(Type.String({ description: "The phase of the replay's record; absent: no record yet." })) },
        { description: "Set when this dead letter was replayed and its replay has a record." },
      ),
    ),
  },
  { description: "One dead letter." },
);

/** What `celeriac dlq list -o json` prints. */
export const DlqListSchema = Type.Object(
  { items: Type.Array(DeadLetterSchema, { description: "Dead letters in stream order." }) },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("dlq list")}`, title: "celeriac dlq list -o json", description: "The queue's dead letters matching the selection." },
);

/** What `celeriac dlq show <seq> -o json` prints. */
export const DlqShowSchema = Type.Composite(
  [
    DeadLetterSchema,
    Type.Object({
      headers: StringMap({ description: "Every header of the dead letter (first value of each)." }),
      body: Type.Optional(Type.String({ description: "The original message body as text, when it is UTF-8." })),
      bodyBase64: Type.String({ description: "The original message body, byte for byte, base64." }),
      bytes: Type.Integer({ minimum: 0, description: "Size of the body, in bytes." }),
    }),
  ],
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("dlq show")}`, title: "celeriac dlq show -o json", description: "One dead letter with its headers and original bytes." },
);
/** What `dlq show -o json|yaml` prints. */
export type DlqShowOutput = Static<typeof DlqShowSchema>;

/** What happened to one dead letter in a replay. */
export const ReplayOutcomeSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: "The dead letter's sequence." }),
    id: Type.Optional(Type.String({ description: "The dead letter's task id, when it had one." })),
    replayId: Type.String({ description: "The replay's task id (<id>-r<seq>)." }),
    queue: Type.String({ description: "The queue the replay went to." }),
    outcome: StringEnum(["Replayed", "Skipped"] as const, { description: "Replayed (published, confirmed) or Skipped (nothing published; message says why)." }),
    removed: Type.Boolean({ description: "True when the dead letter was deleted after the replay's publish was confirmed (--remove)." }),
    message: Type.Optional(Type.String({ description: "Why it was skipped, or why it was not removed." })),
  },
  { description: "What happened to one dead letter." },
);

/** What `celeriac dlq replay -o json` prints. */
export const DlqReplaySchema = Type.Object(
  { items: Type.Array(ReplayOutcomeSchema, { description: "One per dead letter selected, in stream order." }) },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("dlq replay")}`, title: "celeriac dlq replay -o json", description: "What each replay did." },
);

/** What `celeriac dlq purge -o json` prints. */
export const DlqPurgeSchema = Type.Object(
  {
    deleted: Type.Integer({ minimum: 0, description: "How many dead letters were deleted." }),
    seqs: Type.Array(Type.Integer({ minimum: 1 }), { description: "The sequences selected for deletion." }),
  },
  { $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile("dlq purge")}`, title: "celeriac dlq purge -o json", description: "What a purge deleted (deleted 0 and no seqs when nothing matched)." },
);
/** What `dlq purge -o json|yaml` prints. */
export type DlqPurgeOutput = Static<typeof DlqPurgeSchema>;

// ---- the map ----------------------------------------------------------------------------------

/**
 * Turns a TypeBox schema into the published JSON Schema: a deep copy (TypeBox's symbol keys kept)
 * with `additionalProperties: false` on every object with `properties` that does not preserve
 * unknown fields, the Kubernetes-only keywords dropped (`x-kubernetes-*`, and `nullable` on an
 * untyped node, which admits any value anyway), and `$schema` (draft-07) at the root. Pure.
 */
export function publishedSchema<T extends TSchema>(schema: T): T {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== "object") return node;
    const src = node as Record<string | symbol, unknown>;
    const out: Record<string | symbol, unknown> = {};
    for (const k of Object.getOwnPropertySymbols(src)) out[k] = src[k];
    for (const [k, v] of Object.entries(src)) {
      if (k.startsWith("x-kubernetes-")) continue;
      if (k === "nullable" && src.type === undefined) continue;
      out[k] = k === "enum" || k === "default" || k === "const" ? v : walk(v);
    }
    if (src.properties && src.additionalProperties === undefined && !src["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
    return out;
  };
  return { $schema: "http://json-schema.org/draft-07/schema#", ...(walk(schema) as T) };
}

/**
 * The `-o json` schema of every operations command, keyed by command (`"tasks get"`, …), as
 * published (see {@link publishedSchema}). Each has an `$id` of `CLI_SCHEMA_ID_BASE` +
 * {@link cliSchemaFile}.
 */
export const CLI_OUTPUT_SCHEMAS: Record<string, TSchema> = {
  "tasks get": publishedSchema(TaskViewSchema),
  "tasks list": publishedSchema(TaskListSchema),
  "tasks result": publishedSchema(TaskResultSchema),
  "tasks revoke": publishedSchema(TaskRevokeSchema),
  "tasks retry": publishedSchema(TaskRetrySchema),
  "dlq list": publishedSchema(DlqListSchema),
  "dlq show": publishedSchema(DlqShowSchema),
  "dlq replay": publishedSchema(DlqReplaySchema),
  "dlq purge": publishedSchema(DlqPurgeSchema),
  "queue list": publishedSchema(identified("queue list", QueueListOutputSchema)),
  "queue status": publishedSchema(identified("queue status", QueueStatusOutputSchema)),
  "queue purge": publishedSchema(identified("queue purge", QueuePurgeOutputSchema)),
  "queue pause": publishedSchema(identified("queue pause", QueuePauseOutputSchema)),
  "queue resume": publishedSchema(identified("queue resume", QueuePauseOutputSchema)),
  ...Object.fromEntries(Object.entries(INSPECT_OUTPUT_SCHEMAS).map(([c, schema]) => [`inspect ${c}`, publishedSchema(identified(`inspect ${c}`, schema))])),
};

/** `schema` with the `$id` and title of `command`'s published schema. */
function identified(command: string, schema: TSchema): TSchema {
  return { ...schema, $id: `${CLI_SCHEMA_ID_BASE}${cliSchemaFile(command)}`, title: `celeriac ${command} -o json` };
}
