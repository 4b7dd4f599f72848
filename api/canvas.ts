/**
 * The canvas contract (Celery's canvas on JetStream): the wire form of a canvas (`CanvasNode`, what
 * `celeriac enqueue --canvas` reads and the builders of canvas/build.ts emit), its frozen form
 * (`FrozenNode`: every node has its id, map/starmap/chunks expanded, composite callbacks pushed
 * down), the `canvas` field of a task message, the join record and its slots in the results bucket,
 * and `status.canvas` of a task's record. Pure; see docs/canvas.md and docs/protocol.md.
 *
 * Ids: a canvas has one id (the root's, `client.apply`'s `taskId` or a UUID); every other node's id
 * is derived from its parent's: chain step / group member / chord header member `i` → `<id>-<i>`,
 * chord body → `<id>-b`, link `k` → `<id>-l<k>`, linkError `k` → `<id>-e<k>`. So every task of a
 * canvas is known, and can be watched or revoked, before any runs.
 */
import { Type, type Static } from "@sinclair/typebox";
import { QUEUE_NAME_PATTERN, TASK_NAME_PATTERN, TASK_ID_PATTERN } from "./naming.js";
import { MAX_TIMEOUT_SECONDS, retryProblem, type RetryPolicySpec } from "./policies.js";
import type { UniqueSpec } from "./flow.js";

/** Version of the canvas wire form (`{"v": 1, "canvas": …}` documents and the message's `canvas` field). */
export const CANVAS_VERSION = 1;
/** Results-bucket key prefix of join records: `join.<join id>`; slots: `join.<join id>.<index>`. */
export const JOIN_PREFIX = "join.";
/** Results-bucket key prefix of canvas records (written by `client.apply`): `canvas.<canvas id>`. */
export const CANVAS_PREFIX = "canvas.";
/** Most members of one group (also map/starmap items and chunks tasks). */
export const MAX_GROUP_SIZE = 100_000;
/** Deepest nesting of composite nodes. */
export const MAX_CANVAS_DEPTH = 32;

/**
 * Options of one signature: the same meaning as `client.enqueue`'s options (EnqueueOptions), minus
 * `taskId` (ids are derived from the canvas id) and `namespace` (a canvas runs in one namespace).
 * Times: seconds, or RFC 3339 strings. Countdown/eta/expires count from when the step is published
 * (Celery semantics: a chain step's countdown starts when its parent finished).
 */
export interface SignatureOptions {
  /** Queue of this step; default the canvas's queue (`client.apply`'s). */
  queue?: string;
  countdownSeconds?: number;
  /** RFC 3339. Exclusive with countdownSeconds. */
  eta?: string;
  /** RFC 3339, or seconds from when the step is published. */
  expires?: string | number;
  timeoutSeconds?: number;
  retry?: RetryPolicySpec;
  priority?: number;
  concurrencyKey?: string;
  unique?: UniqueSpec;
}

/** Callbacks of any node (Celery's `link` / `link_error`). */
export interface CanvasCallbacks<N> {
  /** Run after the node succeeded, with its result prepended to their args (unless immutable). */
  link?: N[];
  /** Run once when the node failed, with `[failedTaskId, {type, message, stack?}]` prepended to their args. */
  linkError?: N[];
}

/** One task (a signature). `immutable` (Celery's `si`): the parent's result is not prepended to args. */
export interface TaskNode<N = CanvasNode> extends CanvasCallbacks<N> {
  kind: "task";
  task: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: SignatureOptions;
  immutable?: boolean;
}
/** Steps in sequence: each step's result is prepended to the next one's args. */
export interface ChainNode<N = CanvasNode> extends CanvasCallbacks<N> {
  kind: "chain";
  steps: N[];
}
/** Members in parallel; result: the list of their results, in order. */
export interface GroupNode<N = CanvasNode> extends CanvasCallbacks<N> {
  kind: "group";
  members: N[];
}
/** A group (`header`) then `body`, once, with the list of header results prepended to its args. */
export interface ChordNode<N = CanvasNode> extends CanvasCallbacks<N> {
  kind: "chord";
  header: N[];
  body: N;
}
/** `task` once per item, in parallel: `task(item, ...task.args)`; result: the list. */
export interface MapNode extends CanvasCallbacks<CanvasNode> {
  kind: "map";
  task: TaskNode;
  items: unknown[];
}
/** `task` once per item, in parallel, the item (an array) spread: `task(...item, ...task.args)`. */
export interface StarmapNode extends CanvasCallbacks<CanvasNode> {
  kind: "starmap";
  task: TaskNode;
  items: unknown[][];
}
/** `items` (argument lists) split into tasks of `n`; each runs `task(...item, ...task.args)` for its items in turn; result: list of lists. */
export interface ChunksNode extends CanvasCallbacks<CanvasNode> {
  kind: "chunks";
  task: TaskNode;
  items: unknown[][];
  n: number;
}
/** A canvas as written (wire form v1). */
export type CanvasNode = TaskNode | ChainNode | GroupNode | ChordNode | MapNode | StarmapNode | ChunksNode;
/** A canvas document: what `celeriac enqueue --canvas @file.json` reads (a bare node is accepted too). */
export interface CanvasDocument {
  v: 1;
  canvas: CanvasNode;
}

/** A frozen task: `id` set; `chunk` true for a chunks task (args = list of argument lists). */
export interface FrozenTask extends TaskNode<FrozenNode> {
  id: string;
  chunk?: boolean;
}
/** A frozen node: ids on every node, map/starmap/chunks expanded to groups of FrozenTasks, callbacks pushed down (see `freezeCanvas`). */
export type FrozenNode =
  | FrozenTask
  | (ChainNode<FrozenNode> & { id: string })
  | (GroupNode<FrozenNode> & { id: string })
  | (ChordNode<FrozenNode> & { id: string });

/** A node's place: for a problem's `path`, e.g. `canvas.steps[1].members[0].task`. */
export class InvalidCanvasError extends TypeError {
  /** Where in the canvas, e.g. `canvas.steps[1].task`. */
  readonly path: string;
  /**
   * @param path where the problem is
   * @param message what is wrong and the fix (already prefixed with the path)
   */
  constructor(path: string, message: string) {
    super(message);
    this.name = "InvalidCanvasError";
    this.path = path;
  }
}

const OPTION_KEYS = new Set(["queue", "countdownSeconds", "eta", "expires", "timeoutSeconds", "retry", "priority", "concurrencyKey", "unique"]);
const NODE_KEYS: Record<CanvasNode["kind"], readonly string[]> = {
  task: ["kind", "task", "args", "kwargs", "options", "immutable", "link", "linkError"],
  chain: ["kind", "steps", "link", "linkError"],
  group: ["kind", "members", "link", "linkError"],
  chord: ["kind", "header", "body", "link", "linkError"],
  map: ["kind", "task", "items", "link", "linkError"],
  starmap: ["kind", "task", "items", "link", "linkError"],
  chunks: ["kind", "task", "items", "n", "link", "linkError"],
};
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Checks a canvas in wire form: kinds, fields (unknown ones refused, so a typo is not silently
 * ignored), task names, args arrays, kwargs objects, option types, non-empty steps/members/header,
 * group sizes (≤ MAX_GROUP_SIZE) and depth (≤ MAX_CANVAS_DEPTH). Deeper checks of option values
 * (dates, retry, priority against the queue) happen when each step's message is built.
 * @param node the canvas (parsed JSON or a builder's `toJSON()`)
 * @param path the name of the root in messages (default `canvas`)
 * @throws InvalidCanvasError naming the path and the fix
 */
export function checkCanvas(node: unknown, path = "canvas", depth = 0): asserts node is CanvasNode {
  const fail = (p: string, msg: string): never => {
    throw new InvalidCanvasError(p, `${p}: ${msg}`);
  };
  if (depth > MAX_CANVAS_DEPTH) fail(path, `nested deeper than ${MAX_CANVAS_DEPTH} levels`);
  if (!isObject(node)) fail(path, 'must be an object with "kind": task, chain, group, chord, map, starmap or chunks');
  const n = node as Record<string, unknown>;
  const kind = n.kind as CanvasNode["kind"];
  if (typeof kind !== "string" || !(kind in NODE_KEYS)) {
    fail(`${path}.kind`, `${JSON.stringify(n.kind)} is not a canvas kind: use one of ${Object.keys(NODE_KEYS).join(", ")}`);
  }
  for (const k of Object.keys(n)) {
    if (!NODE_KEYS[kind].includes(k)) fail(`${path}.${k}`, `unknown field of a ${kind} node: it has ${NODE_KEYS[kind].join(", ")}${k === "id" || k === "taskId" ? " (ids are derived from the canvas id: give taskId to client.apply)" : ""}`);
  }
  const list = (key: string, min: number, max: number): unknown[] => {
    const v = n[key];
    if (!Array.isArray(v)) return fail(`${path}.${key}`, `must be an array`);
    if (v.length < min) fail(`${path}.${key}`, `must hold at least ${min} element${min === 1 ? "" : "s"}`);
    if (v.length > max) fail(`${path}.${key}`, `holds ${v.length} elements; at most ${max} are allowed`);
    return v;
  };
  const children = (key: string) => list(key, 1, MAX_GROUP_SIZE).forEach((c, i) => checkCanvas(c, `${path}.${key}[${i}]`, depth + 1));
  for (const cb of ["link", "linkError"] as const) if (n[cb] !== undefined) list(cb, 0, 100).forEach((c, i) => checkCanvas(c, `${path}.${cb}[${i}]`, depth + 1));
  switch (kind) {
    case "task": {
      if (typeof n.task !== "string" || !new RegExp(TASK_NAME_PATTERN).test(n.task) || n.task.length > 200) {
        fail(`${path}.task`, `${JSON.stringify(n.task)} is not a task name: use letters, digits and _ . : - (starting with a letter or _), at most 200`);
      }
      if (n.args !== undefined && !Array.isArray(n.args)) fail(`${path}.args`, "must be a JSON array, e.g. [1, 2]");
      if (n.kwargs !== undefined && !isObject(n.kwargs)) fail(`${path}.kwargs`, 'must be a JSON object, e.g. {"a": 1}');
      if (n.immutable !== undefined && typeof n.immutable !== "boolean") fail(`${path}.immutable`, "must be true or false");
      if (n.options !== undefined) checkOptions(n.options, `${path}.options`, fail);
      break;
    }
    case "chain":
      children("steps");
      break;
    case "group":
      children("members");
      break;
    case "chord":
      children("header");
      checkCanvas(n.body, `${path}.body`, depth + 1);
      break;
    case "map":
    case "starmap":
    case "chunks": {
      checkCanvas(n.task, `${path}.task`, depth + 1);
      if ((n.task as CanvasNode).kind !== "task") fail(`${path}.task.kind`, `a ${kind} applies one task signature: use "kind": "task"`);
      const items = list("items", 0, kind === "chunks" ? MAX_GROUP_SIZE * 1000 : MAX_GROUP_SIZE);
      if (kind !== "map") items.forEach((it, i) => Array.isArray(it) || fail(`${path}.items[${i}]`, `must be an argument list (a JSON array) in a ${kind}`));
      if (kind === "chunks") {
        if (!Number.isInteger(n.n) || (n.n as number) < 1) fail(`${path}.n`, `must be a positive integer (items per task), got ${JSON.stringify(n.n)}`);
        if (Math.ceil(items.length / (n.n as number)) > MAX_GROUP_SIZE) fail(`${path}.n`, `makes more than ${MAX_GROUP_SIZE} tasks: use a larger n`);
      }
      break;
    }
  }
}

function checkOptions(o: unknown, path: string, fail: (p: string, m: string) => never): void {
  if (!isObject(o)) fail(path, "must be an object");
  const v = o as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!OPTION_KEYS.has(k)) fail(`${path}.${k}`, `unknown signature option: use ${[...OPTION_KEYS].join(", ")}${k === "taskId" ? " (ids are derived from the canvas id: give taskId to client.apply)" : ""}`);
  }
  if (v.queue !== undefined && (typeof v.queue !== "string" || !new RegExp(QUEUE_NAME_PATTERN).test(v.queue))) fail(`${path}.queue`, `${JSON.stringify(v.queue)} is not a queue name (a DNS-1123 label)`);
  for (const k of ["countdownSeconds", "timeoutSeconds", "priority"]) if (v[k] !== undefined && (typeof v[k] !== "number" || !Number.isFinite(v[k]))) fail(`${path}.${k}`, "must be a number");
  if (v.countdownSeconds !== undefined && (v.countdownSeconds as number) < 0) fail(`${path}.countdownSeconds`, `must be ≥ 0 (seconds after the step is published), got ${String(v.countdownSeconds)}`);
  if (v.countdownSeconds !== undefined && v.eta !== undefined) fail(`${path}.eta`, "countdownSeconds and eta are exclusive: give one");
  if (v.timeoutSeconds !== undefined && (!Number.isInteger(v.timeoutSeconds) || (v.timeoutSeconds as number) < 1 || (v.timeoutSeconds as number) > MAX_TIMEOUT_SECONDS)) {
    fail(`${path}.timeoutSeconds`, `${String(v.timeoutSeconds)} is not an integer from 1 to ${MAX_TIMEOUT_SECONDS} (the handler's time limit in seconds)`);
  }
  if (v.priority !== undefined && !Number.isInteger(v.priority)) fail(`${path}.priority`, `${String(v.priority)} is not an integer priority level such as 0 or 5`);
  const isDate = (x: unknown) => typeof x === "string" && !Number.isNaN(new Date(x).getTime());
  if (v.eta !== undefined && !isDate(v.eta)) fail(`${path}.eta`, `${JSON.stringify(v.eta)} is not an RFC 3339 time like 2026-01-02T15:04:05Z`);
  if (v.expires !== undefined && !isDate(v.expires) && !(typeof v.expires === "number" && Number.isFinite(v.expires) && v.expires >= 0)) {
    fail(`${path}.expires`, `${JSON.stringify(v.expires)} is neither an RFC 3339 time nor seconds ≥ 0 from when the step is published`);
  }
  if (v.concurrencyKey !== undefined && typeof v.concurrencyKey !== "string") fail(`${path}.concurrencyKey`, "must be a string");
  if (v.retry !== undefined) {
    const p = retryProblem(v.retry, `${path}.retry`);
    if (p) throw new InvalidCanvasError(p.field, p.message);
  }
  if (v.unique !== undefined) {
    if (!isObject(v.unique)) fail(`${path}.unique`, 'must be an object like {"key": "report-2026-11", "policy": "Wait"}');
    for (const k of Object.keys(v.unique as object)) if (k !== "key" && k !== "policy") fail(`${path}.unique.${k}`, "unknown field of unique: it has key and policy (Reject, Replace or Wait)");
  }
}

/**
 * Freezes a checked canvas: assigns every node its id (module header), expands map/starmap/chunks
 * into groups of tasks (`map`: args `[item, ...task.args]`; `starmap`: `[...item, ...task.args]`;
 * `chunks`: FrozenTasks with `chunk: true` and args = their slice of items, each followed by
 * `task.args`), and pushes composite
 * callbacks down to where they fire (a callback keeps its one id wherever it is copied, so it can
 * only ever run once):
 * - chain.link → its last step's link; chain.linkError → every step's linkError;
 * - chord.link → the body's link; chord.linkError → kept on the chord (fires on a header failure)
 *   and pushed to the body;
 * - group.link / group.linkError → kept on the group (fired by its join);
 * - pushing onto a chain, group or chord applies the same rules recursively.
 * Pure; never throws for a canvas `checkCanvas` accepted.
 * @param node the canvas in wire form
 * @param id the canvas id (matches TASK_ID_PATTERN, ≤ 200 characters so derived ids fit 256)
 * @throws InvalidCanvasError when `id` is not a valid task id
 */
export function freezeCanvas(node: CanvasNode, id: string): FrozenNode {
  if (!TASK_ID_PATTERN.test(id) || id.length > 200) throw new InvalidCanvasError("taskId", `taskId "${id}" is invalid for a canvas: use 1-200 of A-Z a-z 0-9 _ = -`);
  return freeze(node, id);
}

function freeze(node: CanvasNode, id: string): FrozenNode {
  const link = (node.link ?? []).map((c, k) => freeze(c, `${id}-l${k}`));
  const linkError = (node.linkError ?? []).map((c, k) => freeze(c, `${id}-e${k}`));
  let out: FrozenNode;
  switch (node.kind) {
    case "task":
      out = { kind: "task", id, task: node.task, ...(node.args ? { args: node.args } : {}), ...(node.kwargs ? { kwargs: node.kwargs } : {}), ...(node.options ? { options: node.options } : {}), ...(node.immutable ? { immutable: true } : {}) };
      break;
    case "chain":
      out = { kind: "chain", id, steps: node.steps.map((s, i) => freeze(s, `${id}-${i}`)) };
      break;
    case "group":
      out = { kind: "group", id, members: node.members.map((s, i) => freeze(s, `${id}-${i}`)) };
      break;
    case "chord":
      out = { kind: "chord", id, header: node.header.map((s, i) => freeze(s, `${id}-${i}`)), body: freeze(node.body, `${id}-b`) };
      break;
    case "map":
    case "starmap": {
      const t = node.task;
      const members: FrozenNode[] = node.items.map((item, i) => {
        const args = node.kind === "map" ? [item, ...(t.args ?? [])] : [...(item as unknown[]), ...(t.args ?? [])];
        return freeze({ ...t, args }, `${id}-${i}`);
      });
      out = { kind: "group", id, members };
      break;
    }
    case "chunks": {
      const t = node.task;
      const members: FrozenNode[] = [];
      for (let i = 0, k = 0; i < node.items.length; i += node.n, k++) {
        // as starmap: each item's call gets the signature's static args after the item's own
        const calls = t.args && t.args.length > 0 ? node.items.slice(i, i + node.n).map((it) => [...it, ...(t.args ?? [])]) : node.items.slice(i, i + node.n);
        const f = freeze({ ...t, args: calls }, `${id}-${k}`) as FrozenTask;
        members.push({ ...f, chunk: true });
      }
      out = { kind: "group", id, members };
      break;
    }
  }
  for (const cb of link) pushLink(out, cb);
  for (const cb of linkError) pushLinkError(out, cb);
  return out;
}

function pushLink(n: FrozenNode, cb: FrozenNode): void {
  if (n.kind === "chain") pushLink(n.steps[n.steps.length - 1] as FrozenNode, cb);
  else if (n.kind === "chord") pushLink(n.body, cb);
  else (n.link ??= []).push(cb);
}

function pushLinkError(n: FrozenNode, cb: FrozenNode): void {
  if (n.kind === "chain") n.steps.forEach((s) => pushLinkError(s, cb));
  else if (n.kind === "chord") {
    (n.linkError ??= []).push(cb);
    pushLinkError(n.body, cb);
  } else (n.linkError ??= []).push(cb);
}

/**
 * Schema of the `canvas` field of a task message (envelope v1 extension; docs/protocol.md): where
 * the task sits in its canvas and what runs after it. Set on every task a canvas publishes.
 */
/**
 * A frozen node in a message or join record, checked at its top: `kind` one of the frozen kinds and
 * its `id` (the rest is kept as is), so a hand-built continuation with a bad node is refused with the
 * message (dead-lettered, reason InvalidMessage) instead of silently not continuing.
 */
const FrozenNodeRef = (description: string) =>
  Type.Unsafe<FrozenNode>({
    type: "object",
    "x-kubernetes-preserve-unknown-fields": true,
    required: ["kind", "id"],
    properties: {
      kind: { type: "string", enum: ["task", "chain", "group", "chord"], description: "Frozen node kind (map, starmap and chunks are expanded to groups when frozen)." },
      id: { type: "string", minLength: 1, maxLength: 256, description: "The node's derived id." },
    },
    description,
  });

export const MessageCanvasSchema = Type.Object(
  {
    root: Type.String({ minLength: 1, maxLength: 256, description: "The canvas id." }),
    home: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "Queue (same namespace) whose results bucket holds the canvas's join records." }),
    parent: Type.Optional(Type.String({ description: "Id of the task (or join) whose result this task received: the previous chain step, or the header's join." })),
    step: Type.Integer({ minimum: 0, description: "Index of this task in its parent composite (chain step or group member)." }),
    then: Type.Optional(Type.Array(FrozenNodeRef("A FrozenNode."), { description: "FrozenNodes to run after this task succeeded, in order (the rest of its chain)." })),
    join: Type.Optional(
      Type.Object({ id: Type.String({ description: "Join id (the group's node id)." }), index: Type.Integer({ minimum: 0, description: "Slot index (the member's position in the group)." }) }, { description: "The join slot this branch fills once `then` is done." }),
    ),
    link: Type.Optional(Type.Array(FrozenNodeRef("A FrozenNode."), { description: "FrozenNodes run after this task succeeded." })),
    linkError: Type.Optional(Type.Array(FrozenNodeRef("A FrozenNode."), { description: "FrozenNodes run once after this task failed." })),
    workflow: Type.Optional(
      Type.Object(
        { name: Type.String({ description: "The Workflow's name." }), uid: Type.String({ minLength: 1, maxLength: 64, description: "The Workflow's metadata.uid (the prefix of its task ids)." }) },
        { description: "Set on a step task of a Workflow resource: when it ends, the worker writes the step-end notice `wf.<uid>.<task id>` (api/workflow.ts) to its queue's results bucket." },
      ),
    ),
    kwargsRefs: Type.Optional(
      Type.Unsafe<Record<string, KwargsRef>>({
        type: "object",
        additionalProperties: {
          type: "object",
          required: ["queue"],
          properties: {
            queue: { type: "string", pattern: QUEUE_NAME_PATTERN, description: "Queue (same namespace) whose results bucket holds the record(s)." },
            id: { type: "string", minLength: 1, maxLength: 256, description: "One task's result: the record of this task id." },
            each: {
              type: "object",
              required: ["prefix", "count"],
              properties: {
                prefix: { type: "string", minLength: 1, maxLength: 256, description: "Task ids `<prefix><i>`." },
                count: { type: "integer", minimum: 0, description: "How many: i = 0 … count − 1." },
              },
              description: "The list of the results of tasks <prefix>0 … <prefix><count − 1>, in order (a Workflow's forEach step).",
            },
          },
          description: "Give id or each.",
        },
        description: "kwargs filled by the worker before the handler runs: each key gets the referenced result(s), read from the results bucket (a Workflow step's dependencies on its own queue); a record missing or not Succeeded fails the task (CanvasResultMissingError).",
      }),
    ),
    chunk: Type.Optional(Type.Boolean({ description: "True for a chunks task: args is a list of argument lists; the handler runs once per list; the result is the list of results." })),
    argsRef: Type.Optional(
      Type.Object(
        {
          kind: Type.Unsafe<"task" | "join">({ type: "string", enum: ["task", "join"] }),
          id: Type.String({ description: "Task id (its record holds the result) or join id (in the home bucket)." }),
          queue: Type.Optional(Type.String({ description: "Queue of that task's results bucket (kind task)." })),
        },
        { description: "args[0] stands for this result, too large to pass by value (kind task) or a join's list of results (kind join): the worker resolves it before the handler runs." },
      ),
    ),
  },
  { description: "Canvas membership and continuation (envelope v1 extension)." },
);
/** A message's `canvas` field. */
export type MessageCanvas = Omit<Static<typeof MessageCanvasSchema>, "then" | "link" | "linkError"> & {
  then?: FrozenNode[];
  link?: FrozenNode[];
  linkError?: FrozenNode[];
};

/** Schema of `status.canvas` of a task's record (and Task.status): which canvas and step it belongs to. */
export const CanvasStatusSchema = Type.Object(
  {
    root: Type.String({ description: "The canvas id." }),
    parent: Type.Optional(Type.String({ description: "Id of the task or join whose result it received." })),
    step: Type.Integer({ minimum: 0, description: "Index in its parent composite." }),
    failedStep: Type.Optional(
      Type.Object({ id: Type.String({ description: "Id of the step that failed or was revoked." }), task: Type.String({ description: "Task name of that step." }) }, { description: "Set on a task that never ran because this earlier step failed or was revoked (phase Cancelled)." }),
    ),
  },
  { description: "Canvas membership of the task (chain, group, chord; docs/canvas.md)." },
);
/** `status.canvas`. */
export type CanvasStatus = Static<typeof CanvasStatusSchema>;

/** A kwarg the worker fills from the results bucket (MessageCanvasSchema `kwargsRefs`): one task's result, or the list of results of `<prefix>0 … <prefix><count − 1>`. */
export type KwargsRef = { queue: string; id: string; each?: undefined } | { queue: string; each: { prefix: string; count: number }; id?: undefined };

/** A result too large to pass by value, or a join's list of results: see MessageCanvasSchema `argsRef`. */
export type ResultRef = { kind: "task"; id: string; queue: string } | { kind: "join"; id: string };

/**
 * A join record (`join.<id>` in the home bucket): created (KV create) before the group's members are
 * published; every finishing member sets its bit by compare-and-set on the revision, so exactly one
 * write completes it; that writer (or a replay of any member) runs `then`, and sets `continued`.
 */
export interface JoinRecord {
  v: 1;
  /** The group's (or chord's) node id. */
  id: string;
  root: string;
  home: string;
  /** Members. */
  size: number;
  /** Base64 bitmap of finished members (bit i of byte i>>3, LSB first). */
  done: string;
  /** Members finished (popcount of `done`). */
  count: number;
  /** FrozenNodes to run after every member succeeded (a chord's body first), with the list of results. */
  then: FrozenNode[];
  /** The outer join slot to fill once `then` is done (nesting). */
  join?: { id: string; index: number };
  /** Join-level callbacks (group.link / group.linkError / chord.linkError). */
  link?: FrozenNode[];
  linkError?: FrozenNode[];
  /** For `status.canvas` of what `then` publishes. */
  parent?: string;
  step: number;
  /** The first member failure (set once, by compare-and-set): the join never continues. */
  failed?: { id: string; task: string; error: { type: string; message: string; stack?: string } };
  /** True once `then` (or the failure handling) was published. */
  continued?: boolean;
  createdAt: string;
}

/** A join slot (`join.<id>.<index>`): member `index`'s result by value, a reference to a task's record, or a nested join's results. */
export type JoinSlot = { v: 1; value: unknown } | { v: 1; ref: { queue: string; id: string } } | { v: 1; join: string };

/** Results-bucket key of join `id`. */
export const joinKey = (id: string): string => `${JOIN_PREFIX}${id}`;
/** Results-bucket key of slot `index` of join `id`. */
export const joinSlotKey = (id: string, index: number): string => `${JOIN_PREFIX}${id}.${index}`;
/** Results-bucket key of canvas record `id`. */
export const canvasKey = (id: string): string => `${CANVAS_PREFIX}${id}`;

/**
 * A canvas record (`canvas.<id>` in the home bucket), written by `client.apply` before the first
 * task is published: which canvas, where, and its frozen tree (omitted when it encodes to more than
 * 512 KiB).
 */
export interface CanvasRecord {
  v: 1;
  id: string;
  namespace: string;
  queue: string;
  createdAt: string;
  /** SHA-256 (hex) of the frozen tree's JSON: tells a re-apply of the same canvas from another canvas given the same id. */
  treeHash?: string;
  tree?: FrozenNode;
}
