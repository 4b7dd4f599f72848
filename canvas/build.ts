/**
 * The canvas builders (Celery's canvas): `signature`, `chain`, `group`, `chord`, `map`, `starmap`,
 * `chunks`. Each returns a builder whose `toJSON()` is the wire form of api/canvas.ts (a
 * `CanvasNode`), so `JSON.stringify(chain(...))` gives what `celeriac enqueue --canvas` reads, and
 * `client.apply(builder)` launches it.
 * ```ts
 * const add = defineTask("math.add", ([a, b]: [number, number]) => a + b);
 * const mul = defineTask("math.mul", ([a, b]: [number, number]) => a * b);
 * // add(2, 2), then mul(<that result>, 4) = 16: each step's result is prepended to the next one's args
 * const c = chain(add.s([2, 2]), mul.s([4]));
 * const h = await client.apply(c);
 * await h.result(); // 16
 * ```
 * `link` / `linkError` / `set` change the builder they are called on and return it (Celery's
 * `sig.link(cb)` changes `sig` too, but returns `cb`).
 *
 * Pure: no client, no NATS. This module imports only types from the worker (so `define-task.ts`
 * can import it without a cycle); a `defineTask` value is recognised by its mark.
 */
import { checkCanvas, type CanvasNode, type SignatureOptions, type TaskNode } from "../api/canvas.js";
import type { SignatureOf, TaskDefinition, TaskSignature } from "../worker/define-task.js";

/** The mark `defineTask` puts on its values (`Symbol.for`, so the same symbol as define-task.ts's). */
const TASK_MARK = Symbol.for("celeriac.task");

/** Every suffix of an argument tuple: what a chain step may give when its parent's result is prepended. */
export type ArgsSuffix<T extends readonly unknown[]> = T extends readonly [unknown, ...infer R] ? T | ArgsSuffix<R> : T;

/** What the builders accept as a child: a builder, or a node already in wire form. */
export type CanvasLike = Canvas<unknown> | CanvasNode;

/** The result type of a builder (`unknown` for a wire node). */
export type ResultOf<C> = C extends Canvas<infer R> ? R : unknown;

/** The results of a list of canvases, in order (a tuple stays a tuple). */
export type ResultsOf<T extends readonly unknown[]> = { -readonly [K in keyof T]: ResultOf<T[K]> };

type LastOf<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T[number];

/**
 * Checks that `c` is a child a builder takes (a builder, or an object with a `kind`; a wire node is
 * checked in full by `checkCanvas` when applied).
 * @throws TypeError naming `where`
 */
function checkChild(c: unknown, where: string): asserts c is CanvasLike {
  if (c instanceof Canvas) return;
  if (c !== null && typeof c === "object" && !Array.isArray(c) && typeof (c as { kind?: unknown }).kind === "string") return;
  throw new TypeError(`${where}: ${describe(c)} is not a canvas: pass a signature (task.s(...), signature(...)), chain, group, chord, map, starmap or chunks`);
}

/** The wire form of a child: a builder's `toJSON()`, or the node itself. */
function nodeOf(c: CanvasLike, where: string): CanvasNode {
  checkChild(c, where);
  return c instanceof Canvas ? c.toJSON() : c;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object without a kind";
  if (typeof v === "function") return "a function";
  return JSON.stringify(v) ?? typeof v;
}

/**
 * Base of every builder. `R` is the result type of the canvas (what `client.apply(...).result()`
 * resolves to); it is a type only.
 */
export abstract class Canvas<R = unknown> {
  /** Type-only marker of the result type; never set. */
  declare readonly __result?: R;
  #link: CanvasLike[] = [];
  #linkError: CanvasLike[] = [];

  /**
   * Adds a callback run after this node succeeded, with its result prepended to the callback's args
   * (unless the callback is immutable, `task.si(...)`). On a chain it runs after the last step; on
   * a group or chord with the list of results. Changes this builder.
   * @returns this builder
   * @throws TypeError when `callback` is not a canvas
   */
  link(callback: CanvasLike): this {
    checkChild(callback, "link");
    this.#link.push(callback);
    return this;
  }

  /**
   * Adds a callback run once when this node failed (after its retries): its args get
   * `[failedTaskId, {type, message, stack?}]` prepended. On a chain it covers every step; on a
   * group or chord the first member failure. Changes this builder.
   * @returns this builder
   * @throws TypeError when `callback` is not a canvas
   */
  linkError(callback: CanvasLike): this {
    checkChild(callback, "linkError");
    this.#linkError.push(callback);
    return this;
  }

  /** The wire node of this builder, without its callbacks. */
  protected abstract body(): CanvasNode;

  /**
   * The wire form (api/canvas.ts `CanvasNode`), a fresh plain object each call; children and
   * callbacks are converted too. `JSON.stringify` calls it.
   */
  toJSON(): CanvasNode {
    const n = this.body();
    if (this.#link.length) n.link = this.#link.map((c, i) => nodeOf(c, `link[${i}]`));
    if (this.#linkError.length) n.linkError = this.#linkError.map((c, i) => nodeOf(c, `linkError[${i}]`));
    return n;
  }
}

/** One task with its arguments and options (Celery's `signature` / `task.s(...)`). */
export class Signature<R = unknown> extends Canvas<R> {
  /** Registered task name. */
  readonly task: string;
  /** Positional args given here (the parent's result is prepended before them unless `immutable`). */
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** Celery's `si`: the parent's result is not prepended. */
  readonly immutable: boolean;
  #options: SignatureOptions;

  /**
   * Use `signature(...)`, `task.s(...)` or `task.si(...)`.
   * @throws InvalidCanvasError (a TypeError) naming the field when the name, args, kwargs or options are malformed
   */
  constructor(task: string, args: readonly unknown[] = [], kwargs: Readonly<Record<string, unknown>> = {}, options: SignatureOptions = {}, immutable = false) {
    super();
    checkCanvas({ kind: "task", task, args, kwargs, options, immutable }, `signature(${JSON.stringify(task)})`);
    this.task = task;
    this.args = args;
    this.kwargs = kwargs;
    this.immutable = immutable;
    this.#options = { ...options };
  }

  /** The step's options (queue, countdown, retry, …; see SignatureOptions). */
  get options(): Readonly<SignatureOptions> {
    return this.#options;
  }

  /**
   * Merges options into this signature's (Celery's `sig.set(...)`): queue, countdownSeconds, eta,
   * expires, timeoutSeconds, retry, priority, concurrencyKey, unique. Changes this builder.
   * @returns this signature
   * @throws InvalidCanvasError (a TypeError) naming the option when one is unknown or of the wrong type
   */
  set(options: SignatureOptions): this {
    const merged = { ...this.#options, ...options };
    checkCanvas({ ...this.body(), options: merged }, `signature(${JSON.stringify(this.task)}).set`);
    this.#options = merged;
    return this;
  }

  protected body(): TaskNode {
    return {
      kind: "task",
      task: this.task,
      ...(this.args.length ? { args: [...this.args] } : {}),
      ...(Object.keys(this.kwargs).length ? { kwargs: { ...this.kwargs } } : {}),
      ...(Object.keys(this.#options).length ? { options: { ...this.#options } } : {}),
      ...(this.immutable ? { immutable: true } : {}),
    };
  }

  override toJSON(): TaskNode {
    return super.toJSON() as TaskNode;
  }
}

/** Steps in sequence; each step's result is prepended to the next one's args. Result: the last step's. */
export class Chain<R = unknown> extends Canvas<R> {
  readonly steps: readonly CanvasLike[];
  /** Use `chain(...)`. @throws TypeError when there is no step or one is not a canvas */
  constructor(steps: readonly CanvasLike[]) {
    super();
    if (steps.length === 0) throw new TypeError("chain(): give at least one step, e.g. chain(add.s([2, 2]), mul.s([4]))");
    steps.forEach((s, i) => checkChild(s, `chain: step ${i}`));
    this.steps = [...steps];
  }
  protected body(): CanvasNode {
    return { kind: "chain", steps: this.steps.map((s, i) => nodeOf(s, `chain: step ${i}`)) };
  }
}

/** Members in parallel. Result: the list of their results, in order. */
export class Group<R extends unknown[] = unknown[]> extends Canvas<R> {
  readonly members: readonly CanvasLike[];
  /** Use `group(...)`. @throws TypeError when there is no member or one is not a canvas */
  constructor(members: readonly CanvasLike[]) {
    super();
    if (members.length === 0) throw new TypeError("group(): give at least one member, e.g. group(add.s([1, 1]), add.s([2, 2])) or group([...])");
    members.forEach((s, i) => checkChild(s, `group: member ${i}`));
    this.members = [...members];
  }
  protected body(): CanvasNode {
    return { kind: "group", members: this.members.map((s, i) => nodeOf(s, `group: member ${i}`)) };
  }
}

/** A group (the header) then the body, once, with the list of header results prepended to its args. Result: the body's. */
export class Chord<R = unknown> extends Canvas<R> {
  readonly header: readonly CanvasLike[];
  readonly bodyNode: CanvasLike;
  /** Use `chord(...)`. @throws TypeError when the header is empty or a part is not a canvas */
  constructor(header: readonly CanvasLike[], body: CanvasLike) {
    super();
    if (header.length === 0) throw new TypeError("chord(): the header needs at least one signature, e.g. chord([add.s([1, 1]), add.s([2, 2])], tsum.s())");
    header.forEach((s, i) => checkChild(s, `chord: header ${i}`));
    checkChild(body, "chord: body");
    this.header = [...header];
    this.bodyNode = body;
  }
  protected body(): CanvasNode {
    return { kind: "chord", header: this.header.map((s, i) => nodeOf(s, `chord: header ${i}`)), body: nodeOf(this.bodyNode, "chord: body") };
  }
}

/** `task(item, ...task.args)` once per item, in parallel (Celery's `task.map`). Result: the list. */
export class MapCanvas<R = unknown> extends Canvas<R[]> {
  /** Use `map(...)` or `starmap(...)`. */
  constructor(
    readonly kind: "map" | "starmap",
    readonly sig: Signature<R>,
    readonly items: readonly unknown[],
  ) {
    super();
    checkCanvas(this.body(), kind);
  }
  protected body(): CanvasNode {
    return this.kind === "map" ? { kind: "map", task: this.sig.toJSON(), items: [...this.items] } : { kind: "starmap", task: this.sig.toJSON(), items: [...(this.items as unknown[][])] };
  }
}

/** `items` split into tasks of `n` argument lists, each run in turn (Celery's `task.chunks`). Result: a list of lists. */
export class Chunks<R = unknown> extends Canvas<R[][]> {
  /** Use `chunks(...)`. */
  constructor(
    readonly sig: Signature<R>,
    readonly items: readonly (readonly unknown[])[],
    readonly n: number,
  ) {
    super();
    checkCanvas(this.body(), "chunks");
  }
  protected body(): CanvasNode {
    return { kind: "chunks", task: this.sig.toJSON(), items: this.items.map((it) => (Array.isArray(it) ? [...it] : it) as unknown[]), n: this.n };
  }
}

/** A task given by name or by its `defineTask` value. */
export type TaskRef = string | TaskDefinition<string, TaskSignature>;

function taskName(task: unknown): string {
  if (typeof task === "string") return task;
  if (typeof task === "object" && task !== null && (task as Record<symbol, unknown>)[TASK_MARK] === true) return (task as { name: string }).name;
  throw new TypeError(`signature(): ${describe(task)} is not a task: pass a registered task name ("math.add") or a defineTask value`);
}

/**
 * A signature: one task call for a canvas (Celery's `signature(name, args, kwargs, **options)`).
 * `signature(add, [2, 2])` is `add.s([2, 2])`. In a chain (or as a chord body, or a callback) the
 * parent's result is prepended to `args`.
 * @param task registered name (typed by `TaskRegistry` when declared) or a `defineTask` value (typed by its handler)
 * @param args positional args, an array (default none)
 * @param kwargs keyword args, an object (default none)
 * @param options per-step options (queue, countdownSeconds, eta, expires, timeoutSeconds, retry, priority, concurrencyKey, unique)
 * @throws TypeError when `task` is neither; InvalidCanvasError (a TypeError) naming the field when
 *   the name, args, kwargs or options are malformed
 */
export function signature<S extends TaskSignature>(task: TaskDefinition<string, S>, args?: ArgsSuffix<S["args"]>, kwargs?: S["kwargs"], options?: SignatureOptions): Signature<S["result"]>;
export function signature<N extends string>(task: N, args?: ArgsSuffix<SignatureOf<N>["args"]>, kwargs?: SignatureOf<N>["kwargs"], options?: SignatureOptions): Signature<SignatureOf<N>["result"]>;
export function signature(task: TaskRef, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: SignatureOptions): Signature {
  return new Signature(taskName(task), args ?? [], kwargs ?? {}, options ?? {}, false);
}

/**
 * An immutable signature (Celery's `si`): the parent's result is not prepended to its args.
 * @param args the complete positional args
 * @throws as `signature`
 */
export function immutableSignature<S extends TaskSignature>(task: TaskDefinition<string, S>, args?: S["args"], kwargs?: S["kwargs"], options?: SignatureOptions): Signature<S["result"]>;
export function immutableSignature<N extends string>(task: N, args?: SignatureOf<N>["args"], kwargs?: SignatureOf<N>["kwargs"], options?: SignatureOptions): Signature<SignatureOf<N>["result"]>;
export function immutableSignature(task: TaskRef, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: SignatureOptions): Signature {
  return new Signature(taskName(task), args ?? [], kwargs ?? {}, options ?? {}, true);
}

/**
 * Steps run one after the other; each step's result is prepended to the next one's args, so
 * `chain(add.s([2, 2]), mul.s([4]))` runs `add(2, 2)` then `mul(4, 4)`: 16. A failing step stops
 * the rest (they end Cancelled, naming it). Result: the last step's.
 * @throws TypeError when no step is given or a step is not a canvas
 */
export function chain<T extends readonly CanvasLike[]>(...steps: T): Chain<ResultOf<LastOf<T>>> {
  return new Chain(steps);
}

/**
 * Members run in parallel: `group(a, b, c)` or `group([a, b, c])` (both, as in Celery). Result:
 * the list of the members' results, in order.
 * @throws TypeError when no member is given or a member is not a canvas
 */
export function group<T extends readonly CanvasLike[]>(members: T): Group<ResultsOf<T>>;
export function group<T extends readonly CanvasLike[]>(...members: T): Group<ResultsOf<T>>;
export function group(...members: unknown[]): Group {
  const list = members.length === 1 && Array.isArray(members[0]) ? (members[0] as CanvasLike[]) : (members as CanvasLike[]);
  return new Group(list);
}

/**
 * The header's members run in parallel; once every one succeeded, `body` runs once with the list
 * of their results (in order) prepended to its args. A header failure fails the chord: the body
 * never runs, its linkError callbacks run once. Result: the body's.
 * @param header a `group(...)` or an array of canvases
 * @throws TypeError when the header is empty or a part is not a canvas
 */
export function chord<B extends CanvasLike>(header: Group<unknown[]> | readonly CanvasLike[], body: B): Chord<ResultOf<B>> {
  if (header instanceof Group) {
    const h = header.toJSON();
    if (h.link || h.linkError) throw new TypeError("chord(): the header group has link/linkError callbacks: put them on the chord, or on the header's members");
    return new Chord(header.members, body);
  }
  if (!Array.isArray(header)) throw new TypeError("chord(): the header must be a group(...) or an array of signatures");
  return new Chord(header, body);
}

/**
 * `sig` once per item, in parallel, the item as first argument: `sig.task(item, ...sig.args)`
 * (Celery's `task.map(items)`, but in parallel). Result: the list of results, in order.
 * @throws TypeError when `sig` is not a signature; InvalidCanvasError when `items` is not an array
 *   or holds more than MAX_GROUP_SIZE
 */
export function map<R>(sig: Signature<R>, items: readonly unknown[]): MapCanvas<R> {
  if (!(sig instanceof Signature)) throw new TypeError("map(): the first argument must be a signature, e.g. map(square.s(), [1, 2, 3])");
  return new MapCanvas("map", sig, items);
}

/**
 * `sig` once per item, in parallel, the item (an argument list) spread: `sig.task(...item, ...sig.args)`
 * (Celery's `task.starmap(items)`). Result: the list of results, in order.
 * @throws TypeError when `sig` is not a signature; InvalidCanvasError when an item is not an array
 */
export function starmap<R>(sig: Signature<R>, items: readonly (readonly unknown[])[]): MapCanvas<R> {
  if (!(sig instanceof Signature)) throw new TypeError("starmap(): the first argument must be a signature, e.g. starmap(add.s(), [[1, 2], [3, 4]])");
  return new MapCanvas("starmap", sig, items);
}

/**
 * `items` (argument lists) split into ⌈items/n⌉ tasks of at most `n`; each task runs
 * `sig.task(...item)` for its items in turn (Celery's `task.chunks(items, n)`). The tasks run in
 * parallel. Result: the list (one per task) of lists of results.
 * @param n items per task, a positive integer
 * @throws TypeError when `sig` is not a signature; InvalidCanvasError when an item is not an array
 *   or `n` is not a positive integer
 */
export function chunks<R>(sig: Signature<R>, items: readonly (readonly unknown[])[], n: number): Chunks<R> {
  if (!(sig instanceof Signature)) throw new TypeError("chunks(): the first argument must be a signature, e.g. chunks(add.s(), [[1, 2], [3, 4]], 10)");
  return new Chunks(sig, items, n);
}

/** True when `v` is a canvas builder (from this module). */
export function isCanvas(v: unknown): v is Canvas<unknown> {
  return v instanceof Canvas;
}

/**
 * The wire node of a builder or of a node already in wire form (not checked: `checkCanvas` it).
 * @throws TypeError when `c` is neither
 */
export function toCanvasNode(c: CanvasLike): CanvasNode {
  return nodeOf(c, "canvas");
}
