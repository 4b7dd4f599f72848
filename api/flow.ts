/**
 * Flow control, the contract: the Queue fields (`rateLimit`, `rateLimits`, `concurrencyKeys`,
 * `priorities`), the Task fields (`priority`, `concurrencyKey`, `unique`), the `flow` part of a task
 * message, the rate syntax, and the NATS names of a flow-controlled queue's held stream. Pure.
 * The model is explained for users in docs/flow-control.md.
 *
 * A Queue is flow-controlled when any of the four Queue fields is set. Its producers then publish
 * every task that is due to the queue's **held stream** (subject per priority level); the operator's
 * dispatcher for the queue releases held tasks into the work stream, in priority order and fairly
 * across concurrency keys, as the rate limits and key limits allow. Workers are unchanged: they run
 * what is in the work stream.
 */
import { Type, type Static } from "@sinclair/typebox";
import type { QueueNames } from "./naming.js";
import { MapOf, StringEnum, Timestamp } from "./schema-helpers.js";
import { parseVersionedJson } from "./versioned-json.js";

/**
 * Celery's rate syntax: `"<n>/s"`, `"<n>/m"`, `"<n>/h"`, or a bare number (per second), where n is a
 * positive number (`"0.5/s"`, `"100/m"`; zero is refused at apply). Celery docs: Task.rate_limit.
 */
export const RATE_PATTERN = "^([0-9]*[1-9][0-9]*(\\.[0-9]+)?|[0-9]+\\.[0-9]*[1-9][0-9]*)(/[smh])?$";

/**
 * Parses a rate in Celery's syntax (`"10/s"`, `"100/m"`, `"1000/h"`, `"5"` = per second).
 * @returns tasks per second (> 0)
 * @throws Error naming `field` and the accepted forms when the rate is malformed or not positive
 */
export function parseRate(rate: string | number, field = "rate"): number {
  const s = String(rate).trim();
  const m = new RegExp(RATE_PATTERN).exec(s);
  const n = m ? Number(m[1]) : NaN;
  if (!m || !(n > 0)) {
    throw new Error(`${field}: "${s}" is not a rate: use "<n>/s", "<n>/m" or "<n>/h" with n > 0, e.g. "10/s", "100/m" (Celery rate_limit syntax)`);
  }
  const per = m[3] === "/m" ? 60 : m[3] === "/h" ? 3600 : 1;
  return n / per;
}

/** Default burst of a rate limit: 1 token, Celery's (kombu TokenBucket capacity 1). */
export const DEFAULT_RATE_BURST = 1;

/** Schema of `Queue.spec.rateLimit`: the whole queue's start rate, all workers together. */
export const QueueRateLimitSchema = Type.Object(
  {
    rate: Type.String({
      pattern: RATE_PATTERN,
      description: 'Tasks started per second, minute or hour by all workers of the queue together, in Celery\'s syntax: "50/s", "100/m", "1000/h" (a bare number is per second). A token bucket: one token per start, refilled at this rate.',
    }),
    burst: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100000, default: DEFAULT_RATE_BURST, description: "Starts allowed at once above the steady rate after an idle period (the token bucket's capacity). Default 1, as Celery's." }),
    ),
  },
  { description: "Rate limit of the whole queue, enforced across every worker (unlike Celery's per-worker rate_limit)." },
);
/** `Queue.spec.rateLimit`. */
export type QueueRateLimit = Static<typeof QueueRateLimitSchema>;

/** Where a task's concurrency key comes from when the task gives none (`Queue.spec.concurrencyKeys.from`). */
export const KEY_FROM_PATTERN = "^(kwargs(\\.[A-Za-z_][A-Za-z0-9_-]*)+|args\\[[0-9]+\\](\\.[A-Za-z_][A-Za-z0-9_-]*)*)$";

/** Fairness policies across keys. */
export const FAIRNESS_POLICIES = ["RoundRobin", "Weighted"] as const;
/** A fairness policy. */
export type FairnessPolicy = (typeof FAIRNESS_POLICIES)[number];

/** Schema of `Queue.spec.concurrencyKeys`. */
export const ConcurrencyKeysSchema = Type.Object(
  {
    from: Type.Optional(
      Type.String({
        pattern: KEY_FROM_PATTERN,
        maxLength: 256,
        description: "Where a task's key comes from when it has no spec.concurrencyKey (or enqueue concurrencyKey): a kwarg path such as kwargs.tenant or kwargs.account.id, or a positional argument such as args[0]. A string or number value is the key; a task whose path is missing has no key and is limited by nothing but the queue's rate. Unset: only explicit keys count.",
      }),
    ),
    limit: Type.Integer({ minimum: 1, maximum: 100000, description: "Most tasks of one key running at once, across all workers. A task waiting for its retry keeps its key's slot." }),
    overrides: Type.Optional(
      MapOf(Type.Integer({ minimum: 0, maximum: 100000 }), {
        description: 'Per-key limits that replace limit, e.g. {"tenant-big": 10}; 0 pauses a key (its tasks are held until the override changes).',
      }),
    ),
    fairness: Type.Optional(
      StringEnum(FAIRNESS_POLICIES, {
        default: "RoundRobin",
        description: "How free worker slots are shared between keys with waiting tasks: RoundRobin (one task per key in turn, so a key's backlog never delays another key's tasks) or Weighted (in proportion to weights).",
      }),
    ),
    weights: Type.Optional(
      MapOf(Type.Integer({ minimum: 1, maximum: 1000 }), { description: "Weighted fairness: a key's share of starts relative to the others (default 1)." }),
    ),
  },
  { description: "Per-key concurrency (per tenant, per account, …): a limit on tasks running at once per key across every worker, with fair dispatch between keys." },
);
/** `Queue.spec.concurrencyKeys`. */
export type ConcurrencyKeys = Static<typeof ConcurrencyKeysSchema>;

/** Most priority levels a queue may have. */
export const MAX_PRIORITY_LEVELS = 10;
/** Default share of starts, in percent, kept for the longest-waiting lower-priority task. */
export const DEFAULT_STARVATION_GUARD_PERCENT = 10;

/** Schema of `Queue.spec.priorities`. */
export const PrioritiesSchema = Type.Object(
  {
    levels: Type.Integer({ minimum: 2, maximum: MAX_PRIORITY_LEVELS, description: "Number of priority levels: priorities 0 … levels-1; a higher number starts first." }),
    default: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_PRIORITY_LEVELS - 1, default: 0, description: "Priority of a task that gives none. Must be below levels." })),
    starvationGuardPercent: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 50,
        default: DEFAULT_STARVATION_GUARD_PERCENT,
        description: "Starvation protection: while higher-priority tasks wait, this percent of starts goes to the longest-waiting task of a lower level, so low priorities always progress. 0: strict priority (low levels may starve).",
      }),
    ),
  },
  {
    description: "Priority levels within the queue (higher first), with starvation protection.",
    "x-kubernetes-validations": [{ rule: "!has(self.default) || self.default < self.levels", message: "default must be below levels (priorities are 0 … levels-1)" }],
  },
);
/** `Queue.spec.priorities`. */
export type Priorities = Static<typeof PrioritiesSchema>;

/** Schema of `Queue.spec.rateLimits`: per task name. */
export const TaskRateLimitsSchema = MapOf(Type.String({ pattern: RATE_PATTERN }), {
  description: 'Rate limits per task name, all workers together, in Celery\'s syntax: {"emails.send": "100/m"}. Each is a token bucket of capacity 1; a task is started only when both its name\'s and the queue\'s limits allow.',
});

/** The Queue spec fields of flow control (merged into `QueueSpecSchema`). */
export const QUEUE_FLOW_FIELDS = {
  rateLimit: Type.Optional(QueueRateLimitSchema),
  rateLimits: Type.Optional(TaskRateLimitsSchema),
  concurrencyKeys: Type.Optional(ConcurrencyKeysSchema),
  priorities: Type.Optional(PrioritiesSchema),
};

/** The flow-control part of a Queue spec. */
export interface QueueFlowSpec {
  rateLimit?: QueueRateLimit;
  rateLimits?: Record<string, string>;
  concurrencyKeys?: ConcurrencyKeys;
  priorities?: Priorities;
}

/** True when the Queue spec sets any flow-control field (then tasks go through the held stream). Pure. */
export function isFlowControlled(spec: QueueFlowSpec | undefined): boolean {
  return !!spec && (spec.rateLimit !== undefined || (spec.rateLimits !== undefined && Object.keys(spec.rateLimits).length > 0) || spec.concurrencyKeys !== undefined || spec.priorities !== undefined);
}

/** Pattern of a concurrency or unique key: 1–128 printable characters. */
export const FLOW_KEY_PATTERN = "^[^\\s\\x00-\\x1f]([^\\x00-\\x1f]{0,126}[^\\s\\x00-\\x1f])?$";

/** Singleton policies (`unique.policy`). */
export const UNIQUE_POLICIES = ["Reject", "Replace", "Wait"] as const;
/** A singleton policy. */
export type UniquePolicy = (typeof UNIQUE_POLICIES)[number];

/** Schema of `Task.spec.unique` (and the `unique` enqueue option). */
export const UniqueSchema = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 128, pattern: FLOW_KEY_PATTERN, description: "Singleton key: at most one Queued-or-Running task of the queue holds it." }),
    policy: Type.Optional(
      StringEnum(UNIQUE_POLICIES, {
        default: "Reject",
        description: "When the key is held: Reject refuses the new task (phase Failed, reason UniqueKeyHeld); Replace cancels the holder if it has not started and takes its place (if it has, the new task waits for it); Wait holds the new task until the holder finishes.",
      }),
    ),
  },
  { description: "Singleton (unique-while-active): at most one Queued-or-Running task per key on the queue." },
);
/** `Task.spec.unique`. */
export type UniqueSpec = Static<typeof UniqueSchema>;

/** The Task spec fields of flow control (merged into the task spec schema). */
export const TASK_FLOW_FIELDS = {
  priority: Type.Optional(
    Type.Integer({ minimum: 0, maximum: MAX_PRIORITY_LEVELS - 1, description: "Priority level (higher starts first); must be below the Queue's spec.priorities.levels. Default: the Queue's priorities.default." }),
  ),
  concurrencyKey: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, pattern: FLOW_KEY_PATTERN, description: "Concurrency key (tenant, account, …): at most the Queue's concurrencyKeys limit of tasks with this key run at once. Default: from the Queue's concurrencyKeys.from." }),
  ),
  unique: Type.Optional(UniqueSchema),
};

/** Schema of the `flow` field of a task message: set by the producer of a flow-controlled queue's task. */
export const MessageFlowSchema = Type.Object(
  {
    priority: Type.Integer({ minimum: 0, maximum: MAX_PRIORITY_LEVELS - 1, description: "Resolved priority level (0 when the queue has no priorities)." }),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "Resolved concurrency key; absent: the task has none." })),
  },
  { description: "Flow control of the task: its message goes through the queue's held stream and dispatcher." },
);
/** A message's `flow` field. */
export type MessageFlow = Static<typeof MessageFlowSchema>;

/** NATS names of a flow-controlled queue's held stream. */
export interface HeldNames {
  /** Held stream (WorkQueue retention), e.g. `CELERIAC_default_emails_HELD`. */
  stream: string;
  /** Subject prefix; level `p` is published on `<prefix>.<p>`, e.g. `celeriac.default.emails.held.3`. */
  subjectPrefix: string;
  /** Durable pull consumer name of the dispatcher for level `p`: `dispatch-<p>`. */
  consumerPrefix: string;
}

/** The held stream names of a queue. Pure. */
export function heldNames(names: QueueNames): HeldNames {
  return { stream: `${names.stream}_HELD`, subjectPrefix: `celeriac.${names.namespace}.${names.queue}.held`, consumerPrefix: "dispatch-" };
}

/** Subject a held task of priority `level` is published on. Pure. */
export function heldSubject(names: QueueNames, level: number): string {
  return `${heldNames(names).subjectPrefix}.${level}`;
}

/**
 * A task's concurrency key: the explicit key, else the value at `from` in its arguments (a string,
 * or a finite number as its decimal string), else undefined. Pure; never throws.
 * @param from a `KEY_FROM_PATTERN` path (`kwargs.tenant`, `args[0].id`)
 */
export function resolveConcurrencyKey(explicit: string | undefined, from: string | undefined, args: unknown[], kwargs: Record<string, unknown>): string | undefined {
  if (explicit !== undefined) return explicit;
  if (!from) return undefined;
  const m = /^(kwargs|args\[([0-9]+)\])((\.[A-Za-z_][A-Za-z0-9_-]*)*)$/.exec(from);
  if (!m) return undefined;
  let v: unknown = m[1] === "kwargs" ? kwargs : args[Number(m[2])];
  for (const part of m[3] ? m[3].slice(1).split(".") : []) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  const key = typeof v === "string" ? v : typeof v === "number" && Number.isFinite(v) ? String(v) : undefined;
  return key !== undefined && key.length >= 1 && key.length <= 128 && new RegExp(FLOW_KEY_PATTERN).test(key) ? key : undefined;
}

/** The flow settings a producer needs (part of the Queue's producer settings, `queue.settings`). */
export const ProducerFlowSchema = Type.Object(
  {
    levels: Type.Integer({ minimum: 1, maximum: MAX_PRIORITY_LEVELS, description: "Priority levels (1 when the queue has no priorities)." }),
    defaultPriority: Type.Integer({ minimum: 0, maximum: MAX_PRIORITY_LEVELS - 1, description: "Priority of a task that gives none." }),
    keyFrom: Type.Optional(Type.String({ description: "Queue.spec.concurrencyKeys.from." })),
    keys: Type.Boolean({ description: "True when the queue has concurrencyKeys (a task key is honoured)." }),
  },
  { description: "Present when the queue is flow-controlled: publish due tasks to the held stream." },
);
/** A queue's producer flow settings. */
export type ProducerFlow = Static<typeof ProducerFlowSchema>;

/** The producer flow settings of a Queue spec, or undefined when it is not flow-controlled. Pure. */
export function producerFlow(spec: QueueFlowSpec | undefined): ProducerFlow | undefined {
  if (!isFlowControlled(spec)) return undefined;
  const p = spec!.priorities;
  return {
    levels: p?.levels ?? 1,
    defaultPriority: p?.default ?? 0,
    ...(spec!.concurrencyKeys?.from ? { keyFrom: spec!.concurrencyKeys.from } : {}),
    keys: spec!.concurrencyKeys !== undefined,
  };
}

/** A task's flow options, as a producer got them (Task spec or enqueue options). */
export interface TaskFlowOptions {
  priority?: number;
  concurrencyKey?: string;
}

/**
 * The message `flow` field for a task on a queue, or undefined when the queue is not
 * flow-controlled. Pure.
 * @throws Error naming `priority` or `concurrencyKey` and the fix when the task sets one the queue
 *   cannot honour (a priority at or above the levels, a key on a queue without concurrencyKeys, a
 *   priority on a queue that is not flow-controlled) — never silently dropped
 */
export function messageFlow(queue: string, flow: ProducerFlow | undefined, opts: TaskFlowOptions, args: unknown[], kwargs: Record<string, unknown>): MessageFlow | undefined {
  if (!flow) {
    if (opts.priority !== undefined) throw new Error(`priority: queue "${queue}" has no spec.priorities: add priorities to the Queue (levels, default) or drop the task's priority`);
    if (opts.concurrencyKey !== undefined) throw new Error(`concurrencyKey: queue "${queue}" has no spec.concurrencyKeys: add concurrencyKeys (limit) to the Queue or drop the task's concurrencyKey`);
    return undefined;
  }
  if (opts.priority !== undefined && !(Number.isInteger(opts.priority) && opts.priority >= 0 && opts.priority < flow.levels)) {
    throw new Error(`priority: ${opts.priority} is not a level of queue "${queue}": use an integer 0 … ${flow.levels - 1} (Queue spec.priorities.levels is ${flow.levels})`);
  }
  if (opts.concurrencyKey !== undefined && !flow.keys) {
    throw new Error(`concurrencyKey: queue "${queue}" has no spec.concurrencyKeys: add concurrencyKeys (limit) to the Queue or drop the task's concurrencyKey`);
  }
  const key = flow.keys ? resolveConcurrencyKey(opts.concurrencyKey, flow.keyFrom, args, kwargs) : undefined;
  return { priority: opts.priority ?? flow.defaultPriority, ...(key !== undefined ? { key } : {}) };
}

/**
 * Task condition reasons of flow control (Accepted=False with phase Failed, and `status.error.type`),
 * written by the operator for a Task it refuses to publish.
 */
export const FLOW_TASK_REASONS = {
  /** The Task's spec.priority or spec.concurrencyKey is one its Queue cannot honour (see `messageFlow`). */
  InvalidFlowOptions: "InvalidFlowOptions",
  /** spec.unique with policy Reject: another live task holds the key. */
  UniqueKeyHeld: "UniqueKeyHeld",
} as const;

/** Prefix of the results-bucket keys where workers publish their tasks' code defaults. */
export const TASK_DEFAULTS_KEY_PREFIX = "task-defaults.";
/** Version of a task-defaults value. */
export const TASK_DEFAULTS_VERSION = 1;

/**
 * Results-bucket key of a task name's code defaults: `task-defaults.<base64url(name)>` (base64url
 * without padding keeps any task name within the KV key alphabet). Pure.
 */
export function taskDefaultsKey(task: string): string {
  return `${TASK_DEFAULTS_KEY_PREFIX}${Buffer.from(task, "utf8").toString("base64url")}`;
}

/**
 * Schema of a task-defaults value, version 1: the code defaults of one task name that the queue's
 * dispatcher enforces, written by every worker defining the task (`defineTask(name, handler,
 * { rateLimit })`) at start. The Queue's spec.rateLimits[name] wins over `rateLimit`.
 */
export const TaskDefaultsSchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Version (1)." }),
    task: Type.String({ minLength: 1, description: "Task name." }),
    rateLimit: Type.String({ pattern: RATE_PATTERN, description: 'The task\'s rate limit across all workers, Celery\'s syntax ("10/s").' }),
  },
  { description: "A task name's code defaults (results-bucket key task-defaults.<base64url(name)>), version 1. Unknown fields are ignored." },
);
/** A task-defaults value (version 1). */
export type TaskDefaults = Static<typeof TaskDefaultsSchema>;

/**
 * Parses a task-defaults value. Never throws.
 * @returns the value, or `{error}` naming the field when it is not JSON, of another version, or
 *   breaks the schema (a rate that `parseRate` refuses included)
 */
export function parseTaskDefaults(data: Uint8Array | string): { defaults: TaskDefaults } | { error: string } {
  const parsed = parseVersionedJson(data, TASK_DEFAULTS_VERSION);
  if ("error" in parsed) return parsed;
  const v = parsed.value;
  if (v === null || typeof v !== "object" || Array.isArray(v)) return { error: "not a JSON object" };
  const o = v as Record<string, unknown>;
  if (o.v !== TASK_DEFAULTS_VERSION) return { error: `v: Unsupported value: ${JSON.stringify(o.v)}: supported values: ${TASK_DEFAULTS_VERSION}` };
  if (typeof o.task !== "string" || o.task === "") return { error: "task: must be a non-empty string" };
  if (typeof o.rateLimit !== "string") return { error: "rateLimit: must be a string such as \"10/s\"" };
  try {
    parseRate(o.rateLimit, "rateLimit");
  } catch (err) {
    return { error: (err as Error).message };
  }
  return { defaults: { v: TASK_DEFAULTS_VERSION, task: o.task, rateLimit: o.rateLimit } };
}

/** Why a held task has not started (`status.waiting.reason`, like a container's `state.waiting`). */
export const WAITING_REASONS = ["RateLimited", "ConcurrencyLimited", "Priority", "UniqueKeyHeld", "DispatcherUnavailable"] as const;
/** A waiting reason. */
export type WaitingReason = (typeof WAITING_REASONS)[number];

/** Schema of `status.waiting` of a Task and of a results-bucket record. */
export const WaitingSchema = Type.Object(
  {
    reason: StringEnum(WAITING_REASONS, { description: "RateLimited, ConcurrencyLimited (its key is at its limit), Priority (higher-priority tasks go first), UniqueKeyHeld, DispatcherUnavailable." }),
    message: Type.String({ description: 'What holds it, e.g. "queue rate limit 50/s", "key tenant-a: 2 of 2 running".' }),
    since: Timestamp({ description: "When the task was first held for this reason (RFC 3339)." }),
  },
  { description: "Set while a queued task is held back by flow control; cleared when it starts." },
);
/** `status.waiting`. */
export type Waiting = Static<typeof WaitingSchema>;

/** Most keys `Queue.status.flow.keys` lists. */
export const STATUS_TOP_KEYS = 10;

/** Schema of `Queue.status.flow`: what the dispatcher holds back, written by the operator. */
export const QueueFlowStatusSchema = Type.Object(
  {
    held: Type.Integer({ minimum: 0, description: "Tasks in the held stream: published and not yet released to workers." }),
    runnable: Type.Integer({ minimum: 0, description: "Of held, those no limit holds back now (what autoscaling counts besides the work stream's backlog)." }),
    rateLimited: Type.Boolean({ description: "True when the queue's or a task name's rate limit is holding tasks back now." }),
    keys: Type.Optional(
      Type.Array(
        Type.Object({
          key: Type.String({ description: "Concurrency key." }),
          held: Type.Integer({ minimum: 0, description: "Tasks of the key waiting." }),
          running: Type.Integer({ minimum: 0, description: "Tasks of the key released and not finished." }),
          limit: Type.Integer({ minimum: 0, description: "The key's limit." }),
        }),
        { description: `The busiest keys (most held first, at most ${STATUS_TOP_KEYS}).` },
      ),
    ),
  },
  { description: "Flow control now (a flow-controlled Queue only)." },
);
/** `Queue.status.flow`. */
export type QueueFlowStatus = Static<typeof QueueFlowStatusSchema>;
