/**
 * The worker control contract (`celeriac inspect`), written once: the control subject, the request,
 * the report every live worker answers with, the worker registry that says which workers should
 * have answered, and the `-o json` output of each `celeriac inspect` command. Pure.
 *
 * - Control subject `celeriac.<ns>.<q>.control.inspect` ({@link controlSubject}): core NATS
 *   request/reply, no stream captures it. A request is `{v: 1, command}`
 *   ({@link ControlRequestSchema}); each live worker of the queue replies once with a
 *   {@link WorkerReportSchema} (the whole report whatever the command: it is a few KB, and one
 *   request serves every view).
 * - Worker registry: key `worker.<token>` ({@link workerRegistryKey}) in the queue's results bucket,
 *   value {@link WorkerRegistryEntrySchema}, written at start and every
 *   {@link REGISTRY_HEARTBEAT_MS}, deleted on graceful close. An entry whose `lastSeen` is within
 *   {@link REGISTRY_STALE_MS} is a live worker ({@link isLiveEntry}): one that did not reply by the
 *   deadline is listed as not answering; older entries are gone workers (crashed or killed) and
 *   are ignored (`inspect ping` counts them).
 */
import { Type, type Static, type TProperties, type TSchema } from "@sinclair/typebox";
import { queueNames } from "./naming.js";
import { TaskProgressSchema } from "./task.js";
import { Timestamp } from "./schema-helpers.js";

/** Version of the control request, report and registry entry; bumped only on an incompatible change. */
export const CONTROL_VERSION = 1;

/** The `celeriac inspect` commands a worker answers (`scheduled` reads the delayed stream instead). */
export const CONTROL_COMMANDS = ["ping", "active", "reserved", "registered", "stats"] as const;
/** A control command. */
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

/** How often a worker rewrites its registry entry, in ms (10 s). */
export const REGISTRY_HEARTBEAT_MS = 10_000;
/** A registry entry whose `lastSeen` is older than this, in ms (30 s: three missed heartbeats), is a gone worker. */
export const REGISTRY_STALE_MS = 30_000;
/** Key prefix of worker registry entries in a queue's results bucket. */
export const WORKER_REGISTRY_PREFIX = "worker.";

/**
 * The control subject of a queue: `celeriac.<ns>.<q>.control.inspect`.
 * @throws Error when the namespace or queue is not a DNS-1123 label
 */
export function controlSubject(namespace: string, queue: string): string {
  queueNames(namespace, queue);
  return `celeriac.${namespace}.${queue}.control.inspect`;
}

/** FNV-1a 32-bit hash of `s`, as 8 hex digits. Pure. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * The registry token of a worker name: the name with every character outside `[A-Za-z0-9_-]`
 * replaced by `_`, plus `-<8 hex digits of its hash>` when anything was replaced (so `host:1` and
 * `host_1` get different tokens). A pod name is kept as it is. Pure.
 * @example workerToken("emails-7d9f-x2") === "emails-7d9f-x2"; workerToken("build-3:4242") === "build-3_4242-<hash>"
 */
export function workerToken(name: string): string {
  const t = name.replace(/[^A-Za-z0-9_-]/g, "_");
  return t === name && t !== "" ? t : `${t}-${fnv1a(name)}`;
}

/** The results-bucket key of a worker's registry entry: `worker.<token>` ({@link workerToken}). Pure. */
export function workerRegistryKey(name: string): string {
  return `${WORKER_REGISTRY_PREFIX}${workerToken(name)}`;
}

/** Schema of a control request. */
export const ControlRequestSchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Request version (1)." }),
    command: Type.Union(CONTROL_COMMANDS.map((c) => Type.Literal(c)), { description: "The view asked for (a v1 worker answers every command with its whole report)." }),
  },
  { description: "A control request on celeriac.<ns>.<q>.control.inspect." },
);
/** A control request. */
export type ControlRequest = Static<typeof ControlRequestSchema>;

/** Schema of one running attempt in a worker's report. */
export const ActiveTaskSchema = Type.Object(
  {
    id: Type.String({ description: "Task id." }),
    task: Type.String({ description: "Task (handler) name." }),
    attempt: Type.Integer({ minimum: 1, description: "Attempt number (the delivery count), from 1." }),
    startedAt: Timestamp({ description: "When this attempt's handler started (RFC 3339)." }),
    progress: Type.Optional(TaskProgressSchema),
  },
  { description: "A task this worker's handler is running now." },
);
/** A running attempt. */
export type ActiveTask = Static<typeof ActiveTaskSchema>;

/** Schema of one delivered but not started message in a worker's report. */
export const ReservedTaskSchema = Type.Object(
  {
    id: Type.String({ description: "Task id (the message's Nats-Msg-Id; `unknown` when absent)." }),
    task: Type.String({ description: "Task name (the Celeriac-Task header; `unknown` when absent)." }),
    attempt: Type.Integer({ minimum: 1, description: "Delivery count of the message, from 1." }),
    receivedAt: Timestamp({ description: "When this worker received the message (RFC 3339)." }),
  },
  {
    description:
      "A message delivered to this worker whose handler has not started: being admitted (its previous record read), waiting for its unique key, or waiting at the alone gate for the attempts beside it to end. Workers fetch only free slots, so there is no prefetch to list.",
  },
);
/** A delivered, not started message. */
export type ReservedTask = Static<typeof ReservedTaskSchema>;

/** Schema of a worker's counters (since it started). */
export const WorkerStatsSchema = Type.Object(
  {
    processed: Type.Integer({ minimum: 0, description: "Deliveries settled (every outcome below, plus expired ones; not those handed back at shutdown)." }),
    succeeded: Type.Integer({ minimum: 0, description: "Attempts that succeeded." }),
    failed: Type.Integer({ minimum: 0, description: "Final handler failures (attempts exhausted, unrecoverable, final timeout), dead-lettered." }),
    retried: Type.Integer({ minimum: 0, description: "Failed attempts with a retry scheduled (timeouts included)." }),
    deadLettered: Type.Integer({ minimum: 0, description: "Deliveries sent to the dead-letter stream: the failed ones plus those refused before a handler ran (invalid message, unknown task, last attempt's worker lost)." }),
    revoked: Type.Integer({ minimum: 0, description: "Deliveries ended Cancelled (revoked before or while running)." }),
    rssBytes: Type.Integer({ minimum: 0, description: "Resident set size of the worker process, in bytes." }),
  },
  { description: "Counters of this worker since it started (the same outcomes as celeriac_tasks_total)." },
);
/** A worker's counters. */
export type WorkerStats = Static<typeof WorkerStatsSchema>;

const identity = {
  name: Type.String({ description: "Worker name: $POD_NAME, else <host>:<pid> (as in a task's status.worker)." }),
  pod: Type.Optional(Type.String({ description: "Pod name ($POD_NAME), when in Kubernetes." })),
  host: Type.String({ description: "Host name of the worker process." }),
  pid: Type.Integer({ minimum: 0, description: "Process id of the worker." }),
  startedAt: Timestamp({ description: "When the worker started (RFC 3339)." }),
  concurrency: Type.Integer({ minimum: 1, description: "Most handlers the worker runs at once." }),
  version: Type.String({ description: "Celeriac version of the worker (package.json)." }),
};

/** Schema of a worker's reply to a control request. */
export const WorkerReportSchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Report version (1)." }),
    ...identity,
    queue: Type.String({ description: "Queue the worker consumes." }),
    namespace: Type.String({ description: "Namespace of the queue." }),
    uptimeSeconds: Type.Number({ minimum: 0, description: "Seconds since the worker started." }),
    active: Type.Array(ActiveTaskSchema, { description: "Tasks running now." }),
    reserved: Type.Array(ReservedTaskSchema, { description: "Messages delivered to this worker and not started." }),
    registered: Type.Array(Type.String(), { description: "Registered task names, sorted." }),
    stats: WorkerStatsSchema,
    truncated: Type.Optional(Type.Boolean({ description: "True when the report was cut to fit the server's max_payload (progress meta dropped, then the active/reserved lists shortened)." })),
  },
  { description: "What a live worker answers on its queue's control subject." },
);
/** A worker's report. */
export type WorkerReport = Static<typeof WorkerReportSchema>;

/** Schema of a worker registry entry (value of `worker.<token>`). */
export const WorkerRegistryEntrySchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Entry version (1)." }),
    ...identity,
    lastSeen: Timestamp({ description: "When the worker last wrote this entry (every 10 s), by its clock (RFC 3339)." }),
  },
  { description: "A worker registry entry in the results bucket: key worker.<token>." },
);
/** A worker registry entry. */
export type WorkerRegistryEntry = Static<typeof WorkerRegistryEntrySchema>;

/**
 * Whether a registry entry is a live worker: `lastSeen` at most {@link REGISTRY_STALE_MS} before
 * `nowMs` (a `lastSeen` in the future, from clock skew, counts as live). Pure.
 */
export function isLiveEntry(e: Pick<WorkerRegistryEntry, "lastSeen">, nowMs: number): boolean {
  const t = Date.parse(e.lastSeen);
  return Number.isFinite(t) && nowMs - t <= REGISTRY_STALE_MS;
}

/** The status of a worker in `celeriac inspect` output. */
export const WORKER_STATUSES = ["ok", "not answering"] as const;

/** Fields of every per-worker item of an inspect output. */
const workerItem = {
  queue: Type.String({ description: "Queue asked." }),
  worker: Type.String({ description: "Worker name." }),
  answered: Type.Boolean({ description: "True when the worker replied before the deadline (--timeout); false for a live registry entry (lastSeen within 30 s) that did not." }),
  status: Type.Union(WORKER_STATUSES.map((s) => Type.Literal(s)), { description: "ok, or not answering (answered false)." }),
};
const item = <P extends TProperties>(props: P, description: string) => Type.Object({ ...workerItem, ...props }, { description });
const list = <T extends TSchema>(of: T, description: string) => Type.Object({ items: Type.Array(of) }, { description });

/** Schema of `celeriac inspect ping -o json`. */
export const InspectPingOutputSchema = list(
  item(
    {
      pod: Type.Optional(Type.String({ description: "Pod name, when in Kubernetes." })),
      host: Type.Optional(Type.String({ description: "Host name (from the reply, else the registry)." })),
      pid: Type.Optional(Type.Integer({ description: "Process id (from the reply, else the registry)." })),
      version: Type.Optional(Type.String({ description: "Celeriac version of the worker." })),
      startedAt: Type.Optional(Timestamp({ description: "When the worker started." })),
      uptimeSeconds: Type.Optional(Type.Number({ minimum: 0, description: "Seconds since the worker started (answered workers)." })),
      concurrency: Type.Optional(Type.Integer({ minimum: 1, description: "Most handlers at once." })),
      active: Type.Optional(Type.Integer({ minimum: 0, description: "Tasks running now (answered workers)." })),
      reserved: Type.Optional(Type.Integer({ minimum: 0, description: "Messages delivered and not started (answered workers)." })),
      lastSeen: Type.Optional(Timestamp({ description: "The registry entry's lastSeen, when the worker has one." })),
      replyMs: Type.Optional(Type.Number({ minimum: 0, description: "Milliseconds from the request to this worker's reply." })),
    },
    "One worker's ping.",
  ),
  "celeriac inspect ping -o json: every worker that replied, and every live registry entry that did not.",
);
/** `celeriac inspect ping -o json`. */
export type InspectPingOutput = Static<typeof InspectPingOutputSchema>;

/** Schema of `celeriac inspect active -o json`. */
export const InspectActiveOutputSchema = list(item({ active: Type.Optional(Type.Array(ActiveTaskSchema, { description: "Tasks running now (absent when the worker did not answer)." })) }, "One worker's running tasks."), "celeriac inspect active -o json: per worker.");
/** `celeriac inspect active -o json`. */
export type InspectActiveOutput = Static<typeof InspectActiveOutputSchema>;

/** Schema of `celeriac inspect reserved -o json`. */
export const InspectReservedOutputSchema = list(item({ reserved: Type.Optional(Type.Array(ReservedTaskSchema, { description: "Messages delivered and not started (absent when the worker did not answer)." })) }, "One worker's delivered, not started messages."), "celeriac inspect reserved -o json: per worker.");
/** `celeriac inspect reserved -o json`. */
export type InspectReservedOutput = Static<typeof InspectReservedOutputSchema>;

/** Schema of `celeriac inspect registered -o json`. */
export const InspectRegisteredOutputSchema = list(item({ registered: Type.Optional(Type.Array(Type.String(), { description: "Registered task names, sorted (absent when the worker did not answer)." })) }, "One worker's task names."), "celeriac inspect registered -o json: per worker.");
/** `celeriac inspect registered -o json`. */
export type InspectRegisteredOutput = Static<typeof InspectRegisteredOutputSchema>;

/** Schema of `celeriac inspect stats -o json`. */
export const InspectStatsOutputSchema = list(
  item(
    {
      uptimeSeconds: Type.Optional(Type.Number({ minimum: 0, description: "Seconds since the worker started." })),
      concurrency: Type.Optional(Type.Integer({ minimum: 1, description: "Most handlers at once." })),
      active: Type.Optional(Type.Integer({ minimum: 0, description: "Tasks running now." })),
      stats: Type.Optional(WorkerStatsSchema),
    },
    "One worker's counters (absent when it did not answer).",
  ),
  "celeriac inspect stats -o json: per worker.",
);
/** `celeriac inspect stats -o json`. */
export type InspectStatsOutput = Static<typeof InspectStatsOutputSchema>;

/** Schema of one delayed task in `celeriac inspect scheduled`. */
export const ScheduledTaskSchema = Type.Object(
  {
    queue: Type.String({ description: "Queue of the task." }),
    id: Type.String({ description: "Task id (`unknown` when the message is not a task envelope)." }),
    task: Type.String({ description: "Task name (`unknown` when the message is not a task envelope)." }),
    eta: Type.Optional(Timestamp({ description: "When it is due (RFC 3339); absent when the message has none (it is moved at once)." })),
    dueInSeconds: Type.Optional(Type.Number({ description: "Seconds from now until eta (negative: overdue, about to be moved)." })),
    seq: Type.Integer({ minimum: 1, description: "Sequence of the message in the queue's delayed stream." }),
    createdAt: Type.Optional(Timestamp({ description: "When the task was first enqueued." })),
  },
  { description: "A task enqueued with a countdown/eta, waiting in the queue's delayed stream until it is due." },
);
/** A delayed task. */
export type ScheduledTask = Static<typeof ScheduledTaskSchema>;

/** Schema of `celeriac inspect scheduled -o json`. */
export const InspectScheduledOutputSchema = list(ScheduledTaskSchema, "celeriac inspect scheduled -o json: delayed tasks, from the queues' delayed streams (not from workers), soonest first, at most --limit per queue.");
/** `celeriac inspect scheduled -o json`. */
export type InspectScheduledOutput = Static<typeof InspectScheduledOutputSchema>;

/** The `-o json` schema of each `celeriac inspect` command. */
export const INSPECT_OUTPUT_SCHEMAS = {
  ping: InspectPingOutputSchema,
  active: InspectActiveOutputSchema,
  reserved: InspectReservedOutputSchema,
  registered: InspectRegisteredOutputSchema,
  stats: InspectStatsOutputSchema,
  scheduled: InspectScheduledOutputSchema,
} as const;
