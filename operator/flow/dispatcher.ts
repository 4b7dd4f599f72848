/**
 * The dispatcher of one flow-controlled Queue (api/flow.ts, docs/flow-control.md): the I/O around the
 * pure {@link FlowState}. Producers publish a flow-controlled queue's due tasks to its held stream
 * (one subject per priority level); the dispatcher holds them in memory, unacked, and releases them
 * into the work stream in priority order, fairly across concurrency keys, as the rate limits and key
 * limits allow. Workers are unchanged: they run what is in the work stream.
 *
 * - **Start**: deletes and re-creates its `dispatch-<level>` consumers (WorkQueue retention: what a
 *   previous dispatcher held unacked is delivered again at once), reads the work stream once,
 *   message by message (every message there was released and not yet acked: its `flow.key`
 *   occupies a slot) and watches the results bucket before that, so no terminal record is missed.
 * - **Release**: `FlowState.next(now, budget)`; each task's body and headers are published to the
 *   work subject with `Nats-Msg-Id` = task id through the connection's pipelined publisher, and the
 *   held message is acked only after the work stream's PubAck.
 *   A crash between the two re-releases the task later; the work stream's duplicate window drops the
 *   repeat, and a redelivered held message whose task has started or finished is only acked.
 * - **Budget**: the work consumer's `num_pending` (released, not yet delivered to a worker) is kept
 *   at most `readyTarget` = max(16, 2 × spec.concurrency), read again after each release batch
 *   while something is held (one request at a time), so the work stream stays shallow and priority
 *   and fairness apply at start time.
 * - **Slots**: a released task keeps its key's slot until its results-bucket record turns terminal
 *   (KV watch, updates only). A slot whose record has not turned terminal within the queue's ack wait
 *   is re-checked with `kv.get` (lost watch events, restarts). A task waiting for its retry keeps
 *   its slot; a retry re-runs from the work stream without a new rate token.
 * - **Revocation**: a held task whose `revoked.<id>` marker appears is released at once, past every
 *   limit, so its worker records it Cancelled (nothing is left Queued forever).
 * - **Status**: every {@link STATUS_INTERVAL_MS} the snapshot (`Queue.status.flow`) is refreshed
 *   and a Queued record with `status.waiting` is written for each task held ≥ 1 s (once per task
 *   and reason; kv.create when absent, else an update only while the record is still not started).
 * - **Heartbeat**: a held message is `working()`-ed once it has been held {@link HELD_TOUCH_MS}
 *   (the dispatch consumers' ack wait is 300 s).
 * - **Task defaults**: `defineTask(..., {rateLimit})` rates published by workers under results-bucket
 *   keys `task-defaults.*` (read at start and on `update`, and followed through the watch; the
 *   Queue's spec.rateLimits wins).
 */
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, MsgRequest } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude, type KV, type KvWatchEntry } from "@nats-io/kv";
import { headers as natsHeaders, type MsgHdrs, type QueuedIterator } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { isTerminalPhase } from "../../api/constants.js";
import { eachLimited } from "../../api/limited.js";
import { DEFAULT_ACK_WAIT_SECONDS } from "../../api/defaults.js";
import { heldNames, parseRate, parseTaskDefaults, TASK_DEFAULTS_KEY_PREFIX, type QueueFlowStatus, type Waiting } from "../../api/flow.js";
import { HEADERS, taskRecord, type TaskIdentity, type TaskRecord } from "../../api/message.js";
import { REVOKED_PREFIX, type QueueNames } from "../../api/naming.js";
import type { QueueSpec } from "../../api/queue.js";
import { desiredHeldConsumerConfig } from "../../nats/queue-desired.js";
import { isConsumerNotFound, isStreamNotFound } from "../../nats/queue-resources.js";
import { publisherOf } from "../../nats/task-publish.js";
import { FlowState, flowPolicy, type HeldTask } from "./flow-state.js";

/** Key prefix of the task defaults workers publish in the results bucket: `task-defaults.<base64url(task name)>`. */
/** Prefix of the results-bucket keys of workers' task code defaults (`TASK_DEFAULTS_KEY_PREFIX`, api/flow.ts). */
export const TASK_DEFAULTS_PREFIX = TASK_DEFAULTS_KEY_PREFIX;
/** How often the snapshot and waiting records are refreshed, ms. */
export const STATUS_INTERVAL_MS = 1000;
/** A task held this long gets a waiting record, ms. */
export const WAITING_AFTER_MS = 1000;
/** A held message is heartbeated (`working()`) once held this long, ms (the dispatch ack wait is 300 s). */
export const HELD_TOUCH_MS = 250_000;
/** How long the release loop waits before reading the work consumer again when the budget is spent, ms. */
export const BUDGET_POLL_MS = 10;
/**
 * A held message stored longer ago than this (or redelivered) is checked against its record before
 * release (it may be a copy of a task released before whose ack was lost), ms.
 */
export const RECHECK_HELD_AFTER_MS = 60_000;
/** Most waiting records written per status tick. */
const WAITING_PER_TICK = 200;
/** Most `kv.get` re-checks of unfinished slots per re-check tick. */
const RECHECKS_PER_TICK = 500;

/** What the dispatcher keeps of a held message (the `ref` of its {@link HeldTask}). */
export interface HeldRef {
  /** The held deliveries of this task id (more than one when it was published twice outside the duplicate window). */
  msgs: JsMsg[];
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  /** From the body, for a waiting record; undefined when the body lacks it. */
  identity: TaskIdentity | undefined;
  /** When the message was last delivered or heartbeated, ms. */
  touchedMs: number;
}

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** JetStream client of the queue's namespace (its connection's pipelined publisher is used). */
  js: JetStreamClient;
  names: QueueNames;
  /** The Queue's spec (flow fields, concurrency, ackWaitSeconds). */
  spec: QueueSpec;
  log: Logger;
  /** Clock, ms (tests). */
  now?: () => number;
  /**
   * Called (not awaited; it handles its own errors) after a waiting record was written for a task
   * published for a Task resource (`identity.origin.kind === "Task"`), so the operator puts
   * `status.waiting` on the Task too.
   */
  onTaskWaiting?: (identity: TaskIdentity, waiting: Waiting) => void;
}

/** What became of one release: published, only acked (its task started / finished before), or failed. */
type ReleaseOutcome = "published" | "started" | "done" | "failed";

/** The fields of a task message body the dispatcher reads. */
interface BodyFacts {
  id: string;
  task: string;
  key: string | undefined;
  identity: TaskIdentity | undefined;
}

/** Reads id, task, flow.key and the identity from a task message body; undefined when it has no id. Pure. */
export function bodyFacts(data: Uint8Array): BodyFacts | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object" || typeof v.id !== "string" || v.id === "") return undefined;
  const flow = v.flow as { key?: unknown } | undefined;
  const key = flow && typeof flow === "object" && typeof flow.key === "string" ? flow.key : undefined;
  const task = typeof v.task === "string" ? v.task : "";
  const identity = typeof v.queue === "string" && typeof v.namespace === "string" && v.origin && typeof v.origin === "object"
    ? ({ id: v.id, task, queue: v.queue, namespace: v.namespace, origin: v.origin } as TaskIdentity)
    : undefined;
  return { id: v.id, task, key, identity };
}

/** The most tasks the work stream may hold undelivered: max(16, 2 × spec.concurrency). Pure. */
export function readyTarget(spec: Pick<QueueSpec, "concurrency">): number {
  return Math.max(16, 2 * (spec.concurrency ?? 4));
}

/** One flow-controlled Queue's dispatcher. `start()`, then `update(spec)` on spec changes, `stop()` at the end. */
export class Dispatcher {
  readonly names: QueueNames;
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #now: () => number;
  #spec: QueueSpec;
  #jsm: JetStreamManager | undefined;
  #kv: KV | undefined;
  #state: FlowState<HeldRef> | undefined;
  #taskDefaults = new Map<string, number>();
  /** Held tasks by id (what the FlowState holds, with every delivery). */
  readonly #held = new Map<string, HeldRef>();
  /** Released tasks whose record has not turned terminal (a held duplicate of one is only acked). */
  readonly #outstanding = new Set<string>();
  /** Waiting reason written per held task. */
  readonly #waitingWritten = new Map<string, string>();
  /** Waiting records still to write (FlowState reports each task once). */
  #waitingQueue: Array<{ id: string; ref: HeldRef; waiting: Waiting }> = [];
  /** Terminal records seen while the work stream is read at start (applied after it). */
  #rebuildTerminal: Set<string> | undefined;
  readonly #consumers: ConsumerMessages[] = [];
  readonly #loops: Promise<void>[] = [];
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #status: QueueFlowStatus | undefined;
  #stopped = false;
  #draining = false;
  #failing = false;
  /** Set when a held consumer's loop or the results watch ended while running. */
  #broken: string | undefined;
  #stopping: Promise<void> | undefined;

  readonly #onTaskWaiting: DispatcherOptions["onTaskWaiting"];

  constructor(o: DispatcherOptions) {
    this.#js = o.js;
    this.names = o.names;
    this.#spec = o.spec;
    this.#log = o.log;
    this.#now = o.now ?? Date.now;
    this.#onTaskWaiting = o.onTaskWaiting;
  }

  /** The last snapshot (`Queue.status.flow`), refreshed every {@link STATUS_INTERVAL_MS}; undefined before the first. */
  get status(): QueueFlowStatus | undefined {
    return this.#status;
  }

  /** Held tasks no limit holds back (`status.flow.runnable`): what autoscaling adds to the backlog. */
  get runnable(): number {
    return this.#status?.runnable ?? 0;
  }

  /**
   * Why the dispatcher no longer works (a held consumer or the results watch ended while it ran),
   * or undefined while it does; the Queue's dispatchers start a new one at the next reconcile.
   */
  get broken(): string | undefined {
    return this.#broken;
  }

  /** Tasks held in memory now. */
  get heldCount(): number {
    return this.#state?.heldCount ?? 0;
  }

  #ackWaitMs(): number {
    return (this.#spec.ackWaitSeconds ?? DEFAULT_ACK_WAIT_SECONDS) * 1000;
  }

  #levels(): number {
    return this.#spec.priorities?.levels ?? 1;
  }

  /**
   * Starts: opens the results bucket, reads the task defaults, watches the bucket, reads the work
   * stream's unfinished tasks, re-creates and consumes the dispatch consumers, and starts the
   * release loop and timers.
   * @throws Error when the bucket, streams or consumers cannot be read or created (nothing is left running)
   */
  async start(): Promise<void> {
    try {
      this.#jsm = await this.#js.jetstreamManager();
      this.#kv = await new Kvm(this.#js).open(this.names.resultsBucket);
      this.#taskDefaults = await this.#readTaskDefaults();
      this.#state = new FlowState<HeldRef>(flowPolicy(this.#spec, this.#taskDefaults), this.#now());
      this.#rebuildTerminal = new Set();
      await this.#startWatch();
      await this.#rebuild();
      const terminal = this.#rebuildTerminal;
      this.#rebuildTerminal = undefined;
      for (const id of terminal) this.#finish(id);
      await this.#consumeHeld();
    } catch (err) {
      await this.stop();
      throw new Error(`start dispatcher of ${this.names.stream}: ${(err as Error).message}`, { cause: err });
    }
    this.#loops.push(this.#pump());
    this.#every(STATUS_INTERVAL_MS, async () => {
      this.#status = this.#state!.snapshot(this.#now());
    });
    this.#every(STATUS_INTERVAL_MS, () => this.#writeWaitingRecords());
    this.#every(Math.max(1000, this.#ackWaitMs() / 2), () => this.#recheck());
    this.#every(30_000, async () => this.#touchHeld());
    this.#status = this.#state!.snapshot(this.#now());
    this.#log.info({ stream: heldNames(this.names).stream, levels: this.#levels(), readyTarget: readyTarget(this.#spec), unfinished: this.#outstanding.size }, "Dispatcher started");
  }

  /**
   * Takes a new spec of the same Queue (same priority levels): re-reads the task defaults and sets
   * the new policy. A change of levels needs a new dispatcher (see dispatchers.ts).
   */
  async update(spec: QueueSpec): Promise<void> {
    this.#spec = spec;
    await this.#refreshPolicy();
  }

  async #refreshPolicy(): Promise<void> {
    try {
      this.#taskDefaults = await this.#readTaskDefaults();
    } catch (err) {
      this.#log.warn({ err }, "Failed to read task defaults; keeping the previous ones");
    }
    try {
      this.#state?.setPolicy(flowPolicy(this.#spec, this.#taskDefaults), this.#now());
    } catch (err) {
      this.#log.warn({ err }, "Failed to apply the flow policy; keeping the previous one");
    }
    this.#wake();
  }

  /** `task-defaults.*` of the results bucket: task name → rate (per second). Bad entries are logged and skipped. */
  async #readTaskDefaults(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const kv = this.#kv!;
    const keys: string[] = [];
    for await (const k of await kv.keys(`${TASK_DEFAULTS_PREFIX}>`)) keys.push(k);
    for (const k of keys) {
      const e = await kv.get(k);
      if (!e || e.operation !== "PUT") continue;
      const p = parseTaskDefaults(e.value);
      if ("error" in p) this.#log.warn({ key: k, error: p.error }, "Ignored a malformed task default");
      else out.set(p.defaults.task, parseRate(p.defaults.rateLimit, `${k} rateLimit`));
    }
    return out;
  }

  #every(ms: number, fn: () => Promise<void>): void {
    let busy = false;
    const t = setInterval(() => {
      if (busy || this.#stopped) return;
      busy = true;
      fn().catch((err: unknown) => this.#log.warn({ err }, "Dispatcher timer step failed")).finally(() => (busy = false));
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  /** Watches the results bucket (updates only): terminal records free slots, revocations release, task defaults update the policy. */
  async #startWatch(): Promise<void> {
    const w = (this.#watch = await this.#kv!.watch({ include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true }));
    let defaultsPending = false;
    this.#loops.push((async () => {
      try {
        for await (const e of w) {
          const key = e.key;
          if (key.startsWith(REVOKED_PREFIX)) this.#revoked(key.slice(REVOKED_PREFIX.length));
          else if (key.startsWith(TASK_DEFAULTS_PREFIX)) {
            if (!defaultsPending) {
              defaultsPending = true;
              setTimeout(() => {
                defaultsPending = false;
                if (!this.#stopped) void this.#refreshPolicy();
              }, 200).unref();
            }
          } else if (!key.includes(".") && e.operation === "PUT") {
            let phase: string | undefined;
            try {
              phase = e.json<TaskRecord>().status?.phase;
            } catch {
              continue;
            }
            if (!isTerminalPhase(phase)) continue;
            if (this.#rebuildTerminal) this.#rebuildTerminal.add(key);
            this.#finish(key);
          }
        }
      } catch (err) {
        if (!this.#stopped) this.#log.warn({ err }, "Results watch ended; slots are re-checked every ack wait");
      }
      if (!this.#stopped) this.#broken ??= "the results watch ended";
    })());
  }

  #finish(id: string): void {
    this.#outstanding.delete(id);
    if (this.#state?.finished(id)) this.#wake();
  }

  /** A held task was revoked: release it at once, past every limit, so its worker records it Cancelled. */
  #revoked(id: string): void {
    const ref = this.#held.get(id);
    if (!ref || !this.#state) return;
    const t = this.#state.drop(id);
    if (!t) return;
    void this.#release(t, { tracked: false });
  }

  /**
   * Every message in the work stream was released and not yet acked: its key occupies a slot. Read
   * message by message (`STREAM.MSG.GET` with `next_by_subj`, which skips deleted sequences): a
   * WorkQueue stream takes no second consumer on the workers' subject, not even an ordered one. The
   * budget keeps the work stream shallow, so this is short.
   */
  async #rebuild(): Promise<void> {
    let state: { messages: number; first_seq: number; last_seq: number };
    try {
      state = (await this.#jsm!.streams.info(this.names.stream)).state;
    } catch (err) {
      if (isStreamNotFound(err)) return;
      throw err;
    }
    if (state.messages === 0) return;
    for (let seq = state.first_seq; seq <= state.last_seq;) {
      const sm = await this.#jsm!.streams.getMessage(this.names.stream, { seq, next_by_subj: this.names.taskSubject } as unknown as MsgRequest);
      if (!sm) break;
      const f = bodyFacts(sm.data);
      if (f && !this.#outstanding.has(f.id)) {
        this.#outstanding.add(f.id);
        this.#state!.running(f.id, f.key);
      }
      seq = sm.seq + 1;
    }
  }

  /** Re-creates every dispatch consumer (one per level, and any left from more levels) and consumes them. */
  async #consumeHeld(): Promise<void> {
    const held = heldNames(this.names);
    const levels = new Set<number>();
    for (let l = 0; l < this.#levels(); l++) levels.add(l);
    for await (const ci of this.#jsm!.consumers.list(held.stream)) {
      const m = new RegExp(`^${held.consumerPrefix}([0-9]+)$`).exec(ci.name);
      if (m) levels.add(Number(m[1]));
    }
    for (const level of [...levels].sort((a, b) => b - a)) {
      const cfg = desiredHeldConsumerConfig(this.names, level);
      const name = cfg.durable_name as string;
      try {
        await this.#jsm!.consumers.delete(held.stream, name);
      } catch (err) {
        if (!isConsumerNotFound(err)) throw err;
      }
      await this.#jsm!.consumers.add(held.stream, cfg);
      const msgs = await (await this.#js.consumers.get(held.stream, name)).consume({ max_messages: 1000 });
      this.#consumers.push(msgs);
      this.#loops.push((async () => {
        try {
          for await (const m of msgs) this.#onHeld(m, level);
        } catch (err) {
          if (!this.#stopped) this.#log.error({ err, level }, "Held consumer stopped");
        }
        if (!this.#stopped) this.#broken ??= `the consumer ${name} ended`;
      })());
    }
  }

  #onHeld(m: JsMsg, level: number): void {
    const now = this.#now();
    const f = bodyFacts(m.data);
    if (!f) {
      // not a task message: the worker dead-letters it (InvalidMessage) with its reason
      this.#passThrough({ msgs: [m], data: m.data, headers: m.headers, identity: undefined, touchedMs: now }, m.headers?.get(HEADERS.msgId) || undefined);
      return;
    }
    const existing = this.#held.get(f.id);
    if (existing) {
      existing.msgs.push(m);
      return;
    }
    if (this.#outstanding.has(f.id) || this.#draining || !this.#state) {
      // a repeat of a released task is only acked; while draining everything goes straight through
      this.#passThrough({ msgs: [m], data: m.data, headers: m.headers, identity: f.identity, touchedMs: now }, f.id, !this.#outstanding.has(f.id));
      return;
    }
    const ref: HeldRef = { msgs: [m], data: m.data, headers: m.headers, identity: f.identity, touchedMs: now };
    const policyLevels = this.#levels();
    const t: HeldTask<HeldRef> = {
      id: f.id, task: f.task, priority: Math.min(level, policyLevels - 1), heldAtMs: Math.min(now, Math.floor(m.info.timestampNanos / 1e6)), ref,
      ...(f.key !== undefined ? { key: f.key } : {}),
    };
    try {
      this.#state.hold(t);
    } catch (err) {
      this.#log.warn({ err, taskId: f.id }, "Could not hold a task; releasing it");
      this.#passThrough(ref, f.id);
      return;
    }
    this.#held.set(f.id, ref);
    this.#wake();
  }

  /**
   * Publishes (unless `publish` is false) and acks a held message outside FlowState: not a task
   * message (the worker dead-letters it), a copy of a released task (only acked), or anything while
   * draining. A failed publish leaves it unacked: redelivered after the held ack wait.
   */
  #passThrough(ref: HeldRef, id: string | undefined, publish = true): void {
    this.#publishAndAck(ref, id, publish).catch((err: unknown) => this.#log.warn({ err, taskId: id }, "Failed to pass a held message through"));
  }

  #wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * Waits `ms` (undefined: until woken). With `wakeable`, a wake (a new held task, a freed slot, a
   * policy change) ends the wait early, and a wake since the last wait returns at once; without, only
   * `stop()` does. One sleeper at a time (the release loop).
   */
  async #sleep(ms: number | undefined, wakeable = true): Promise<void> {
    if (this.#stopped) return;
    if (wakeable && this.#woken) {
      this.#woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      let t: NodeJS.Timeout | undefined;
      const finish = () => {
        if (t) clearTimeout(t);
        if (this.#wakeUp === waker) this.#wakeUp = undefined;
        resolve();
      };
      const waker = () => {
        if (wakeable || this.#stopped) finish();
      };
      if (ms !== undefined) t = setTimeout(finish, ms);
      this.#wakeUp = waker;
    });
    if (wakeable) this.#woken = false;
  }

  /** The release loop: budget → next → publish + ack, until stopped. */
  async #pump(): Promise<void> {
    const jsm = this.#jsm!;
    while (!this.#stopped) {
      const state = this.#state!;
      if (state.heldCount === 0) {
        await this.#sleep(undefined);
        continue;
      }
      let pending: number;
      try {
        pending = (await jsm.consumers.info(this.names.stream, this.names.workerConsumer)).num_pending;
        if (this.#failing) this.#log.info("Read the work consumer again");
        this.#failing = false;
      } catch (err) {
        if (!this.#failing) this.#log.warn({ err }, "Failed to read the work consumer; retrying every second");
        this.#failing = true;
        await this.#sleep(1000, false);
        continue;
      }
      const budget = readyTarget(this.#spec) - pending;
      if (budget <= 0) {
        await this.#sleep(BUDGET_POLL_MS, false);
        continue;
      }
      const now = this.#now();
      const { release, retryAtMs } = state.next(now, budget);
      if (release.length === 0) {
        await this.#sleep(retryAtMs !== undefined ? Math.max(1, retryAtMs - now) : undefined);
        continue;
      }
      const failed = (await Promise.all(release.map((t) => this.#release(t, { tracked: true })))).some((ok) => !ok);
      if (failed) await this.#sleep(1000, false);
    }
  }

  /**
   * Publishes a released task to the work stream, then acks its held deliveries. With `tracked` (a
   * FlowState release) a failed publish is handed back (`unrelease`).
   * @returns false when the publish failed
   */
  async #release(t: HeldTask<HeldRef>, o: { tracked: boolean }): Promise<boolean> {
    const ref = t.ref;
    let outcome: ReleaseOutcome;
    try {
      outcome = await this.#publishAndAck(ref, t.id);
    } catch {
      outcome = "failed";
    }
    if (outcome === "failed") {
      // handed back: a FlowState release to its place, a revoked task held again (retried when next released)
      if (!this.#stopped && o.tracked) this.#state!.unrelease(t);
      else if (!this.#stopped && !this.#draining) this.#state!.hold(t);
      return false;
    }
    this.#held.delete(t.id);
    this.#waitingWritten.delete(t.id);
    if (o.tracked && outcome === "done") this.#state!.finished(t.id);
    else if (o.tracked) this.#outstanding.add(t.id);
    return true;
  }

  /**
   * Publishes `ref`'s body to the work subject (unless `publish` is false) and double-acks its
   * deliveries. A held message that may be a copy of a task released before (redelivered, or
   * stored more than {@link RECHECK_HELD_AFTER_MS} ago: a lost ack, a dispatcher restart) is checked
   * against its record first: a task that started or finished is acked without a publish, so it
   * never runs twice past the work stream's duplicate window.
   * @returns "published"; "started" / "done" when only acked for that reason; "failed" when the
   *   publish failed (logged; nothing acked)
   */
  async #publishAndAck(ref: HeldRef, id: string | undefined, publish = true): Promise<ReleaseOutcome> {
    let outcome: ReleaseOutcome = "published";
    const first = ref.msgs[0];
    const suspect = first !== undefined && (first.info.redelivered || this.#now() - first.info.timestampNanos / 1e6 > RECHECK_HELD_AFTER_MS);
    if (publish && id && suspect) {
      const seen = await this.#startedOrDone(id);
      if (seen) {
        outcome = seen;
        publish = false;
      }
    }
    if (publish) {
      const h = natsHeaders();
      for (const k of [HEADERS.task, HEADERS.version, HEADERS.traceparent]) {
        const v = ref.headers?.get(k);
        if (v) h.set(k, v);
      }
      const pub = publisherOf(this.#js);
      const o = { headers: h, ...(id ? { msgID: id } : {}) };
      try {
        await (pub ? pub.publish(this.names.taskSubject, ref.data, { ...o, timeoutMs: 5000 }) : this.#js.publish(this.names.taskSubject, ref.data, o));
      } catch (err) {
        this.#log.warn({ err, taskId: id }, "Failed to release a task to the work stream; retrying");
        return "failed";
      }
    }
    // A plain ack, not a double ack: a confirmed ack (ackAck) is a request per task, and nats.js 3.4
    // builds a RequestError and a TimeoutError on every request that succeeds — the largest cost of
    // the release path by a profile (flow-control bench: 0.67–0.71× of no flow control with ackAck,
    // 0.90–0.96× with ack). An ack lost with the connection only brings the held copy back after the
    // ack wait (300 s), and a redelivered copy is published again only if its task has neither started
    // nor finished (#startedOrDone above).
    for (const m of ref.msgs) m.ack();
    return outcome;
  }

  /** "done" when the task's record is terminal, "started" when it started, else undefined (or unreadable). */
  async #startedOrDone(id: string): Promise<"started" | "done" | undefined> {
    try {
      const e = await this.#kv!.get(id);
      if (!e || e.operation !== "PUT") return undefined;
      const s = e.json<TaskRecord>().status;
      if (isTerminalPhase(s?.phase)) return "done";
      return s?.phase === "Running" || s?.phase === "Retrying" || s?.startTime !== undefined ? "started" : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Waiting records for tasks held ≥ 1 s: FlowState reports each task once; they are queued here and
   * written at most {@link WAITING_PER_TICK} per tick (a task released meanwhile is skipped).
   */
  async #writeWaitingRecords(): Promise<void> {
    const now = this.#now();
    for (const w of this.#state!.waiting(now, WAITING_AFTER_MS)) {
      if (this.#waitingWritten.get(w.id) !== w.waiting.reason) this.#waitingQueue.push(w);
    }
    const todo = this.#waitingQueue.splice(0, WAITING_PER_TICK);
    await eachLimited(todo, 32, async (w) => {
      if (this.#stopped || !this.#held.has(w.id)) return;
      await this.#writeWaiting(w.id, w.ref, w.waiting);
      this.#waitingWritten.set(w.id, w.waiting.reason);
      if (w.ref.identity?.origin.kind === "Task") this.#onTaskWaiting?.(w.ref.identity, w.waiting);
    });
  }

  /** A Queued record with `status.waiting`: created when absent, else updated only while still not started. */
  async #writeWaiting(id: string, ref: HeldRef, waiting: Waiting): Promise<void> {
    const kv = this.#kv!;
    try {
      const e = await kv.get(id);
      if (!e || e.operation !== "PUT") {
        if (!ref.identity) return;
        await kv.create(id, JSON.stringify(taskRecord(ref.identity, { phase: "Queued", waiting }, new Date(this.#now()))));
        return;
      }
      const rec = e.json<TaskRecord>();
      if ((rec.status.phase !== "Queued" && rec.status.phase !== "Pending") || rec.status.startTime !== undefined) return;
      if (rec.status.waiting?.reason === waiting.reason && rec.status.waiting.message === waiting.message) return;
      await kv.update(id, JSON.stringify({ ...rec, status: { ...rec.status, waiting }, updatedAt: new Date(this.#now()).toISOString() }), e.revision);
    } catch (err) {
      // a worker (or revokeTask) wrote first: its record stands
      this.#log.debug({ err, taskId: id }, "Skipped a waiting record");
    }
  }

  /** Slots whose record has not turned terminal within the ack wait: read the record (lost watch events, restarts). */
  async #recheck(): Promise<void> {
    const ids = this.#state!.unfinishedOlderThan(this.#now(), this.#ackWaitMs()).slice(0, RECHECKS_PER_TICK);
    await eachLimited(ids, 32, async (id) => {
      try {
        const e = await this.#kv!.get(id);
        if (e && e.operation === "PUT" && isTerminalPhase(e.json<TaskRecord>().status?.phase)) this.#finish(id);
      } catch (err) {
        this.#log.debug({ err, taskId: id }, "Failed to re-check a slot");
      }
    });
  }

  /** Heartbeats held messages that have been held {@link HELD_TOUCH_MS}, so the held ack wait never redelivers them. */
  #touchHeld(): void {
    const now = this.#now();
    for (const ref of this.#held.values()) {
      if (now - ref.touchedMs < HELD_TOUCH_MS) continue;
      for (const m of ref.msgs) m.working();
      ref.touchedMs = now;
    }
  }

  /**
   * The Queue is no longer flow-controlled: releases everything held, past every limit, until the
   * held stream is empty (or `timeoutMs` passes), then stops.
   */
  async drainAndStop(timeoutMs = 60_000): Promise<void> {
    this.#draining = true;
    const end = this.#now() + timeoutMs;
    const held = heldNames(this.names).stream;
    for (;;) {
      for (const [id, ref] of [...this.#held]) {
        const t = this.#state?.drop(id) ?? { id, task: "", priority: 0, heldAtMs: ref.touchedMs, ref };
        await this.#release(t, { tracked: false });
      }
      let left = 0;
      try {
        left = (await this.#jsm!.streams.info(held)).state.messages;
      } catch (err) {
        if (!isStreamNotFound(err)) this.#log.warn({ err }, "Failed to read the held stream while draining");
      }
      if ((left === 0 && this.#held.size === 0) || this.#now() >= end || this.#stopped) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await this.stop();
  }

  /** Stops consuming, the watch, the loop and the timers (memoised). Held messages stay in the held stream, unacked. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      for (const t of this.#timers) clearInterval(t);
      this.#wake();
      for (const c of this.#consumers) {
        try {
          await c.close();
        } catch (err) {
          this.#log.debug({ err }, "Failed to close a held consumer");
        }
      }
      try {
        this.#watch?.stop();
      } catch (err) {
        this.#log.debug({ err }, "Failed to stop the results watch");
      }
      await Promise.all(this.#loops);
    })();
    return this.#stopping;
  }
}
