/**
 * The canvas planner: what "launch a node" means, as data. Given a FrozenNode, what it receives (a
 * parent's result, a join's results, or a failed task's error) and its place in the canvas (the
 * rest of its chain, the join slot it fills, its parent and step), `planLaunch` returns the join
 * records to create and the task messages to publish — in that order: every join record before any
 * member that could complete it. Pure: no I/O, no clock (the caller stamps `createdAt`).
 *
 * Also here, pure as well: the ids of a frozen tree (`canvasTaskIds`), the node whose result is the
 * canvas's result (`resultTarget`), the tasks a failure cancels (`cancelledBy`), and the join bitmap
 * helpers the runtime's compare-and-set uses.
 */
import { MAX_ARGS_BYTES } from "../api/constants.js";
import type { FrozenNode, FrozenTask, JoinRecord, MessageCanvas, ResultRef, SignatureOptions } from "../api/canvas.js";
import type { TaskError } from "../api/task.js";

/** Inputs above this many bytes of JSON are passed by reference (`argsRef`), not by value: half of MAX_ARGS_BYTES (128 KiB). */
export const MAX_INLINE_INPUT_BYTES = MAX_ARGS_BYTES / 2;

/**
 * What a launched node receives:
 * - `value`: a task's result (`from` = that task, read back from its record when too large);
 * - `join`: a join's list of results (always by reference);
 * - `error`: a failed task's id and error, for linkError callbacks (`[taskId, error]` prepended).
 */
export type LaunchInput =
  | { readonly kind: "value"; readonly value: unknown; readonly from: { readonly id: string; readonly queue: string } }
  | { readonly kind: "join"; readonly id: string }
  | { readonly kind: "error"; readonly taskId: string; readonly error: TaskError };

/** Where a launched node sits: its continuation and its `status.canvas` fields. */
export interface Place {
  /** The canvas id. */
  readonly root: string;
  /** Queue whose results bucket holds the canvas's join records. */
  readonly home: string;
  /** Queue of a task whose options name none (the canvas's queue). */
  readonly queue: string;
  /** What runs after this node succeeded (the rest of its chain), in order. */
  readonly then?: readonly FrozenNode[];
  /** The join slot this node's branch fills once `then` is done. */
  readonly join?: { readonly id: string; readonly index: number };
  /** Id of the task or join whose result this node receives. */
  readonly parent?: string;
  /** Index of this node in its parent composite; default from its id (`stepOf`). */
  readonly step?: number;
}

/** One task message to publish: `newTaskMessage` input fields plus the message's `canvas`. */
export interface PlannedMessage {
  readonly id: string;
  readonly task: string;
  readonly queue: string;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  /** The signature's options (timing relative to the publish). */
  readonly options: SignatureOptions;
  readonly canvas: MessageCanvas;
}

/** A join record to create (KV create, never overwrite) in the home bucket, `createdAt` left for the caller. */
export type PlannedJoin = Omit<JoinRecord, "createdAt">;

/** What `planLaunch` returns: create `joins` first, then publish `messages`; `ready` joins (no members) complete at once. */
export interface Plan {
  readonly joins: PlannedJoin[];
  readonly messages: PlannedMessage[];
  /** Ids of joins created with size 0 (an empty map/starmap/chunks): already complete, to be continued by the caller. */
  readonly ready: string[];
}

/**
 * The step index of a node from its derived id (api/canvas.ts ids): the number after the last `-`
 * (`<id>-3` → 3); 0 for a chord body (`-b`) or a root. Link `k` / linkError `k` (`-l<k>`, `-e<k>`) → k.
 */
export function stepOf(id: string): number {
  const m = /-(?:[le])?(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}

/**
 * Plans the launch of `node` with `input` at `place` (the design's LAUNCH):
 * - task: one message; args = `[input, ...args]` unless immutable or no input (a value above
 *   MAX_INLINE_INPUT_BYTES, and any join input, become `argsRef` with a `null` placeholder;
 *   an error input prepends `[taskId, error]`); a chunks task never takes an input;
 * - chain: its first step, with the other steps put before `place.then`;
 * - group: when it has a continuation (then, join, link or linkError), a join record (size =
 *   members) first, and every member with `join {id, index}`; else just its members;
 * - chord: its header as a group whose join runs `[body, ...place.then]`.
 * Pure; never throws.
 */
export function planLaunch(node: FrozenNode, input: LaunchInput | undefined, place: Place): Plan {
  const plan: Plan = { joins: [], messages: [], ready: [] };
  launch(node, input, place, plan);
  return plan;
}

function launch(node: FrozenNode, input: LaunchInput | undefined, place: Place, plan: Plan): void {
  const then = place.then ?? [];
  switch (node.kind) {
    case "task":
      plan.messages.push(taskMessage(node, input, place));
      return;
    case "chain": {
      const [first, ...rest] = node.steps;
      if (!first) return;
      launch(first, input, { ...place, then: [...rest, ...then], step: 0 }, plan);
      return;
    }
    case "group":
    case "chord": {
      const members = node.kind === "group" ? node.members : node.header;
      const joinThen = node.kind === "chord" ? [node.body, ...then] : then;
      const continues = joinThen.length > 0 || place.join !== undefined || (node.link?.length ?? 0) > 0 || (node.linkError?.length ?? 0) > 0;
      if (continues) {
        plan.joins.push({
          v: 1,
          id: node.id,
          root: place.root,
          home: place.home,
          size: members.length,
          done: emptyBitmap(members.length),
          count: 0,
          then: [...joinThen],
          ...(place.join ? { join: { id: place.join.id, index: place.join.index } } : {}),
          ...(node.link?.length ? { link: node.link } : {}),
          ...(node.linkError?.length ? { linkError: node.linkError } : {}),
          ...(place.parent !== undefined ? { parent: place.parent } : {}),
          step: place.step ?? stepOf(node.id),
        });
        if (members.length === 0) plan.ready.push(node.id);
      }
      members.forEach((m, i) => {
        const p: Place = { root: place.root, home: place.home, queue: place.queue, ...(place.parent !== undefined ? { parent: place.parent } : {}), step: i, ...(continues ? { join: { id: node.id, index: i } } : {}) };
        launch(m, input, p, plan);
      });
      return;
    }
  }
}

function taskMessage(node: FrozenTask, input: LaunchInput | undefined, place: Place): PlannedMessage {
  let args = [...(node.args ?? [])];
  let argsRef: ResultRef | undefined;
  const queue = node.options?.queue ?? place.queue;
  if (input && !node.immutable && !node.chunk) {
    if (input.kind === "error") args = [input.taskId, input.error, ...args];
    else if (input.kind === "join") {
      args = [null, ...args];
      argsRef = { kind: "join", id: input.id };
    } else if (jsonBytes(input.value) > MAX_INLINE_INPUT_BYTES) {
      args = [null, ...args];
      argsRef = { kind: "task", id: input.from.id, queue: input.from.queue };
    } else args = [input.value, ...args];
  }
  const then = place.then ?? [];
  const canvas: MessageCanvas = {
    root: place.root,
    home: place.home,
    ...(place.parent !== undefined ? { parent: place.parent } : {}),
    step: place.step ?? stepOf(node.id),
    ...(then.length ? { then: [...then] } : {}),
    ...(place.join ? { join: { id: place.join.id, index: place.join.index } } : {}),
    ...(node.link?.length ? { link: node.link } : {}),
    ...(node.linkError?.length ? { linkError: node.linkError } : {}),
    ...(node.chunk ? { chunk: true } : {}),
    ...(argsRef ? { argsRef } : {}),
  };
  return { id: node.id, task: node.task, queue, args, kwargs: { ...(node.kwargs ?? {}) }, options: node.options ?? {}, canvas };
}

/** Size of `v` as JSON, in bytes (undefined counts as `null`). Pure. */
export function jsonBytes(v: unknown): number {
  const s = JSON.stringify(v === undefined ? null : v);
  // a string's length bounds its UTF-8 size from below, and a third of it from above
  if (s.length * 3 <= MAX_INLINE_INPUT_BYTES) return s.length;
  return Buffer.byteLength(s);
}

/**
 * Every task node of a frozen tree once (by id), in tree order, callbacks included. Pure.
 * @param frozen a frozen tree
 */
export function frozenTasks(frozen: FrozenNode): FrozenTask[] {
  const out: FrozenTask[] = [];
  const seen = new Set<string>();
  const walk = (n: FrozenNode): void => {
    if (n.kind === "task") {
      if (!seen.has(n.id)) {
        seen.add(n.id);
        out.push(n);
      }
    } else if (n.kind === "chain") n.steps.forEach(walk);
    else if (n.kind === "group") n.members.forEach(walk);
    else {
      n.header.forEach(walk);
      walk(n.body);
    }
    for (const c of n.link ?? []) walk(c);
    for (const c of n.linkError ?? []) walk(c);
  };
  walk(frozen);
  return out;
}

/**
 * Every task of a frozen tree, in launch order (depth first: a chain's steps, a group's members,
 * a chord's header then body; each node's link then linkError callbacks after it), once per id
 * (callbacks pushed down to several places keep one id), with its queue.
 * @param frozen the frozen canvas
 * @param defaultQueue the queue of tasks whose options name none (the canvas's)
 */
export function canvasTaskIds(frozen: FrozenNode, defaultQueue: string): Array<{ id: string; task: string; queue: string }> {
  const out: Array<{ id: string; task: string; queue: string }> = [];
  collect(frozen, defaultQueue, true, new Set(), out);
  return out;
}

function collect(n: FrozenNode, q: string, errbacks: boolean, seen: Set<string>, out: Array<{ id: string; task: string; queue: string }>): void {
  if (n.kind === "task") {
    if (!seen.has(n.id)) {
      seen.add(n.id);
      out.push({ id: n.id, task: n.task, queue: n.options?.queue ?? q });
    }
  } else if (n.kind === "chain") n.steps.forEach((s) => collect(s, q, errbacks, seen, out));
  else if (n.kind === "group") n.members.forEach((s) => collect(s, q, errbacks, seen, out));
  else {
    n.header.forEach((s) => collect(s, q, errbacks, seen, out));
    collect(n.body, q, errbacks, seen, out);
  }
  for (const c of n.link ?? []) collect(c, q, errbacks, seen, out);
  if (errbacks) for (const c of n.linkError ?? []) collect(c, q, errbacks, seen, out);
}

/**
 * The tasks that never run once a step failed: every task of `nodes` (the failed step's `then`, or a
 * failed join's), their success callbacks included, their linkError callbacks not (those run only on
 * a failure of their own node). In order, once per id, minus `except` (callbacks that do fire).
 * @param nodes the continuation that will not run
 * @param defaultQueue the canvas's queue
 * @param except ids not to cancel
 */
export function cancelledBy(nodes: readonly FrozenNode[], defaultQueue: string, except: Iterable<string> = []): Array<{ id: string; task: string; queue: string }> {
  const out: Array<{ id: string; task: string; queue: string }> = [];
  const seen = new Set(except);
  for (const n of nodes) collect(n, defaultQueue, false, seen, out);
  return out;
}

/**
 * The id whose result is the canvas's result: a task's own id; a chain's last step's target; a
 * group's join (its size = members); a chord's body's target.
 */
export function resultTarget(frozen: FrozenNode): { kind: "task"; id: string } | { kind: "join"; id: string; size: number } {
  switch (frozen.kind) {
    case "task":
      return { kind: "task", id: frozen.id };
    case "chain":
      return resultTarget(frozen.steps[frozen.steps.length - 1] as FrozenNode);
    case "group":
      return { kind: "join", id: frozen.id, size: frozen.members.length };
    case "chord":
      return resultTarget(frozen.body);
  }
}

/** A join bitmap of `size` bits, all clear, base64 (bit i of byte i>>3, LSB first). */
export function emptyBitmap(size: number): string {
  return Buffer.alloc(Math.ceil(size / 8)).toString("base64");
}

/**
 * Sets bits `indices` in join record `r` (pure: a new record). `added` = how many were not set
 * before; `complete` = true when this update makes `count` reach `size` (so exactly one update
 * of a join ever has `complete`).
 */
export function setJoinBits(r: JoinRecord, indices: Iterable<number>): { record: JoinRecord; added: number; complete: boolean } {
  const bits = Buffer.from(r.done, "base64");
  const need = Math.ceil(r.size / 8);
  const b = bits.length >= need ? bits : Buffer.concat([bits, Buffer.alloc(need - bits.length)]);
  let added = 0;
  for (const i of indices) {
    if (i < 0 || i >= r.size) continue;
    const mask = 1 << (i & 7);
    if (((b[i >> 3] as number) & mask) === 0) {
      b[i >> 3] = (b[i >> 3] as number) | mask;
      added++;
    }
  }
  const count = r.count + added;
  return { record: { ...r, done: b.toString("base64"), count }, added, complete: added > 0 && count >= r.size };
}

/** True when bit `i` of join record `r` is set. */
export function joinBit(r: JoinRecord, i: number): boolean {
  const b = Buffer.from(r.done, "base64");
  return (((b[i >> 3] ?? 0) >> (i & 7)) & 1) === 1;
}
