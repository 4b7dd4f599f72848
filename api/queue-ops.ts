/**
 * The shapes of `celeriac queue` (docs/cli.md): the `queue.paused` record a pause writes to a
 * queue's results bucket (key `QUEUE_PAUSED_KEY`, api/naming.ts), and the `-o json` / `-o yaml`
 * output of `queue list`, `queue status` and `queue purge`, as TypeBox schemas (JSON Schema), so
 * scripts and tests validate what the CLI prints. Pure.
 */
import { Type, type Static } from "@sinclair/typebox";
import { QUEUE_NAME_PATTERN } from "./task.js";
import { validateValue, type JSONSchemaProps } from "./validation.js";
import { parseVersionedJson } from "./versioned-json.js";

/** Version of the `queue.paused` value; bumped only on an incompatible change. */
export const QUEUE_PAUSED_VERSION = 1;

/** Schema of the `queue.paused` value, version 1 (design-ops decision 2). */
export const QueuePausedSchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Record version (1)." }),
    paused: Type.Literal(true, { description: "Always true: the key's presence is the pause; `queue resume` deletes it." }),
    at: Type.String({ description: "When the queue was paused, RFC 3339 (UTC)." }),
    by: Type.Optional(Type.String({ description: "Who paused it: `user@host` of the shell that ran `celeriac queue pause`." })),
    reason: Type.Optional(Type.String({ maxLength: 1024, description: "Why, as given with `--reason`." })),
  },
  { description: "A queue's pause (results-bucket key queue.paused), version 1. Unknown fields are ignored." },
);
/** A queue's pause record. */
export type QueuePaused = Static<typeof QueuePausedSchema>;

/**
 * Parses a `queue.paused` value. Never throws.
 * @returns the record, or `{error}` naming the field when the value is not JSON, of another version,
 *   or breaks the schema
 */
export function parseQueuePaused(data: Uint8Array | string): { paused: QueuePaused } | { error: string } {
  const parsed = parseVersionedJson(data, QUEUE_PAUSED_VERSION);
  if ("error" in parsed) return parsed;
  const causes = validateValue(QueuePausedSchema as unknown as JSONSchemaProps, parsed.value);
  if (causes.length > 0) return { error: causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join("; ") };
  return { paused: parsed.value as QueuePaused };
}

const count = (description: string) => Type.Integer({ minimum: 0, description });

/**
 * One queue as `queue list -o json` and `queue status -o json` print it. Counts are messages (one
 * per task); times RFC 3339; rates per second; ages in seconds.
 */
export const QueueStatusOutputSchema = Type.Object(
  {
    queue: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "The queue's name." }),
    namespace: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "The queue's namespace." }),
    backlog: count("Tasks queued and not yet delivered to any worker (the `workers` consumer's num_pending): what `queue purge` removes."),
    inFlight: count("Tasks delivered to a worker and not yet settled (num_ack_pending): running, or waiting for a retry's backoff."),
    delayed: count("Tasks in the delay stream (countdown/eta not reached yet, or due and about to move)."),
    dead: count("Dead letters (messages in the dead-letter stream; see `celeriac dlq list`)."),
    held: Type.Optional(count("Flow-controlled queues only: tasks in the held stream, waiting for the operator's dispatcher to release them.")),
    paused: Type.Boolean({ description: "True while the queue is paused (`celeriac queue pause`): workers pull nothing." }),
    pausedAt: Type.Optional(Type.String({ description: "When it was paused, RFC 3339 (only when paused)." })),
    pausedBy: Type.Optional(Type.String({ description: "Who paused it (only when paused and recorded)." })),
    pausedReason: Type.Optional(Type.String({ description: "The `--reason` of the pause (only when given)." })),
    ratePerSecond: Type.Optional(Type.Number({
      minimum: 0,
      description:
        "Tasks settled per second over the sample window (`--sample`, default 1 s; status only, not list): messages removed from the work stream "
        + "(acked or terminated by a worker: done, failed for good, dead-lettered, revoked) = Δ last sequence − Δ message count of the stream.",
    })),
    sampleSeconds: Type.Optional(Type.Number({ minimum: 0, description: "The window ratePerSecond was measured over, seconds." })),
    oldestTaskAgeSeconds: Type.Optional(Type.Number({
      minimum: 0,
      description: "Age of the oldest queued (not yet delivered) task, seconds, from its stream timestamp; absent when nothing is queued.",
    })),
    workers: Type.Optional(count(
      "Live workers in the worker registry (`worker.*` keys of the results bucket seen within 30 s); absent when the bucket has no registry keys (workers that do not register).",
    )),
  },
  { description: "One queue's state, as `celeriac queue status -o json` prints it (and each item of `queue list -o json`)." },
);
/** One queue's state (`queue status -o json`). */
export type QueueStatusOutput = Static<typeof QueueStatusOutputSchema>;

/** `queue list -o json`: `{"items": [...]}`, one item per queue of the namespace, sorted by name. */
export const QueueListOutputSchema = Type.Object(
  { items: Type.Array(QueueStatusOutputSchema) },
  { description: "The queues of a namespace, as `celeriac queue list -o json` prints them (no ratePerSecond: list does not sample)." },
);
/** `queue list -o json`. */
export type QueueListOutput = Static<typeof QueueListOutputSchema>;

/** `queue purge -o json`: what a purge did. */
export const QueuePurgeOutputSchema = Type.Object(
  {
    queue: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "The queue's name." }),
    namespace: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "The queue's namespace." }),
    removed: count("Tasks removed (their messages deleted, their records Cancelled with reason Purged)."),
    removedDelayed: count("Of `removed`, those from the delay stream (`--delayed`)."),
    removedHeld: count("Of `removed`, those from the held stream (flow-controlled queues)."),
    started: count("Tasks that were queued when the purge began but a worker took meanwhile: left running, not removed."),
    ids: Type.Array(Type.String(), { description: "The ids of the removed tasks (at most the first 1000)." }),
  },
  { description: "The result of `celeriac queue purge -o json`." },
);
/** `queue purge -o json`. */
export type QueuePurgeOutput = Static<typeof QueuePurgeOutputSchema>;

/** `queue pause -o json` and `queue resume -o json`: the state after the command. */
export const QueuePauseOutputSchema = Type.Object(
  {
    queue: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "The queue's name." }),
    namespace: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "The queue's namespace." }),
    paused: Type.Boolean({ description: "True when the queue is paused after the command." }),
    changed: Type.Boolean({ description: "False when it already was in that state (pausing a paused queue, resuming a running one): nothing was written." }),
    pausedAt: Type.Optional(Type.String({ description: "When the pause began, RFC 3339 (pause: the current pause; resume: the pause lifted)." })),
    pausedBy: Type.Optional(Type.String({ description: "Who paused it." })),
    pausedReason: Type.Optional(Type.String({ description: "The pause's reason." })),
  },
  { description: "The result of `celeriac queue pause|resume -o json`." },
);
/** `queue pause|resume -o json`. */
export type QueuePauseOutput = Static<typeof QueuePauseOutputSchema>;

/** Version of the `queue.purged` value; bumped only on an incompatible change. */
export const QUEUE_PURGED_VERSION = 1;

/**
 * The `queue.purged` value (key `QUEUE_PURGED_KEY`, api/naming.ts), version 1: the last purge that
 * removed tasks. `at` is RFC 3339 (UTC), written after the removed tasks were recorded Cancelled;
 * `removed` the number of tasks it removed. Unknown fields are ignored.
 */
export interface QueuePurged {
  v: 1;
  at: string;
  removed: number;
}

/**
 * Parses a `queue.purged` value. Never throws.
 * @returns the notice, or `{error}` when the value is not JSON, of another version, or has no valid `at`
 */
export function parseQueuePurged(data: Uint8Array | string): { purged: QueuePurged } | { error: string } {
  const parsed = parseVersionedJson(data, QUEUE_PURGED_VERSION);
  if ("error" in parsed) return parsed;
  const v = (parsed.value ?? {}) as Partial<QueuePurged>;
  if (typeof v !== "object" || typeof v.at !== "string" || Number.isNaN(Date.parse(v.at))) return { error: "at: must be an RFC 3339 time" };
  return { purged: { v: 1, at: v.at, removed: typeof v.removed === "number" ? v.removed : 0 } };
}

/** The error recorded on a task removed by `queue purge` (phase Cancelled). */
export const PURGED_ERROR = Object.freeze({ type: "CancelledError", message: "purged from the queue before it started (celeriac queue purge)" });
