/**
 * The decision core of a flow-controlled queue's dispatcher: which held tasks to release into the
 * work stream now, and what is held back and why. Pure: no I/O, no timers; the clock is an argument
 * (ms epoch) of every call that needs one. The dispatcher (operator/flow/dispatcher.ts) feeds it the
 * held messages, the work stream's unfinished tasks and the results bucket's terminal records, and
 * publishes what {@link FlowState.next} returns. The model is explained in docs/flow-control.md.
 *
 * Rules, in the order a release is decided:
 * 1. **Rates**: a token bucket for the queue (`spec.rateLimit`: rate, capacity = burst) and one per
 *    task name (`spec.rateLimits`, or a worker's `defineTask(…, {rateLimit})`: capacity 1, as
 *    Celery's `Task.rate_limit`, kombu `TokenBucket`), full at the start and refilled continuously.
 *    A release takes a token from both. A task name whose bucket is empty does not block other task
 *    names: it is skipped (FIFO within the name is kept).
 * 2. **Key slots**: a task with a concurrency key needs a free slot of its key: limit
 *    `overrides[key] ?? limit` (0 pauses the key), a slot taken at release and freed by
 *    {@link FlowState.finished}. Tasks without a key form one group of their own, unlimited.
 * 3. **Priority**: levels high → low, with the starvation guard: while a higher level and a lower
 *    one both have releasable tasks, `starvationGuardPercent`% of releases (a deterministic credit
 *    counter: exactly p of every 100 such releases) go to the longest-waiting releasable task of
 *    the lower levels. 0: strict priority.
 * 4. **Fairness** within a level, across the groups (keys, and the unkeyed group) that have a
 *    releasable task: stride scheduling (Waldspurger & Weihl, "Stride Scheduling", MIT 1995). Each
 *    group has a pass; the group with the smallest pass goes next and its pass grows by 1/weight.
 *    RoundRobin is all weights 1 (one task per group in turn); Weighted uses `weights` (default 1).
 *    Like nginx's smooth weighted round robin it interleaves (3:1 gives A A B A …, not A A A B in
 *    bursts) and gives exact long-run shares, but costs O(log groups) per release instead of
 *    O(groups). A group that arrives (or whose key gets a free slot again) starts at the level's
 *    current pass: it goes out in the next rounds and gets no credit for the time it was away, so
 *    key B's 10 tasks go out between key A's next 10, not after A's 2,000.
 * 5. **FIFO** within a key (and task name), by arrival (`hold` order; an unreleased task goes back
 *    to the head).
 *
 * Cost: per-(level, key, task name) FIFOs with a head index, per-level heaps of groups (lazy
 * deletion); a release is O(log groups + task names in the group); nothing scans the held set per
 * release. `snapshot` is O(keys), `waiting` O(tasks not reported yet), `unfinishedOlderThan`
 * O(released): the dispatcher calls those every few seconds, not per release.
 */
import {
  DEFAULT_RATE_BURST,
  DEFAULT_STARVATION_GUARD_PERCENT,
  FAIRNESS_POLICIES,
  MAX_PRIORITY_LEVELS,
  parseRate,
  STATUS_TOP_KEYS,
  type QueueFlowSpec,
  type QueueFlowStatus,
  type Waiting,
} from "../../api/flow.js";
import { TokenBucket } from "./token-bucket.js";

/**
 * A queue's flow policy, resolved from its spec (rates per second). Build it with
 * {@link flowPolicy}.
 */
export interface FlowPolicy {
  /** The queue's rate limit: `perSecond` starts per second, `burst` = the bucket's capacity (≥ 1). Absent: none. */
  queueRate?: { perSecond: number; burst: number };
  /** Rate limit per task name, starts per second (capacity 1 each). */
  taskRates: ReadonlyMap<string, number>;
  /** Most running tasks per key (`concurrencyKeys.limit`); absent: keys are unlimited. */
  keyLimit?: number;
  /** Per-key limits that replace `keyLimit`; 0 pauses the key. */
  keyOverrides: Readonly<Record<string, number>>;
  /** Fairness across keys within a priority level. */
  fairness: "RoundRobin" | "Weighted";
  /** Weighted fairness: a key's weight (default 1; the unkeyed group weighs 1). */
  weights: Readonly<Record<string, number>>;
  /** Priority levels (1 without `spec.priorities`). A held task's level is its priority, clamped to 0 … MAX_PRIORITY_LEVELS-1. */
  levels: number;
  /** Percent of releases kept for lower levels while higher ones have releasable tasks (0 … 50; 0 = strict). */
  starvationGuardPercent: number;
}

/**
 * Resolves a Queue's flow-control spec into a {@link FlowPolicy}. Pure.
 * @param spec the Queue spec (or its flow fields)
 * @param taskDefaults per task name, starts per second from the workers' `defineTask(…, {rateLimit})`
 *   (published as `task-defaults.*` in the results bucket); `spec.rateLimits` wins for a name in both
 * @throws Error naming the field (`spec.rateLimit.rate`, `spec.rateLimits["emails.send"]`,
 *   `spec.concurrencyKeys.limit`, …) and the accepted values when one is malformed
 */
export function flowPolicy(spec: QueueFlowSpec, taskDefaults: ReadonlyMap<string, number> = new Map()): FlowPolicy {
  let queueRate: FlowPolicy["queueRate"];
  if (spec.rateLimit) {
    const perSecond = parseRate(spec.rateLimit.rate, "spec.rateLimit.rate");
    const burst = spec.rateLimit.burst ?? DEFAULT_RATE_BURST;
    if (!(Number.isInteger(burst) && burst >= 1)) throw new Error(`spec.rateLimit.burst: ${String(burst)} is not a burst: use an integer ≥ 1 (starts allowed at once above the rate; default ${DEFAULT_RATE_BURST})`);
    queueRate = { perSecond, burst };
  }
  const taskRates = new Map<string, number>();
  for (const [name, perSecond] of taskDefaults) {
    if (!(typeof perSecond === "number" && Number.isFinite(perSecond) && perSecond > 0)) {
      throw new Error(`rateLimit of task "${name}" (defineTask, task-defaults): ${String(perSecond)} is not a rate: use a positive number of starts per second (Celery syntax "10/s", "100/m" in defineTask)`);
    }
    taskRates.set(name, perSecond);
  }
  for (const [name, rate] of Object.entries(spec.rateLimits ?? {})) taskRates.set(name, parseRate(rate, `spec.rateLimits["${name}"]`));

  const ck = spec.concurrencyKeys;
  let keyLimit: number | undefined;
  const keyOverrides: Record<string, number> = {};
  const weights: Record<string, number> = {};
  let fairness: FlowPolicy["fairness"] = "RoundRobin";
  if (ck) {
    if (!(Number.isInteger(ck.limit) && ck.limit >= 1)) throw new Error(`spec.concurrencyKeys.limit: ${String(ck.limit)} is not a limit: use an integer ≥ 1 (most tasks of one key running at once)`);
    keyLimit = ck.limit;
    for (const [key, n] of Object.entries(ck.overrides ?? {})) {
      if (!(Number.isInteger(n) && n >= 0)) throw new Error(`spec.concurrencyKeys.overrides["${key}"]: ${String(n)} is not a limit: use an integer ≥ 0 (0 pauses the key)`);
      keyOverrides[key] = n;
    }
    for (const [key, w] of Object.entries(ck.weights ?? {})) {
      if (!(Number.isInteger(w) && w >= 1)) throw new Error(`spec.concurrencyKeys.weights["${key}"]: ${String(w)} is not a weight: use an integer ≥ 1 (default 1)`);
      weights[key] = w;
    }
    const f = ck.fairness ?? "RoundRobin";
    if (!(FAIRNESS_POLICIES as readonly string[]).includes(f)) throw new Error(`spec.concurrencyKeys.fairness: "${String(f)}" is not a policy: use ${FAIRNESS_POLICIES.join(" or ")}`);
    fairness = f;
  }

  const p = spec.priorities;
  let levels = 1;
  let starvationGuardPercent = DEFAULT_STARVATION_GUARD_PERCENT;
  if (p) {
    if (!(Number.isInteger(p.levels) && p.levels >= 2 && p.levels <= MAX_PRIORITY_LEVELS)) throw new Error(`spec.priorities.levels: ${String(p.levels)} is not a number of levels: use an integer 2 … ${MAX_PRIORITY_LEVELS}`);
    levels = p.levels;
    starvationGuardPercent = p.starvationGuardPercent ?? DEFAULT_STARVATION_GUARD_PERCENT;
    if (!(Number.isInteger(starvationGuardPercent) && starvationGuardPercent >= 0 && starvationGuardPercent <= 50)) {
      throw new Error(`spec.priorities.starvationGuardPercent: ${String(starvationGuardPercent)} is not a share: use an integer 0 … 50 (0: strict priority; default ${DEFAULT_STARVATION_GUARD_PERCENT})`);
    }
  }
  return { ...(queueRate ? { queueRate } : {}), taskRates, ...(keyLimit !== undefined ? { keyLimit } : {}), keyOverrides, fairness, weights, levels, starvationGuardPercent };
}

/**
 * A held task as the dispatcher knows it.
 * @typeParam R the dispatcher's handle on the held message (to publish and ack it)
 */
export interface HeldTask<R = unknown> {
  /** Task id (the Nats-Msg-Id). */
  id: string;
  /** Task name (for its rate limit). */
  task: string;
  /** Priority level (message `flow.priority`); higher first. */
  priority: number;
  /** Concurrency key (message `flow.key`); absent: the unkeyed group. */
  key?: string;
  /** When it was held (ms epoch): its age for the starvation guard and `waiting`. */
  heldAtMs: number;
  /** The dispatcher's handle; replaced by a second {@link FlowState.hold} of the same id. */
  ref: R;
}

/** A held task in its FIFO. */
interface Entry<R> {
  t: HeldTask<R>;
  /** Order within its key: arrival order; unreleased tasks get smaller (negative) numbers. */
  seq: number;
  g: Group<R>;
  /** Released, dropped or moved out: skipped where it still sits in a FIFO. */
  gone: boolean;
  /** `waiting` has reported it. */
  reported: boolean;
}

/** A FIFO of entries with a head index; entries marked gone in place are skipped. */
class Fifo<R> {
  #items: Entry<R>[] = [];
  #head = 0;
  /** Entries not gone. */
  live = 0;

  push(e: Entry<R>): void {
    this.#items.push(e);
    this.live++;
  }

  unshift(e: Entry<R>): void {
    if (this.#head > 0) this.#items[--this.#head] = e;
    else this.#items.unshift(e);
    this.live++;
  }

  peek(): Entry<R> | undefined {
    while (this.#head < this.#items.length) {
      const e = this.#items[this.#head]!;
      if (!e.gone) return e;
      this.#head++;
    }
    this.#items = [];
    this.#head = 0;
    return undefined;
  }

  /** Removes the head (the caller marks it gone). */
  shift(): Entry<R> | undefined {
    const e = this.peek();
    if (!e) return undefined;
    this.#head++;
    this.live--;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }

  /** An entry of this FIFO was marked gone in place. */
  forget(): void {
    this.live--;
  }
}

/** A heap item: a group with the version it had when pushed (stale when the group changed since). */
interface Item<R> {
  g: Group<R>;
  ver: number;
  a: number;
  b: number;
}

/** A binary min-heap of items by (a, b). */
class Heap<R> {
  #h: Item<R>[] = [];

  get size(): number {
    return this.#h.length;
  }

  /** By a, then b; a values within 1e-9 are equal (stride passes are float sums of 1/weight: 3 × 1/3 must tie with 1). */
  static #less<R>(x: Item<R>, y: Item<R>): boolean {
    const d = x.a - y.a;
    return d < -1e-9 || (d <= 1e-9 && x.b < y.b);
  }

  push(it: Item<R>): void {
    const h = this.#h;
    h.push(it);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!Heap.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  peek(): Item<R> | undefined {
    return this.#h[0];
  }

  pop(): Item<R> | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      this.#down(0);
    }
    return top;
  }

  #down(i: number): void {
    const h = this.#h;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && Heap.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && Heap.#less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }

  /** Keeps the items `keep` accepts (drops stale ones), O(size). */
  filter(keep: (it: Item<R>) => boolean): void {
    this.#h = this.#h.filter(keep);
    for (let i = (this.#h.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }
}

/** The held tasks of one key (or the unkeyed group) at one level, per task name. */
class Group<R> {
  readonly byName = new Map<string, Fifo<R>>();
  /** Held tasks in the group. */
  size = 0;
  /** Bumped on every change of its heap keys or eligibility: older heap items are stale. */
  ver = 0;
  /** Stride scheduling pass, and the order it was set in (ties go first come first). */
  pass = 0;
  tie = 0;
  alive = true;
  constructor(
    readonly level: Level<R>,
    readonly key: string | undefined,
    readonly info: KeyInfo<R> | undefined,
  ) {}
}

/** One priority level. */
class Level<R> {
  readonly groups = new Map<string | undefined, Group<R>>();
  /** Eligible groups by (pass, tie): fairness. */
  readonly fair = new Heap<R>();
  /** Eligible groups by (oldest heldAtMs, seq): the starvation guard. */
  readonly age = new Heap<R>();
  /** Held tasks at this level. */
  held = 0;
  /** Virtual time: the largest pass picked so far; where arriving groups start. */
  vt = 0;
  constructor(readonly index: number) {}
}

/** A concurrency key across levels. */
interface KeyInfo<R> {
  key: string;
  held: number;
  /** Released (or found running) and not finished. */
  running: number;
  groups: Set<Group<R>>;
  /** running ≥ limit: its groups are out of the heaps. */
  atLimit: boolean;
}

/** A released task not yet finished. */
interface Released {
  key: string | undefined;
  /** Clock of {@link FlowState.unfinishedOlderThan} (ms epoch). */
  sinceMs: number;
  reported: boolean;
  /** Released again as a repeat of a held copy (see {@link FlowState.hold}); `unrelease` puts it back there. */
  echo: boolean;
  /** Created by such a repeat alone (no slot). */
  echoOnly: boolean;
}

/** A rate in the units a user wrote it most likely: "50/s", "100/m", "1000/h". */
function formatRate(perSecond: number): string {
  for (const [mult, unit] of [[1, "s"], [60, "m"], [3600, "h"]] as const) {
    const n = perSecond * mult;
    if (n >= 1 && Math.abs(n - Math.round(n)) < 1e-6) return `${Math.round(n)}/${unit}`;
  }
  return `${Number(perSecond.toPrecision(4))}/s`;
}

/** Level of a priority: an integer 0 … MAX_PRIORITY_LEVELS-1 (out-of-range values are clamped). */
function levelOf(priority: number): number {
  if (!Number.isFinite(priority)) return 0;
  return Math.min(MAX_PRIORITY_LEVELS - 1, Math.max(0, Math.trunc(priority)));
}

/** What {@link FlowState.next} returns. */
export interface FlowRelease<R> {
  /** Tasks to publish to the work stream now, in order (at most `budget`). */
  release: HeldTask<R>[];
  /**
   * When the earliest rate token that holds a task back refills (ms epoch, whole ms): call `next`
   * again then. Undefined when no rate limit holds anything back (then call again when something
   * is held, finishes, or the budget grows).
   */
  retryAtMs?: number;
}

/** One task `waiting` reports. */
export interface WaitingTask<R> {
  id: string;
  ref: R;
  /** For the task's record `status.waiting`; `since` = when it was held (RFC 3339). */
  waiting: Waiting;
}

/**
 * The dispatcher's state of one flow-controlled queue: held tasks, occupied key slots, rate buckets.
 * Pure and synchronous; every call that needs the time takes it (ms epoch).
 * @typeParam R the dispatcher's handle on a held message
 */
export class FlowState<R = unknown> {
  #policy: FlowPolicy;
  #queueBucket: TokenBucket | undefined;
  readonly #nameBuckets = new Map<string, TokenBucket>();
  readonly #levels: Level<R>[] = Array.from({ length: MAX_PRIORITY_LEVELS }, (_, i) => new Level<R>(i));
  readonly #tasks = new Map<string, Entry<R>>();
  readonly #keys = new Map<string, KeyInfo<R>>();
  readonly #released = new Map<string, Released>();
  /** Held copies of tasks already released (see `hold`): released first, without slot or token. */
  readonly #echoes = new Map<string, HeldTask<R>>();
  #unreported: Entry<R>[] = [];
  #unkeyedHeld = 0;
  #seq = 0;
  #lowSeq = 0;
  #tie = 0;
  #guardCredit = 0;
  /** The age heaps are kept (the starvation guard can apply: levels > 1 and a guard > 0). */
  #ageOn = false;
  #nowMs: number;
  /**
   * Heap items of groups all of whose task names were out of tokens, per the name whose token comes
   * first, and when (ms epoch): back in the heaps at the first `next` from then on, so a group that
   * waits for a rate costs nothing per `next` until its token is due.
   */
  readonly #rateParked = new Map<string, { atMs: number; fair: Item<R>[]; age: Item<R>[] }>();
  /** What held tasks back at the last `next`. */
  #lastQueueBlocked = false;
  #lastBlockedNames = new Set<string>();

  /**
   * @param policy from {@link flowPolicy}
   * @param nowMs the clock (ms epoch): rate buckets start full now
   */
  constructor(policy: FlowPolicy, nowMs: number) {
    this.#nowMs = nowMs;
    this.#policy = policy;
    this.setPolicy(policy, nowMs);
  }

  /** The policy in force. */
  get policy(): FlowPolicy {
    return this.#policy;
  }

  /** Held tasks (including held copies of released ones, which `next` returns first). */
  get heldCount(): number {
    return this.#tasks.size + this.#echoes.size;
  }

  /** Released (or found running) tasks whose finish has not been seen. */
  get releasedCount(): number {
    return this.#released.size;
  }

  /**
   * Applies a changed policy (a spec change, a new task default) at `nowMs`. Held tasks, key slots
   * and fairness positions are kept; a rate bucket whose rate changed keeps the tokens earned so far
   * (capped at its new capacity); a new bucket starts full; a key whose limit went up gets its tasks
   * released again.
   */
  setPolicy(policy: FlowPolicy, nowMs: number): void {
    this.#now(nowMs);
    const q = policy.queueRate;
    if (!q) this.#queueBucket = undefined;
    else if (this.#queueBucket) this.#queueBucket.reconfigure(q.perSecond, q.burst, nowMs);
    else this.#queueBucket = new TokenBucket(q.perSecond, q.burst, nowMs);
    for (const name of [...this.#nameBuckets.keys()]) if (!policy.taskRates.has(name)) this.#nameBuckets.delete(name);
    for (const [name, perSecond] of policy.taskRates) {
      const b = this.#nameBuckets.get(name);
      if (b) b.reconfigure(perSecond, 1, nowMs);
      else this.#nameBuckets.set(name, new TokenBucket(perSecond, 1, nowMs));
    }
    this.#policy = policy;
    this.#unparkRates(Infinity);
    if (policy.starvationGuardPercent <= 0) this.#guardCredit = 0;
    const ageOn = policy.levels > 1 && policy.starvationGuardPercent > 0;
    if (ageOn !== this.#ageOn) {
      this.#ageOn = ageOn;
      for (const lv of this.#levels) {
        lv.age.filter(() => false);
        if (ageOn) for (const g of lv.groups.values()) if (this.#eligible(g)) this.#agePush(g);
      }
    }
    for (const info of this.#keys.values()) this.#refreshKey(info);
  }

  /**
   * A held message arrived. A second hold of a held id replaces its `ref` (a redelivery) and keeps
   * its place. A hold of an id that is released and not finished (its held message was redelivered
   * because the ack after its publish was lost, or the work stream showed it unfinished at start)
   * is a repeat: `next` returns it first, without a token or a slot, so the dispatcher publishes it
   * again (the work stream's duplicate window drops the repeat) and acks the held copy.
   */
  hold(t: HeldTask<R>): void {
    const cur = this.#tasks.get(t.id);
    if (cur) {
      cur.t = { ...cur.t, ref: t.ref };
      return;
    }
    if (this.#echoes.has(t.id) || this.#released.has(t.id)) {
      this.#echoes.set(t.id, t);
      return;
    }
    this.#insert(t, ++this.#seq, false, false);
    if (this.#unreported.length > 2 * this.#tasks.size + 1024) this.#unreported = this.#unreported.filter((e) => !e.gone && !e.reported);
  }

  /**
   * The tasks to release now, at most `budget`: repeats first, then by priority (with the
   * starvation guard), fairness across keys and FIFO within a key, as the rate buckets and key slots
   * allow. Takes a token from the queue's and the task name's bucket and a slot of its key for
   * every task it returns; they count as running until {@link finished} or {@link unrelease}.
   * @param nowMs the clock (ms epoch)
   * @param budget most tasks to return (the room in the work stream); ≤ 0 returns none
   */
  next(nowMs: number, budget: number): FlowRelease<R> {
    this.#now(nowMs);
    this.#unparkRates(nowMs);
    const release: HeldTask<R>[] = [];
    for (const [id, t] of this.#echoes) {
      if (release.length >= budget) break;
      this.#echoes.delete(id);
      const rec = this.#released.get(id);
      if (rec) rec.echo = true;
      else this.#released.set(id, { key: undefined, sinceMs: nowMs, reported: true, echo: true, echoOnly: true });
      release.push(t);
    }
    const blockedNames = new Set<string>();
    const asideFair: Item<R>[] = [];
    const asideAge: Item<R>[] = [];
    let queueBlocked = false;
    const guard = this.#policy.starvationGuardPercent;
    while (release.length < budget) {
      let top = -1;
      let pick: { item: Item<R>; e: Entry<R> } | undefined;
      for (let l = MAX_PRIORITY_LEVELS - 1; l >= 0; l--) {
        const c = this.#peek(this.#levels[l]!, "fair", nowMs, blockedNames, asideFair);
        if (c) {
          top = l;
          pick = c;
          break;
        }
      }
      if (!pick) break;
      if (this.#queueBucket && !this.#queueBucket.available(nowMs)) {
        queueBlocked = true;
        break;
      }
      let viaFair = true;
      if (this.#ageOn && top > 0 && this.#lowerReleasable(top, nowMs, blockedNames, asideFair)) {
        this.#guardCredit += guard;
        if (this.#guardCredit >= 100) {
          this.#guardCredit -= 100;
          const old = this.#oldestBelow(top, nowMs, blockedNames, asideAge);
          if (old) {
            pick = old;
            viaFair = false;
          }
        }
      }
      if (viaFair) this.#levels[top]!.fair.pop();
      release.push(this.#release(pick.e, nowMs));
    }
    for (const it of asideFair) this.#parkRate(it, "fair", nowMs);
    for (const it of asideAge) this.#parkRate(it, "age", nowMs);
    for (const name of this.#rateParked.keys()) blockedNames.add(name);
    this.#lastQueueBlocked = queueBlocked;
    this.#lastBlockedNames = blockedNames;
    let retryAtMs: number | undefined;
    if (queueBlocked) retryAtMs = this.#queueBucket!.readyAtMs(nowMs);
    else {
      for (const name of blockedNames) {
        const at = this.#nameBuckets.get(name)?.readyAtMs(nowMs);
        if (at !== undefined && (retryAtMs === undefined || at < retryAtMs)) retryAtMs = at;
      }
    }
    return retryAtMs === undefined ? { release } : { release, retryAtMs };
  }

  /**
   * Its publish failed: the task goes back to the head of its key (before the key's other held
   * tasks) and its key slot is given back; the rate tokens it took are not.
   */
  unrelease(t: HeldTask<R>): void {
    const rec = this.#released.get(t.id);
    if (rec?.echo) {
      if (rec.echoOnly) this.#released.delete(t.id);
      else rec.echo = false;
      if (!this.#tasks.has(t.id) && !this.#echoes.has(t.id)) this.#echoes.set(t.id, t);
      return;
    }
    let reported = false;
    if (rec) {
      this.#released.delete(t.id);
      reported = rec.reported;
      this.#freeSlot(rec.key);
    }
    if (this.#tasks.has(t.id)) return;
    const newer = this.#echoes.get(t.id);
    if (newer) this.#echoes.delete(t.id);
    this.#insert(newer ?? t, --this.#lowSeq, true, reported);
  }

  /**
   * A task found unfinished in the work stream at start (released before a restart): it occupies a
   * slot of `key` until {@link finished}. A held copy of it becomes a repeat (see {@link hold}).
   * @param nowMs start of its {@link unfinishedOlderThan} clock (ms epoch); default the last clock seen
   */
  running(id: string, key: string | undefined, nowMs: number = this.#nowMs): void {
    if (this.#released.has(id)) return;
    this.#released.set(id, { key, sinceMs: nowMs, reported: true, echo: false, echoOnly: false });
    if (key !== undefined) {
      const info = this.#keyInfo(key);
      info.running++;
      this.#refreshKey(info);
    }
    const e = this.#tasks.get(id);
    if (e) {
      this.#removeHeld(e);
      this.#echoes.set(id, e.t);
    }
  }

  /**
   * The task's record turned terminal (Succeeded, Failed, Cancelled, Expired): its key slot is freed.
   * @returns true when the task was released (or running) and tracked
   */
  finished(id: string): boolean {
    const rec = this.#released.get(id);
    if (!rec) return false;
    this.#released.delete(id);
    this.#freeSlot(rec.key);
    return true;
  }

  /**
   * Released tasks whose finish has not been seen for `ageMs` (lost watch events): the dispatcher
   * re-checks their records. Restarts the clock of every id it returns.
   * @param nowMs the clock (ms epoch)
   * @param ageMs how long without a finish (ms), e.g. the queue's ack wait
   */
  unfinishedOlderThan(nowMs: number, ageMs: number): string[] {
    this.#now(nowMs);
    const out: string[] = [];
    for (const [id, rec] of this.#released) {
      if (nowMs - rec.sinceMs >= ageMs) {
        out.push(id);
        rec.sinceMs = nowMs;
      }
    }
    return out;
  }

  /**
   * A held task went away without a release (revoked, expired): it is forgotten, no slot is taken.
   * @returns the task, or undefined when it is not held
   */
  drop(id: string): HeldTask<R> | undefined {
    const echo = this.#echoes.get(id);
    if (echo) {
      this.#echoes.delete(id);
      return echo;
    }
    const e = this.#tasks.get(id);
    if (!e) return undefined;
    this.#removeHeld(e);
    return e.t;
  }

  /**
   * The queue's flow status (`Queue.status.flow`) at `nowMs`:
   * - `held`: held tasks;
   * - `runnable`: held tasks no key limit holds back — per key at most its free slots, unkeyed ones
   *   all — capped, when the queue has a rate limit, at ceil(rate × 1 s) + burst (what can start in
   *   the next second). Task-name rates do not cap it;
   * - `rateLimited`: a rate bucket held a task back at the last `next`, or the queue's bucket is
   *   empty now while tasks are held;
   * - `keys`: the busiest keys (most held first, then most running, then by name), at most
   *   STATUS_TOP_KEYS, with held, running and limit; keys without a limit (no concurrencyKeys)
   *   are not listed. Absent when no key is tracked.
   */
  snapshot(nowMs: number): QueueFlowStatus {
    this.#now(nowMs);
    const held = this.heldCount;
    let runnable = this.#unkeyedHeld + this.#echoes.size;
    const rows: Array<{ key: string; held: number; running: number; limit: number }> = [];
    for (const info of this.#keys.values()) {
      const limit = this.#limit(info.key);
      runnable += Math.min(info.held, Math.max(0, limit - info.running));
      if (Number.isFinite(limit)) rows.push({ key: info.key, held: info.held, running: info.running, limit });
    }
    const q = this.#policy.queueRate;
    if (q) runnable = Math.min(runnable, Math.ceil(q.perSecond) + q.burst);
    const rateLimited = held > 0 && (this.#lastQueueBlocked || this.#lastBlockedNames.size > 0 || (this.#queueBucket !== undefined && !this.#queueBucket.available(nowMs)));
    rows.sort((x, y) => y.held - x.held || y.running - x.running || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    return { held, runnable, rateLimited, ...(this.#keys.size > 0 ? { keys: rows.slice(0, STATUS_TOP_KEYS) } : {}) };
  }

  /**
   * Held tasks that have waited at least `minHeldMs` and were not reported yet, with why they wait
   * (for their record's `status.waiting`), each reported once: ConcurrencyLimited (its key is at its
   * limit, or paused), RateLimited (its task name's rate, or the queue's), Priority (tasks of higher
   * levels are held). A task held only because the work stream is full (workers busy) or other keys
   * have their turn has no flow reason: it is not reported (it may be at a later call).
   * @param nowMs the clock (ms epoch)
   * @param minHeldMs how long a task must have been held (ms), e.g. 1000
   */
  waiting(nowMs: number, minHeldMs: number): WaitingTask<R>[] {
    this.#now(nowMs);
    const out: WaitingTask<R>[] = [];
    const keep: Entry<R>[] = [];
    let higher: number[] | undefined;
    for (const e of this.#unreported) {
      if (e.gone || e.reported) continue;
      if (nowMs - e.t.heldAtMs < minHeldMs) {
        keep.push(e);
        continue;
      }
      higher ??= this.#heldAbove();
      const w = this.#why(e, nowMs, higher[e.g.level.index]!);
      if (!w) {
        keep.push(e);
        continue;
      }
      e.reported = true;
      out.push({ id: e.t.id, ref: e.t.ref, waiting: { ...w, since: new Date(e.t.heldAtMs).toISOString() } });
    }
    this.#unreported = keep;
    return out;
  }

  // ---- internals ----

  #now(nowMs: number): void {
    if (nowMs > this.#nowMs) this.#nowMs = nowMs;
  }

  #limit(key: string): number {
    return this.#policy.keyOverrides[key] ?? this.#policy.keyLimit ?? Infinity;
  }

  #stride(g: Group<R>): number {
    if (this.#policy.fairness !== "Weighted" || g.key === undefined) return 1;
    return 1 / (this.#policy.weights[g.key] ?? 1);
  }

  #keyInfo(key: string): KeyInfo<R> {
    let info = this.#keys.get(key);
    if (!info) {
      info = { key, held: 0, running: 0, groups: new Set(), atLimit: this.#limit(key) <= 0 };
      this.#keys.set(key, info);
    }
    return info;
  }

  #forgetKeyIfIdle(info: KeyInfo<R>): void {
    if (info.held === 0 && info.running === 0 && info.groups.size === 0) this.#keys.delete(info.key);
  }

  /** Takes its groups out of the heaps when the key reached its limit, puts them back when not. */
  #refreshKey(info: KeyInfo<R>): void {
    const atLimit = info.running >= this.#limit(info.key);
    if (atLimit === info.atLimit) return;
    info.atLimit = atLimit;
    for (const g of info.groups) {
      if (atLimit) g.ver++;
      else {
        this.#rejoin(g);
        this.#push(g);
      }
    }
  }

  #freeSlot(key: string | undefined): void {
    if (key === undefined) return;
    const info = this.#keys.get(key);
    if (!info) return;
    info.running = Math.max(0, info.running - 1);
    this.#refreshKey(info);
    this.#forgetKeyIfIdle(info);
  }

  /** A group that comes back gets no credit for its time away. */
  #rejoin(g: Group<R>): void {
    if (g.pass < g.level.vt) {
      g.pass = g.level.vt;
      g.tie = ++this.#tie;
    }
  }

  #eligible(g: Group<R>): boolean {
    return g.alive && g.size > 0 && !(g.info?.atLimit ?? false);
  }

  #valid(it: Item<R>): boolean {
    return it.ver === it.g.ver && this.#eligible(it.g);
  }

  /** Re-enters the group in its level's heaps with its current keys (older items go stale). */
  #push(g: Group<R>): void {
    g.ver++;
    if (!this.#eligible(g)) return;
    const lv = g.level;
    lv.fair.push({ g, ver: g.ver, a: g.pass, b: g.tie });
    if (this.#ageOn) this.#agePush(g);
    const bound = 2 * lv.groups.size + 64;
    if (lv.fair.size > bound) lv.fair.filter((it) => this.#valid(it));
    if (lv.age.size > bound) lv.age.filter((it) => this.#valid(it));
  }

  /** Enters an eligible group in its level's age heap by its oldest held task, at its current version. */
  #agePush(g: Group<R>): void {
    let oldest: Entry<R> | undefined;
    for (const f of g.byName.values()) {
      const e = f.peek();
      if (e && (!oldest || e.t.heldAtMs < oldest.t.heldAtMs || (e.t.heldAtMs === oldest.t.heldAtMs && e.seq < oldest.seq))) oldest = e;
    }
    if (oldest) g.level.age.push({ g, ver: g.ver, a: oldest.t.heldAtMs, b: oldest.seq });
  }

  #insert(t: HeldTask<R>, seq: number, atHead: boolean, reported: boolean): void {
    const lv = this.#levels[levelOf(t.priority)]!;
    let g = lv.groups.get(t.key);
    let changed = false;
    if (!g) {
      const info = t.key === undefined ? undefined : this.#keyInfo(t.key);
      g = new Group<R>(lv, t.key, info);
      g.pass = lv.vt;
      g.tie = ++this.#tie;
      lv.groups.set(t.key, g);
      info?.groups.add(g);
      changed = true;
    }
    let f = g.byName.get(t.task);
    if (!f) {
      f = new Fifo<R>();
      g.byName.set(t.task, f);
      changed = true;
    }
    const e: Entry<R> = { t, seq, g, gone: false, reported };
    if (atHead) {
      f.unshift(e);
      changed = true;
    } else f.push(e);
    g.size++;
    lv.held++;
    if (g.info) g.info.held++;
    else this.#unkeyedHeld++;
    this.#tasks.set(t.id, e);
    if (!reported) this.#unreported.push(e);
    if (changed) this.#push(g);
  }

  /** Takes a held entry out of its FIFO and counts (the caller decides what becomes of it). */
  #unlink(e: Entry<R>, atHead: boolean): void {
    const g = e.g;
    const f = g.byName.get(e.t.task)!;
    if (atHead) f.shift();
    else f.forget();
    e.gone = true;
    if (f.live === 0) g.byName.delete(e.t.task);
    this.#tasks.delete(e.t.id);
    g.size--;
    g.level.held--;
    if (g.info) g.info.held--;
    else this.#unkeyedHeld--;
  }

  #removeGroupIfEmpty(g: Group<R>): boolean {
    if (g.size > 0) return false;
    g.alive = false;
    g.ver++;
    g.level.groups.delete(g.key);
    if (g.info) {
      g.info.groups.delete(g);
      this.#forgetKeyIfIdle(g.info);
    }
    return true;
  }

  #removeHeld(e: Entry<R>): void {
    const wasHead = e.g.byName.get(e.t.task)?.peek() === e;
    this.#unlink(e, wasHead);
    if (!this.#removeGroupIfEmpty(e.g) && wasHead) this.#push(e.g);
  }

  #release(e: Entry<R>, nowMs: number): HeldTask<R> {
    const g = e.g;
    const t = e.t;
    this.#unlink(e, true);
    this.#queueBucket?.take(nowMs);
    this.#nameBuckets.get(t.task)?.take(nowMs);
    this.#released.set(t.id, { key: t.key, sinceMs: nowMs, reported: e.reported, echo: false, echoOnly: false });
    const lv = g.level;
    if (g.pass > lv.vt) lv.vt = g.pass;
    g.pass += this.#stride(g);
    g.tie = ++this.#tie;
    if (g.info) {
      g.info.running++;
      this.#refreshKey(g.info);
    }
    if (!this.#removeGroupIfEmpty(g)) this.#push(g);
    return t;
  }

  /** The task a group would release now: the earliest (by seq) head of a task name with a token. */
  #releasable(g: Group<R>, nowMs: number, blockedNames: Set<string>): Entry<R> | undefined {
    let best: Entry<R> | undefined;
    for (const [name, f] of g.byName) {
      const e = f.peek();
      if (!e) continue;
      if (best && e.seq > best.seq) continue;
      if (blockedNames.has(name)) continue;
      const b = this.#nameBuckets.get(name);
      if (b && !b.available(nowMs)) {
        blockedNames.add(name);
        continue;
      }
      best = e;
    }
    return best;
  }

  /**
   * The top of a level's heap that can release now: stale items are dropped, rate-blocked groups
   * set aside (put back at the end of `next`).
   */
  #peek(lv: Level<R>, which: "fair" | "age", nowMs: number, blockedNames: Set<string>, aside: Item<R>[]): { item: Item<R>; e: Entry<R> } | undefined {
    if (lv.held === 0) return undefined;
    const heap = which === "fair" ? lv.fair : lv.age;
    for (;;) {
      const it = heap.peek();
      if (!it) return undefined;
      if (!this.#valid(it)) {
        heap.pop();
        continue;
      }
      const e = this.#releasable(it.g, nowMs, blockedNames);
      if (!e) {
        heap.pop();
        aside.push(it);
        continue;
      }
      return { item: it, e };
    }
  }

  #lowerReleasable(top: number, nowMs: number, blockedNames: Set<string>, aside: Item<R>[]): boolean {
    for (let l = top - 1; l >= 0; l--) if (this.#peek(this.#levels[l]!, "fair", nowMs, blockedNames, aside)) return true;
    return false;
  }

  /** The longest-waiting releasable task of the levels below `top` (approximately: by each group's oldest held task). */
  #oldestBelow(top: number, nowMs: number, blockedNames: Set<string>, aside: Item<R>[]): { item: Item<R>; e: Entry<R> } | undefined {
    let best: { item: Item<R>; e: Entry<R> } | undefined;
    for (let l = top - 1; l >= 0; l--) {
      const c = this.#peek(this.#levels[l]!, "age", nowMs, blockedNames, aside);
      if (c && (!best || c.item.a < best.item.a || (c.item.a === best.item.a && c.item.b < best.item.b))) best = c;
    }
    return best;
  }

  /**
   * Parks a heap item set aside in `next` (its group's task names are all out of tokens) under the
   * name whose token comes first; a group with a name without a bucket goes straight back.
   */
  #parkRate(it: Item<R>, which: "fair" | "age", nowMs: number): void {
    if (!this.#valid(it)) return;
    let name: string | undefined;
    let atMs = Infinity;
    for (const n of it.g.byName.keys()) {
      const b = this.#nameBuckets.get(n);
      if (!b) {
        name = undefined;
        break;
      }
      const at = b.readyAtMs(nowMs);
      if (name === undefined || at < atMs) {
        name = n;
        atMs = at;
      }
    }
    if (name === undefined || atMs <= nowMs) {
      (which === "fair" ? it.g.level.fair : it.g.level.age).push(it);
      return;
    }
    let p = this.#rateParked.get(name);
    if (!p) {
      p = { atMs, fair: [], age: [] };
      this.#rateParked.set(name, p);
    }
    p.atMs = Math.min(p.atMs, atMs);
    p[which].push(it);
  }

  /** Puts the items parked for a rate whose token is due by `nowMs` back in their heaps (stale ones are dropped). */
  #unparkRates(nowMs: number): void {
    for (const [name, p] of this.#rateParked) {
      if (p.atMs > nowMs) continue;
      this.#rateParked.delete(name);
      for (const it of p.fair) if (this.#valid(it)) it.g.level.fair.push(it);
      for (const it of p.age) if (this.#valid(it)) it.g.level.age.push(it);
    }
  }

  /** Held tasks at levels above each level. */
  #heldAbove(): number[] {
    const out = new Array<number>(MAX_PRIORITY_LEVELS).fill(0);
    for (let l = MAX_PRIORITY_LEVELS - 2; l >= 0; l--) out[l] = out[l + 1]! + this.#levels[l + 1]!.held;
    return out;
  }

  #why(e: Entry<R>, nowMs: number, heldAbove: number): Omit<Waiting, "since"> | undefined {
    const key = e.t.key;
    if (key !== undefined) {
      const info = this.#keys.get(key);
      const limit = this.#limit(key);
      if (info && info.running >= limit) {
        return { reason: "ConcurrencyLimited", message: limit === 0 ? `key ${key} is paused (limit 0)` : `key ${key}: ${info.running} of ${limit} running` };
      }
    }
    const nb = this.#nameBuckets.get(e.t.task);
    if (nb && (this.#lastBlockedNames.has(e.t.task) || !nb.available(nowMs))) return { reason: "RateLimited", message: `task ${e.t.task} rate limit ${formatRate(nb.perSecond)}` };
    if (heldAbove > 0) return { reason: "Priority", message: `${heldAbove} task${heldAbove === 1 ? "" : "s"} of higher priority first` };
    const qb = this.#queueBucket;
    if (qb && (this.#lastQueueBlocked || !qb.available(nowMs))) {
      const burst = this.#policy.queueRate?.burst ?? 1;
      return { reason: "RateLimited", message: `queue rate limit ${formatRate(qb.perSecond)}${burst > 1 ? ` (burst ${burst})` : ""}` };
    }
    return undefined;
  }
}
