/**
 * The per-Queue scale loops (KEDA's ScaleHandler beside its `requestScaleLoop`): every
 * `pollingIntervalSeconds` each loop reads the queue's depth from JetStream, decides the worker count
 * (`decideReplicas`, builtin provider only) and scales the worker Deployment through its `/scale`
 * subresource. JetStream raises no Kubernetes events, so this is a timer, apart from the reconcile:
 * the reconcile starts or updates a Queue's loop, and stops it when the Queue is deleted or invalid.
 *
 * A loop writes only what it owns: the scale subresource, the `Scaled` Event, the queue metrics
 * (`onObserved`, operator/metrics.ts) and the status fields {@link SCALE_STATUS_FIELDS}, each only when its value
 * changed — an idle Queue's status is not rewritten.
 *
 * Reads of many Queues are one pass: each loop's timer fires on the wall-clock grid of its interval
 * (every 2 s loop at the same instants), and {@link DepthBatcher} gathers the reads that arrive
 * within {@link BATCH_WINDOW_MS} into one `QueueNats.depthMany` call (one `STREAM.LIST` per NATS
 * connection, consumer info only for queues with messages). A Queue still reads every
 * `pollingIntervalSeconds`, at a phase no enqueue can predict, so the wait from a backlog to its
 * read is as before (uniform over the interval); a new Queue or a spec change reads at once.
 *
 * On a flow-controlled Queue the backlog also counts the dispatcher's runnable held tasks, and the
 * loop writes the dispatcher's snapshot as `status.flow` (queue-status.ts `scaleBacklog`,
 * `flowStatusField`).
 *
 * While the queue is paused (`celeriac queue pause`, the `paused` dependency: the operator's watch of
 * the `queue.paused` key) the loop holds the worker count (no scale-up on the backlog, no scale to
 * zero: the workers stay, pulling nothing) and writes `status.paused`; `spec.suspend` still scales
 * to zero. A pause or resume makes the loop read at once ({@link ScaleLoops.kick}).
 */
import type { KubeConfig, V1Deployment } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { FIELD_MANAGERS, REASONS } from "../../api/constants.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import type { Queue } from "../../api/objects.js";
import { CELERIAC_TYPES } from "../../api/objects.js";
import { isFlowControlled, type QueueFlowStatus } from "../../api/flow.js";
import type { QueueStatus } from "../../api/queue.js";
import type { QueueObservation } from "../metrics.js";
import type { QueuePaused } from "../../api/queue-ops.js";
import { decideReplicas, type Recommendation } from "../autoscale/decision.js";
import { resolveAutoscaling } from "../autoscale/policy.js";
import { BUILTIN_TYPES, isNotFound, patchScale, patchStatus, type EventSink, type ObjectRef } from "../runtime/index.js";
import { workerDeploymentName } from "./labels.js";
import { depthKey, type DepthResults, type QueueDepth, type QueueNats } from "./queue-nats.js";
import { flowStatusField, pausedStatusField, rfc3339, scaleBacklog, statusChanges } from "./queue-status.js";

/** Dependencies of {@link ScaleLoops}. */
export interface ScaleLoopDeps {
  kc: KubeConfig;
  /** The Queue from the informer cache. */
  getQueue(namespace: string, name: string): Queue | undefined;
  /** The worker Deployment from the informer cache. */
  getDeployment(namespace: string, name: string): V1Deployment | undefined;
  nats: Pick<QueueNats, "depthMany">;
  events: EventSink;
  log: Logger;
  /**
   * The flow status of a flow-controlled Queue from its dispatcher (operator/flow/dispatchers.ts):
   * its `runnable` is added to the backlog, and it is written as `status.flow`.
   */
  flow?(namespace: string, name: string): QueueFlowStatus | undefined;
  /**
   * The Queue's pause (operator/queue/pause-watches.ts), or undefined when it runs: while paused the
   * loop holds the worker count, and it is written as `status.paused`.
   */
  paused?(namespace: string, name: string): QueuePaused | undefined;
  /** Called after each read with what it saw of the queue (metrics). */
  onObserved?: (namespace: string, queue: string, observed: QueueObservation) => void;
  /** Called when a queue's loop is removed (the Queue was deleted or became invalid): its metrics go. */
  onRemoved?: (namespace: string, queue: string) => void;
  now?: () => number;
}

/** How long the batcher gathers depth reads before one pass reads them all, ms. */
export const BATCH_WINDOW_MS = 20;

/**
 * Gathers depth reads for {@link BATCH_WINDOW_MS} after the first one and reads them in one
 * `depthMany` pass; two reads of one queue in a window share the result.
 */
export class DepthBatcher {
  readonly #read: (names: QueueNames[]) => Promise<DepthResults>;
  readonly #windowMs: number;
  #pending = new Map<string, { names: QueueNames; waiters: Array<{ resolve: (d: QueueDepth) => void; reject: (e: Error) => void }> }>();
  #timer: NodeJS.Timeout | undefined;

  /**
   * @param read reads many queues' depths (`QueueNats.depthMany`)
   * @param windowMs how long to gather reads, ms
   */
  constructor(read: (names: QueueNames[]) => Promise<DepthResults>, windowMs = BATCH_WINDOW_MS) {
    this.#read = read;
    this.#windowMs = windowMs;
  }

  /**
   * The queue's depth from the next pass.
   * @throws Error the pass reported for this queue (or the pass's own failure)
   */
  depth(names: QueueNames): Promise<QueueDepth> {
    return new Promise((resolve, reject) => {
      const key = depthKey(names);
      const entry = this.#pending.get(key) ?? { names, waiters: [] };
      entry.waiters.push({ resolve, reject });
      this.#pending.set(key, entry);
      if (this.#timer === undefined) this.#timer = setTimeout(() => this.#flush(), this.#windowMs);
    });
  }

  #flush(): void {
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#read([...batch.values()].map((e) => e.names)).then(
      (results) => {
        for (const [key, e] of batch) {
          const r = results.get(key) ?? new Error(`read depth of ${e.names.stream}: no result`);
          for (const w of e.waiters) {
            if (r instanceof Error) w.reject(r);
            else w.resolve(r);
          }
        }
      },
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        for (const entry of batch.values()) for (const w of entry.waiters) w.reject(e);
      },
    );
  }
}

/**
 * The next read's instant on the grid of `intervalMs` (multiples of it since the epoch): the first
 * one after `nowMs` and after `lastReadMs` (for a read the timer started, the grid instant it was
 * for, so a late timer does not skip an instant). Reads of every loop with one interval fall
 * together; an off-grid read (a new Queue, a spec change) is followed by the next grid instant, so
 * a backlog is never seen later than one interval after it arrived. Pure.
 * @returns the instant and the delay to it from `nowMs`, ms
 */
export function nextGridTick(nowMs: number, intervalMs: number, lastReadMs: number | undefined): { at: number; delayMs: number } {
  // the first grid instant strictly after the last read (one interval on for a timer's read, sooner
  // for an off-grid one, so a change is never seen later than one interval after it), and after now
  const afterLast = lastReadMs === undefined ? -Infinity : (Math.floor(lastReadMs / intervalMs) + 1) * intervalMs;
  const at = Math.max(afterLast, Math.ceil((nowMs + 1) / intervalMs) * intervalMs);
  return { at, delayMs: at - nowMs };
}

/** The scale loops of every live, valid Queue, keyed by `namespace/name`. */
export class ScaleLoops {
  readonly #d: ScaleLoopDeps;
  readonly #batcher: DepthBatcher;
  readonly #loops = new Map<string, ScaleLoop>();

  constructor(deps: ScaleLoopDeps) {
    this.#d = deps;
    this.#batcher = new DepthBatcher((names) => deps.nats.depthMany(names));
  }

  /**
   * Starts the loop of `queue` (its first read runs at once) or updates it: a new generation (a spec
   * change) reads at once instead of waiting for the next tick; a new uid (the Queue was recreated)
   * starts a fresh loop with no history.
   */
  request(queue: Queue): void {
    const ns = queue.metadata.namespace ?? "";
    const key = `${ns}/${queue.metadata.name}`;
    const loop = this.#loops.get(key);
    if (loop && loop.uid === queue.metadata.uid) {
      loop.update(queue);
      return;
    }
    loop?.stop();
    const fresh = new ScaleLoop(this.#d, this.#batcher, queue);
    this.#loops.set(key, fresh);
    fresh.kick();
  }

  /** Stops the loop of Queue `namespace/name`; resolves once a read in flight has ended. */
  async remove(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const loop = this.#loops.get(key);
    this.#loops.delete(key);
    await loop?.stop();
    if (loop) this.#d.onRemoved?.(namespace, name);
  }

  /** Makes the loop of Queue `namespace/name` read now (a pause or resume), if it runs. */
  kick(namespace: string, name: string): void {
    this.#loops.get(`${namespace}/${name}`)?.kick();
  }

  /** True when Queue `namespace/name` has a running loop. */
  has(namespace: string, name: string): boolean {
    return this.#loops.has(`${namespace}/${name}`);
  }

  /** Stops every loop; resolves once reads in flight have ended. */
  async stop(): Promise<void> {
    const all = [...this.#loops.values()];
    this.#loops.clear();
    await Promise.all(all.map((l) => l.stop()));
  }
}

/** One Queue's loop: never two reads at once; the next read is scheduled when one ends. */
class ScaleLoop {
  readonly uid: string | undefined;
  readonly #d: ScaleLoopDeps;
  readonly #batcher: DepthBatcher;
  readonly #ns: string;
  readonly #name: string;
  readonly #ref: ObjectRef;
  readonly #log: Logger;
  #generation: number | undefined;
  #intervalMs: number;
  /** Autoscaling recommendations in the stabilization window. */
  #history: Recommendation[] = [];
  /** When backlog or in-flight was last above zero, ms. */
  #lastActiveAt: number | undefined;
  /** The last scale write, until the cache shows a newer Deployment. */
  #scaled: { fromResourceVersion: string | undefined; replicas: number } | undefined;
  /** Status values this loop wrote (the cache may not show them yet). */
  #written: Partial<QueueStatus> = {};
  #timer: NodeJS.Timeout | undefined;
  /** When the last read started (wall clock; for a timer's read the grid instant it was for), ms. */
  #lastReadAt: number | undefined;
  /** The grid instant the pending timer is for, ms. */
  #tickAt: number | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #failing = false;

  constructor(deps: ScaleLoopDeps, batcher: DepthBatcher, queue: Queue) {
    this.#d = deps;
    this.#batcher = batcher;
    this.uid = queue.metadata.uid;
    this.#ns = queue.metadata.namespace ?? "";
    this.#name = queue.metadata.name;
    this.#ref = { ...CELERIAC_TYPES.Queue, namespace: this.#ns, name: this.#name };
    this.#log = deps.log.child({ loop: "scale", namespace: this.#ns, name: this.#name });
    this.#generation = queue.metadata.generation;
    this.#intervalMs = resolveAutoscaling(queue.spec).pollingIntervalSeconds * 1000;
  }

  /** Takes a newer version of the Queue: reads at once on a spec change, re-times on a new interval. */
  update(queue: Queue): void {
    const interval = resolveAutoscaling(queue.spec).pollingIntervalSeconds * 1000;
    const specChanged = queue.metadata.generation !== this.#generation;
    this.#generation = queue.metadata.generation;
    if (specChanged) {
      this.#intervalMs = interval;
      this.kick();
    } else if (interval !== this.#intervalMs) {
      this.#intervalMs = interval;
      if (this.#timer) this.#schedule();
    }
  }

  /** Reads now (or right after the read in flight). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lastReadAt = this.#tickAt ?? Date.now();
    this.#tickAt = undefined;
    this.#running = this.#tick().finally(() => {
      this.#running = undefined;
      if (this.#stopped) return;
      if (this.#again) {
        this.#again = false;
        this.kick();
      } else this.#schedule();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    const next = nextGridTick(Date.now(), this.#intervalMs, this.#lastReadAt);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tickAt = next.at;
      this.kick();
    }, next.delayMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      await this.#read();
      if (this.#failing) this.#log.info("Read queue depth again");
      this.#failing = false;
    } catch (err) {
      if (isNotFound(err)) return; // the Queue or its Deployment went away; the reconcile stops the loop
      if (!this.#failing) this.#log.warn({ err }, "Failed to read queue depth or scale workers");
      else this.#log.debug({ err }, "Failed to read queue depth or scale workers");
      this.#failing = true;
    }
  }

  /** read depth → decide → scale → metrics → status fields that changed. */
  async #read(): Promise<void> {
    const d = this.#d;
    const q = d.getQueue(this.#ns, this.#name);
    if (!q || q.metadata.deletionTimestamp || q.metadata.uid !== this.uid) return;
    const now = (d.now ?? Date.now)();
    const policy = resolveAutoscaling(q.spec);
    const depth = await this.#batcher.depth(queueNames(this.#ns, this.#name));
    if (this.#stopped) return;
    const flowControlled = isFlowControlled(q.spec);
    const flow = flowControlled ? d.flow?.(this.#ns, this.#name) : undefined;
    const backlog = scaleBacklog(depth, flow);
    const paused = d.paused?.(this.#ns, this.#name);

    const deployName = workerDeploymentName(this.#name);
    const live = d.getDeployment(this.#ns, deployName);
    let desired: number | undefined;
    let lastScaleTime: string | undefined;
    if (live) {
      let current = live.spec?.replicas ?? 0;
      if (this.#scaled && this.#scaled.fromResourceVersion === live.metadata?.resourceVersion) current = this.#scaled.replicas;
      else this.#scaled = undefined;
      desired = current;
      if (paused && q.spec.suspend !== true) {
        // hold: no decision, and the history starts afresh at the resume
        this.#history = [];
        this.#lastActiveAt = now;
      } else if (policy.provider === "builtin") {
        const decision = decideReplicas({
          backlog, inFlight: depth.inFlight, current, policy, suspended: q.spec.suspend === true, now,
          history: this.#history, ...(this.#lastActiveAt !== undefined ? { lastActiveAt: this.#lastActiveAt } : {}),
        });
        this.#history = decision.history;
        this.#lastActiveAt = decision.lastActiveAt;
        desired = decision.desired;
        if (desired !== current) {
          await patchScale(d.kc, { ...BUILTIN_TYPES.Deployment, namespace: this.#ns, name: deployName }, desired, FIELD_MANAGERS.operator);
          this.#scaled = { fromResourceVersion: live.metadata?.resourceVersion, replicas: desired };
          lastScaleTime = rfc3339(now);
          d.events.event(q, "Normal", REASONS.Scaled, `Scaled workers from ${current} to ${desired}: ${decision.reason || `backlog ${backlog}`}`);
          this.#log.info({ from: current, to: desired, backlog, inFlight: depth.inFlight, reason: decision.reason }, "Scaled workers");
        }
      }
    }
    d.onObserved?.(this.#ns, this.#name, {
      backlog, desiredReplicas: desired ?? 0, readyReplicas: live?.status?.readyReplicas ?? 0, delayed: depth.delayed, deadLetters: depth.deadLetters,
      oldestTaskAgeSeconds: depth.oldestMs === undefined ? 0 : Math.max(0, (now - depth.oldestMs) / 1000),
    });

    const status: QueueStatus = {
      backlog,
      inFlight: depth.inFlight,
      delayed: depth.delayed,
      deadLetters: depth.deadLetters,
      ...(desired !== undefined ? { desiredReplicas: desired } : {}),
      ...(lastScaleTime !== undefined ? { lastScaleTime } : {}),
      ...flowStatusField(flowControlled, flow, { ...q.status, ...this.#written }),
      ...pausedStatusField(paused, { ...q.status, ...this.#written }),
    };
    const patch = statusChanges({ ...q.status, ...this.#written }, status);
    if (!patch || this.#stopped) return;
    await patchStatus(d.kc, this.#ref, patch as Record<string, unknown>, FIELD_MANAGERS.operator);
    Object.assign(this.#written, patch);
  }
}
