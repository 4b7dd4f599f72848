/**
 * The canvas runtime: the I/O shell around the planner (plan.ts). The client calls `start` to
 * publish a canvas's first tasks; every worker calls `afterFinal` from its settle step (after the
 * final record is stored, before the ack) to continue the canvas, and `resolveArgs` before a
 * handler whose args hold a reference. No polling task: a canvas moves on only when a step ends.
 *
 * Exactly once, with at-least-once delivery underneath:
 * - every publish uses `Nats-Msg-Id` = the target task id, so a replayed `afterFinal` (a redelivered
 *   final message, or a retry after this step threw) is dropped by JetStream's duplicate window;
 *   a replay also skips a target that already has a record;
 * - join records (`join.<id>` in the home results bucket) are created (KV create, never
 *   overwritten) before their members are published; each finishing member writes its slot
 *   (`join.<id>.<i>`), then sets its bit by compare-and-set on the record's revision, retried on
 *   conflict; only the write that makes `count == size` continues the join, then marks it
 *   `continued`. Concurrent completions of one join in this process share one CAS (`JoinBits`).
 * - a failure writes `failed` on the join by CAS once: that writer fires the join's linkError and
 *   cancels what would have run after it.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { KvWatchInclude, type KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { joinKey, joinSlotKey, type FrozenNode, type JoinRecord, type JoinSlot, type MessageCanvas } from "../api/canvas.js";
import { isTerminalPhase } from "../api/constants.js";
import { workflowEventKey, type WorkflowStepEvent } from "../api/workflow.js";
import type { ProducerFlow } from "../api/flow.js";
import { taskRecord, type TaskMessage, type TaskRecord } from "../api/message.js";
import { QUEUE_SETTINGS_KEY, queueNames } from "../api/naming.js";
import { parseQueueProducerSettings, producerQueueSpec } from "../api/queue-settings.js";
import type { QueueSpec } from "../api/queue.js";
import type { TaskError } from "../api/task.js";
import { InvalidTaskMessageError, newTaskMessage, taskTimingFields } from "../api/task-message.js";
import { resolveEnqueueFlow } from "../client/enqueue-flow.js";
import { eachLimited } from "../api/limited.js";
import { kvPut } from "../nats/kv-put.js";
import { publishTaskMessage } from "../nats/task-publish.js";
import { claimUnique, confirmUnique } from "../nats/unique.js";
import { UnrecoverableError } from "../worker/errors.js";
import { cancelledBy, jsonBytes, planLaunch, setJoinBits, stepOf, type LaunchInput, type Plan, type PlannedMessage } from "./plan.js";

export { canvasTaskIds, resultTarget } from "./plan.js";

/** A queue's producer settings, for building the messages of its steps. */
export interface CanvasProducerSettings {
  /** The Queue's defaults (`newTaskMessage`'s `queueSpec`). */
  queueSpec?: Pick<QueueSpec, "timeoutSeconds" | "retry">;
  /** The Queue's producer flow settings, when it is flow-controlled. */
  flow?: ProducerFlow;
}

/** What a `CanvasRuntime` needs. */
export interface CanvasRuntimeDeps {
  /** JetStream client (publishes). */
  js: JetStreamClient;
  /** The namespace the canvas runs in (all its queues are in it). */
  namespace: string;
  /** The results bucket (KV) of a queue in this namespace. */
  bucket(queue: string): Promise<KV>;
  /** Producer settings of a queue; default: read `queue.settings` from its bucket (cached 30 s). */
  settings?(queue: string): Promise<CanvasProducerSettings | undefined>;
  /** Where warnings go. */
  log?: Logger;
  /** Clock (tests). */
  now?: () => Date;
  /** The server's max_payload in bytes (`nc.info.max_payload`); a step message larger than it is refused when built. Unset: 1 MiB. */
  maxPayload?: () => number | undefined;
}

/**
 * A canvas step's args reference a result that is not there (the parent's record or a join slot is
 * missing or not Succeeded, e.g. expired from the results bucket): the step fails at once.
 */
export class CanvasResultMissingError extends UnrecoverableError {
  override readonly name: string = "CanvasResultMissingError";
}

/** A join slot above this many bytes of JSON holds a reference to the member's record instead of the value (16 KiB). */
export const MAX_SLOT_VALUE_BYTES = 16 * 1024;
/** A join with at least this many slots has them streamed by one watch rather than read one by one. */
const SLOT_WATCH_MIN = 64;
/** How long the slot watch waits for its next value before giving up on it, ms. */
const SLOT_WATCH_IDLE_MS = 2000;
/** How many KV reads or writes one runtime call runs at once. */
const IO_CONCURRENCY = 256;
/** How many task publishes one runtime call awaits at once: ENQUEUE_MANY_WINDOW's 1,024, as client.enqueueMany. */
const PUBLISH_WINDOW = 1024;
/** How long a queue's producer settings are cached, ms. */
const SETTINGS_TTL_MS = 30_000;

/** True for JetStream's compare-and-set failure (wrong last subject sequence). */
function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

interface Versioned {
  record: JoinRecord;
  revision: number;
}

interface BitWaiter {
  index: number;
  resolve: (r: { record: JoinRecord; complete: boolean }) => void;
  reject: (err: unknown) => void;
}

/**
 * Sets join bits by compare-and-set, batching: while one CAS of a join is in flight, the
 * completions of that join arriving meanwhile wait and go in the next CAS together. The last
 * revision this process wrote is remembered, so a batch usually costs one `update` and no `get`.
 */
class JoinBits {
  readonly #kvIds = new WeakMap<KV, number>();
  #nextKvId = 0;
  #k(kv: KV, id: string): string {
    let n = this.#kvIds.get(kv);
    if (n === undefined) this.#kvIds.set(kv, (n = this.#nextKvId++));
    return `${n}/${id}`;
  }
  readonly #queues = new Map<string, { kv: KV; id: string; waiting: BitWaiter[]; running: boolean }>();
  readonly #cache = new Map<string, Versioned>();
  /** KV operations done (for measurement). */
  ops = 0;

  /** The cached version of join `id` in bucket `kv`, if any. */
  cached(kv: KV, id: string): Versioned | undefined {
    return this.#cache.get(this.#k(kv, id));
  }

  remember(kv: KV, id: string, v: Versioned): void {
    const k = this.#k(kv, id);
    this.#cache.delete(k);
    this.#cache.set(k, v);
    if (this.#cache.size > 4096) this.#cache.delete(this.#cache.keys().next().value as string);
  }

  forget(kv: KV, id: string): void {
    this.#cache.delete(this.#k(kv, id));
  }

  /** Reads join `id` (undefined when missing). */
  async read(kv: KV, id: string): Promise<Versioned | undefined> {
    this.ops++;
    const e = await kv.get(joinKey(id));
    if (!e || e.operation !== "PUT") return undefined;
    const v = { record: e.json<JoinRecord>(), revision: e.revision };
    this.remember(kv, id, v);
    return v;
  }

  /**
   * Sets bit `index` of join `id`.
   * @returns the record after the write and whether this call's write completed the join (exactly
   *   one call ever gets `complete`); undefined record when the join does not exist
   */
  set(kv: KV, id: string, index: number): Promise<{ record: JoinRecord; complete: boolean }> {
    const k = this.#k(kv, id);
    let q = this.#queues.get(k);
    if (!q) this.#queues.set(k, (q = { kv, id, waiting: [], running: false }));
    const entry = q;
    return new Promise((resolve, reject) => {
      entry.waiting.push({ index, resolve, reject });
      if (!entry.running) void this.#drain(k, entry);
    });
  }

  async #drain(k: string, q: { kv: KV; id: string; waiting: BitWaiter[]; running: boolean }): Promise<void> {
    q.running = true;
    try {
      while (q.waiting.length > 0) {
        const batch = q.waiting.splice(0);
        try {
          const r = await this.#cas(q.kv, q.id, batch.map((b) => b.index));
          batch.forEach((b, i) => b.resolve({ record: r.record, complete: r.complete && i === 0 }));
        } catch (err) {
          batch.forEach((b) => b.reject(err));
        }
      }
    } finally {
      q.running = false;
      this.#queues.delete(k);
    }
  }

  async #cas(kv: KV, id: string, indices: number[]): Promise<{ record: JoinRecord; complete: boolean }> {
    let complete = false;
    const r = await this.mutate(kv, id, (cur) => {
      const next = setJoinBits(cur, indices);
      complete = next.complete;
      return next.added === 0 ? undefined : next.record; // all already set: a replay
    });
    if (!r.record) throw new JoinMissingError(`join ${id} is missing from its home results bucket`);
    return { record: r.record, complete: r.wrote && complete };
  }

  /**
   * Changes join `id` by compare-and-set: `f` returns the new record, or undefined for no write.
   * @returns the record as stored after the call (undefined when missing), and whether `f` wrote
   */
  async mutate(kv: KV, id: string, f: (r: JoinRecord) => JoinRecord | undefined): Promise<{ record: JoinRecord | undefined; wrote: boolean }> {
    let cur = this.cached(kv, id);
    let fresh = false;
    if (!cur) {
      cur = await this.read(kv, id);
      fresh = true;
    }
    for (;;) {
      if (!cur) return { record: undefined, wrote: false };
      const next = f(cur.record);
      if (!next) {
        // nothing to write: confirm with a fresh read, the cache may predate another writer
        if (!fresh) {
          cur = await this.read(kv, id);
          fresh = true;
          continue;
        }
        return { record: cur.record, wrote: false };
      }
      try {
        this.ops++;
        const revision = await kv.update(joinKey(id), JSON.stringify(next), cur.revision);
        this.remember(kv, id, { record: next, revision });
        return { record: next, wrote: true };
      } catch (err) {
        if (!isConflict(err)) throw err;
        cur = await this.read(kv, id);
        fresh = true;
      }
    }
  }
}

/** A join record the runtime needs is not in the home bucket (expired, deleted, or never created). */
export class JoinMissingError extends Error {
  override readonly name: string = "JoinMissingError";
}

/** How a step ended badly, for what it cancels. */
interface Failure {
  /** The step that failed (or was revoked / expired). */
  readonly step: { id: string; task: string };
  readonly error: TaskError;
  /** True when it Failed (linkError callbacks fire); false when Cancelled or Expired. */
  readonly fires: boolean;
  /** Past-tense verb for the cancelled tasks' reason. */
  readonly verb: string;
}

/** Runs canvases: see the module header. One per process side (a client, a worker). */
export class CanvasRuntime {
  readonly #d: CanvasRuntimeDeps;
  readonly #bits = new JoinBits();
  readonly #settings = new Map<string, { at: number; value: Promise<CanvasProducerSettings | undefined> }>();
  /** KV operations on join records and slots, and task publishes, done by this runtime (for measurement). */
  readonly stats = { slotWrites: 0, slotReads: 0, slotsStreamed: 0, publishes: 0, recordWrites: 0, recordReads: 0 };

  /** @param deps JetStream, namespace, buckets and (optionally) settings, logger and clock */
  constructor(deps: CanvasRuntimeDeps) {
    this.#d = deps;
  }

  /** KV operations on join records (gets and updates) done by this runtime so far. */
  get joinOps(): number {
    return this.#bits.ops;
  }

  #now(): Date {
    return this.#d.now?.() ?? new Date();
  }

  /**
   * Publishes the canvas's first tasks (and creates the join records they fill, first).
   * @param frozen the frozen canvas (`freezeCanvas`)
   * @param o `root` = canvas id; `home` = the queue whose results bucket holds its join records;
   *   `queue` = the queue of steps whose options name none
   * @throws InvalidTaskMessageError (a TypeError, with `field`) when a first task's options are
   *   invalid for its queue: every message is built before anything is written, so nothing is.
   *   (A later step with invalid options is recorded Failed when it is due, and fails the canvas.)
   * @throws Error when a join record cannot be created or a publish is not confirmed in 30 s;
   *   calling `start` again with the same canvas is safe (creates and publishes are idempotent)
   */
  async start(frozen: FrozenNode, o: { root: string; home: string; queue: string }): Promise<void> {
    await this.#execute(planLaunch(frozen, undefined, { root: o.root, home: o.home, queue: o.queue, step: 0 }), o.home, false, true);
  }

  /**
   * Continues the canvas after a task's final record: called by the worker's settle step after the
   * record is stored, before the ack; idempotent, so a replay (`o.replay`: the final record was
   * already there) runs it again safely. Succeeded: links, then the next step or the join slot.
   * Failed / Expired / Cancelled: linkError (Failed only), Cancelled records for every task of
   * its links and `then` (with `status.canvas.failedStep`), and the join's failure.
   * Does nothing for a message with no `canvas` or a record that is not final.
   * @throws Error when a KV write or a publish fails: the caller naks, and the replay continues
   */
  async afterFinal(msg: TaskMessage, record: TaskRecord, o: { replay?: boolean } = {}): Promise<void> {
    const c = msg.canvas;
    const phase = record.status.phase;
    if (!c || !phase || !isTerminalPhase(phase)) return;
    const replay = o.replay === true;
    if (c.workflow) await this.#notifyWorkflow(msg, record, c.workflow.uid);
    if (phase === "Succeeded") {
      const input: LaunchInput = { kind: "value", value: record.status.result ?? null, from: { id: msg.id, queue: msg.queue } };
      await this.#succeeded(msg.id, c, input, record.status.result ?? null, msg.queue, replay);
      return;
    }
    const error = record.status.error ?? { type: `${phase}Error`, message: `task ${msg.id} ended ${phase}` };
    const verb = phase === "Failed" ? "failed" : phase === "Expired" ? "expired" : "was revoked";
    await this.#failed(c, { step: { id: msg.id, task: msg.task }, error, fires: phase === "Failed", verb }, c.linkError ?? [], replay);
  }

  /** Writes the step-end notice of a Workflow's step task (api/workflow.ts `WorkflowStepEvent`), which the operator watches. */
  async #notifyWorkflow(msg: TaskMessage, record: TaskRecord, uid: string): Promise<void> {
    const st = record.status;
    const notice: WorkflowStepEvent = {
      v: 1,
      id: msg.id,
      phase: st.phase as WorkflowStepEvent["phase"],
      ...(st.attempts !== undefined ? { attempts: st.attempts } : {}),
      ...(st.startTime ? { startTime: st.startTime } : {}),
      ...(st.completionTime ? { completionTime: st.completionTime } : {}),
      ...(st.error ? { error: { type: st.error.type, message: st.error.message } } : {}),
    };
    await kvPut(await this.#d.bucket(msg.queue), workflowEventKey(uid, msg.id), JSON.stringify(notice));
  }

  /** Links, then `then[0]` or the join slot, of a succeeded task (or of a completed join: `input` kind join). */
  async #succeeded(id: string, c: Pick<MessageCanvas, "root" | "home" | "then" | "join" | "link">, input: LaunchInput, value: unknown, queue: string, replay: boolean): Promise<void> {
    const base = { root: c.root, home: c.home, queue: c.home, parent: id };
    const plans: Plan[] = (c.link ?? []).map((l, k) => planLaunch(l, input, { ...base, step: k }));
    const [next, ...rest] = c.then ?? [];
    if (next) plans.push(planLaunch(next, input, { ...base, then: rest, ...(c.join ? { join: c.join } : {}) }));
    for (const p of plans) await this.#execute(p, c.home, replay);
    if (!next && c.join) {
      const slot: JoinSlot = input.kind === "join" ? { v: 1, join: input.id } : jsonBytes(value) > MAX_SLOT_VALUE_BYTES ? { v: 1, ref: { queue, id } } : { v: 1, value };
      await this.#fill(c.home, c.join, slot, replay);
    }
  }

  /** Writes a member's slot, sets its bit, and continues the join when this write completed it. */
  async #fill(home: string, join: { id: string; index: number }, slot: JoinSlot, replay: boolean): Promise<void> {
    const kv = await this.#d.bucket(home);
    this.stats.slotWrites++;
    await kvPut(kv, joinSlotKey(join.id, join.index), JSON.stringify(slot));
    let r: { record: JoinRecord; complete: boolean };
    try {
      r = await this.#bits.set(kv, join.id, join.index);
    } catch (err) {
      if (err instanceof JoinMissingError) {
        this.#d.log?.error({ joinId: join.id, home }, "Join record missing; the canvas cannot continue past it");
        return;
      }
      throw err;
    }
    const rec = r.record;
    // a replay (or a retry after a crash between the completing write and `continued`) continues again: publishes dedupe
    if (r.complete || (replay && rec.count >= rec.size && !rec.continued && !rec.failed)) await this.#continueJoin(kv, rec, replay || !r.complete);
  }

  /** Runs a complete join's links and `then` (or fills its outer slot), then marks it continued. */
  async #continueJoin(kv: KV, r: JoinRecord, replay: boolean): Promise<void> {
    if (r.failed) return;
    await this.#succeeded(r.id, { root: r.root, home: r.home, then: r.then, ...(r.join ? { join: r.join } : {}), ...(r.link ? { link: r.link } : {}) }, { kind: "join", id: r.id }, undefined, r.home, replay);
    await this.#bits.mutate(kv, r.id, (cur) => (cur.continued ? undefined : { ...cur, continued: true }));
  }

  /** Failure of a task (or, recursively, of a join): linkError, Cancelled records for its links and `then`, the join's failure. */
  async #failed(c: Pick<MessageCanvas, "root" | "home" | "then" | "join" | "link">, f: Failure, linkError: readonly FrozenNode[], replay: boolean): Promise<void> {
    if (f.fires) {
      const input: LaunchInput = { kind: "error", taskId: f.step.id, error: { type: f.error.type, message: f.error.message, ...(f.error.stack ? { stack: f.error.stack } : {}) } };
      for (const [k, le] of linkError.entries()) await this.#execute(planLaunch(le, input, { root: c.root, home: c.home, queue: c.home, parent: f.step.id, step: k }), c.home, replay);
    }
    await this.#cancel(c.root, [...(c.link ?? []), ...(c.then ?? [])], f, c.home, linkError.map((n) => n.id));
    if (c.join) await this.#failJoin(c.home, c.join.id, f, replay);
  }

  /** Sets `failed` on join `id` once; the writer (or a replay of it) fires the join's linkError and cancels what follows. */
  async #failJoin(home: string, id: string, f: Failure, replay: boolean): Promise<void> {
    const kv = await this.#d.bucket(home);
    const { record, wrote } = await this.#bits.mutate(kv, id, (cur) => (cur.failed || cur.continued ? undefined : { ...cur, failed: { id: f.step.id, task: f.step.task, error: f.error } }));
    if (!record) {
      this.#d.log?.error({ joinId: id, home }, "Join record missing; its failure cannot be propagated");
      return;
    }
    const mine = wrote || (replay && record.failed?.id === f.step.id && !record.continued);
    if (!mine) return;
    await this.#failed({ root: record.root, home: record.home, then: record.then, ...(record.join ? { join: record.join } : {}), ...(record.link ? { link: record.link } : {}) }, f, record.linkError ?? [], replay);
    await this.#bits.mutate(kv, id, (cur) => (cur.continued ? undefined : { ...cur, continued: true }));
  }

  /** Writes a Cancelled record (KV create: a record that exists is kept) for every task `nodes` would have run. */
  async #cancel(root: string, nodes: readonly FrozenNode[], f: Failure, defaultQueue: string, except: readonly string[]): Promise<void> {
    const targets = cancelledBy(nodes, defaultQueue, except);
    if (targets.length === 0) return;
    const now = this.#now();
    await eachLimited(targets, IO_CONCURRENCY, async (t) => {
      const kv = await this.#d.bucket(t.queue);
      const rec = taskRecord(
        { id: t.id, task: t.task, queue: t.queue, namespace: this.#d.namespace, origin: { kind: "Client" } },
        {
          phase: "Cancelled",
          attempts: 0,
          completionTime: now.toISOString(),
          error: { type: "CancelledError", message: `not run: canvas step ${f.step.id} (${f.step.task}) ${f.verb}` },
          canvas: { root, step: stepOf(t.id), failedStep: { id: f.step.id, task: f.step.task } },
        },
        now,
      );
      try {
        this.stats.recordWrites++;
        await kv.create(t.id, JSON.stringify(rec));
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    });
  }

  /** Creates the plan's joins, publishes its messages (a replay skips targets with a record), continues empty joins. */
  async #execute(plan: Plan, home: string, replay: boolean, strict = false): Promise<void> {
    // every message is built (its options checked against its queue) before anything is written
    const now = this.#now();
    const built: Array<{ pm: PlannedMessage; msg: TaskMessage }> = [];
    const invalid: Array<{ pm: PlannedMessage; err: InvalidTaskMessageError }> = [];
    for (const pm of plan.messages) {
      try {
        built.push({ pm, msg: await this.#message(pm, now) });
      } catch (err) {
        if (!(err instanceof InvalidTaskMessageError)) throw err;
        // which step: in a 100-step canvas "eta: …" alone does not say
        if (strict) throw new InvalidTaskMessageError(err.field, `canvas step ${pm.id} (${pm.task}): ${err.field === "canvas" ? "" : "options."}${err.message}`);
        invalid.push({ pm, err });
      }
    }
    if (plan.joins.length > 0) {
      const kv = await this.#d.bucket(home);
      const createdAt = this.#now().toISOString();
      await eachLimited(plan.joins, IO_CONCURRENCY, async (j) => {
        try {
          this.#bits.ops++;
          const revision = await kv.create(joinKey(j.id), JSON.stringify({ ...j, createdAt }));
          this.#bits.remember(kv, j.id, { record: { ...j, createdAt }, revision });
        } catch (err) {
          if (!isConflict(err)) throw err; // exists: a replay, or start() called again
          this.#bits.forget(kv, j.id);
        }
      });
    }
    // singleton keys (`unique`) are claimed before their step is published, as client.enqueue does:
    // a step whose key another live task holds under policy Reject is not published (start() throws,
    // a later step is recorded Failed with reason UniqueKeyHeld); Replace revokes the holder first
    const held: Array<{ pm: PlannedMessage; err: InvalidTaskMessageError }> = [];
    const publish = built.filter((b) => !b.msg.unique);
    await eachLimited(
      built.filter((b) => b.msg.unique),
      IO_CONCURRENCY,
      async (b) => {
        if (replay && (await this.#hasRecord(b.pm))) return;
        const unique = b.msg.unique!;
        const claim = await claimUnique(await this.#d.bucket(b.pm.queue), b.msg, unique);
        if (claim.outcome === "rejected" && claim.holder !== b.msg.id) {
          held.push({ pm: b.pm, err: new InvalidTaskMessageError("unique", `canvas step ${b.pm.id} (${b.pm.task}): unique key ${JSON.stringify(unique.key)} is held by task ${claim.holder} (policy Reject): the step was not published; use policy Wait to run it after the holder, or Replace`) });
        } else publish.push(b);
      },
    );
    if (strict && held.length > 0) throw held[0]!.err;
    await eachLimited(publish, PUBLISH_WINDOW, async ({ pm, msg }) => {
      if (replay && !msg.unique && (await this.#hasRecord(pm))) return;
      this.stats.publishes++;
      await publishTaskMessage(this.#d.js, queueNames(this.#d.namespace, pm.queue), msg, { timeoutMs: 30_000 });
      if (msg.unique) {
        // the lock now names a stored task (else it is taken as never published after the grace)
        await confirmUnique(await this.#d.bucket(pm.queue), msg).catch((err: unknown) => this.#d.log?.warn({ taskId: pm.id, err }, "Could not confirm the canvas step's unique lock"));
      }
    });
    // a step whose options its queue cannot honour fails (recorded Failed), as if it had run and failed
    for (const { pm, err } of invalid) await this.#invalidStep(pm, err, replay);
    for (const { pm, err } of held) await this.#invalidStep(pm, err, replay, "UniqueKeyHeld");
    for (const id of plan.ready) {
      const kv = await this.#d.bucket(home);
      const v = await this.#bits.read(kv, id);
      if (v && !v.record.continued) await this.#continueJoin(kv, v.record, replay);
    }
  }

  /** Records step `pm` Failed with error `type` (InvalidTaskMessage, or UniqueKeyHeld for a held Reject key) and runs its failure path (linkError, cancels, join). */
  async #invalidStep(pm: PlannedMessage, err: InvalidTaskMessageError, replay: boolean, type = "InvalidTaskMessage"): Promise<void> {
    // InvalidTaskMessageError messages begin with their field already ("priority: …", "args and kwargs hold …")
    const error = { type, message: err.message };
    this.#d.log?.warn({ taskId: pm.id, canvas: pm.canvas.root, field: err.field, err }, "Canvas step has invalid options; recorded Failed");
    const now = this.#now();
    const rec = taskRecord({ id: pm.id, task: pm.task, queue: pm.queue, namespace: this.#d.namespace, origin: { kind: "Client" }, canvas: pm.canvas }, { phase: "Failed", attempts: 0, completionTime: now.toISOString(), error }, now);
    const kv = await this.#d.bucket(pm.queue);
    try {
      this.stats.recordWrites++;
      await kv.create(pm.id, JSON.stringify(rec));
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    await this.#failed(pm.canvas, { step: { id: pm.id, task: pm.task }, error, fires: true, verb: "failed" }, pm.canvas.linkError ?? [], replay);
  }

  async #hasRecord(pm: PlannedMessage): Promise<boolean> {
    const kv = await this.#d.bucket(pm.queue);
    this.stats.recordReads++;
    const e = await kv.get(pm.id);
    return e?.operation === "PUT";
  }

  /** The task message of a planned step: options resolved against its queue's producer settings. */
  async #message(pm: PlannedMessage, now: Date): Promise<TaskMessage> {
    const s = await this.#queueSettings(pm.queue);
    const o = pm.options;
    const flow = resolveEnqueueFlow(pm.queue, s?.flow, { ...(o.priority !== undefined ? { priority: o.priority } : {}), ...(o.concurrencyKey !== undefined ? { concurrencyKey: o.concurrencyKey } : {}), ...(o.unique ? { unique: o.unique } : {}) }, pm.args, pm.kwargs);
    const msg = newTaskMessage(
      {
        id: pm.id,
        task: pm.task,
        args: pm.args,
        kwargs: pm.kwargs,
        queue: pm.queue,
        namespace: this.#d.namespace,
        origin: { kind: "Client" },
        ...taskTimingFields(o),
        ...(s?.queueSpec ? { queueSpec: s.queueSpec } : {}),
        ...(flow.flow ? { flow: flow.flow } : {}),
        ...(flow.unique ? { unique: flow.unique } : {}),
      },
      now,
    );
    const out = { ...msg, canvas: pm.canvas };
    // only the nodes a message carries (the rest of a chain, callbacks) can make it grow past the
    // limit: args are at most MAX_ARGS_BYTES (checked by newTaskMessage), so a message without
    // nodes is not encoded an extra time here (a 10,000-member group's are not)
    const c = pm.canvas;
    if ((c.then?.length ?? 0) + (c.link?.length ?? 0) + (c.linkError?.length ?? 0) === 0) return out;
    const max = this.#d.maxPayload?.() ?? 1024 * 1024;
    const bytes = Buffer.byteLength(JSON.stringify(out));
    if (bytes > max) {
      // deterministic: publishing it again can never help
      throw new InvalidTaskMessageError(
        "canvas",
        `canvas: the step's message is ${bytes} bytes, over the NATS server's max_payload of ${max}: the rest of a chain travels in each step's message (docs/canvas.md, Limitations); split the chain, or pass large args by reference (a key to an object store)`,
      );
    }
    return out;
  }

  async #queueSettings(queue: string): Promise<CanvasProducerSettings | undefined> {
    if (this.#d.settings) return this.#d.settings(queue);
    const hit = this.#settings.get(queue);
    if (hit && Date.now() - hit.at < SETTINGS_TTL_MS) return hit.value;
    const value = (async () => {
      const e = await (await this.#d.bucket(queue)).get(QUEUE_SETTINGS_KEY);
      if (e?.operation !== "PUT") return undefined;
      const parsed = parseQueueProducerSettings(e.value);
      return "settings" in parsed ? { queueSpec: producerQueueSpec(parsed.settings), ...(parsed.settings.flow ? { flow: parsed.settings.flow } : {}) } : undefined;
    })();
    value.catch(() => this.#settings.delete(queue));
    this.#settings.set(queue, { at: Date.now(), value });
    return value;
  }

  /**
   * The handler's args of a message whose `canvas.argsRef` is set: args[0] replaced by the
   * referenced result (kind task: that task's record's result; kind join: the join's list of
   * results, `readJoinResults`). A message without `argsRef` gets its args as they are.
   * @throws CanvasResultMissingError (an UnrecoverableError) when the result is not there
   */
  async resolveArgs(msg: TaskMessage): Promise<unknown[]> {
    const ref = msg.canvas?.argsRef;
    if (!ref) return msg.args;
    const value = ref.kind === "task" ? await this.#result(ref.queue ?? msg.queue, ref.id) : await this.readJoinResults(msg.canvas?.home ?? msg.queue, ref.id);
    return [value, ...msg.args.slice(1)];
  }

  /**
   * The handler's kwargs of a message whose `canvas.kwargsRefs` is set (a Workflow step's
   * dependencies on its own queue): each referenced key set to the result it names — one task's
   * (`id`), or the list of `<prefix>0 … <prefix><count − 1>`'s (`each`). Other kwargs as they are.
   * @throws CanvasResultMissingError (an UnrecoverableError) when a record is missing or not Succeeded
   */
  async resolveKwargs(msg: TaskMessage): Promise<Record<string, unknown>> {
    const refs = msg.canvas?.kwargsRefs;
    const kwargs = { ...(msg.kwargs as Record<string, unknown>) };
    if (!refs) return kwargs;
    for (const [name, ref] of Object.entries(refs)) {
      if (ref.id !== undefined) kwargs[name] = await this.#result(ref.queue, ref.id);
      else if (ref.each) {
        const { prefix, count } = ref.each;
        const out = new Array<unknown>(count);
        await eachLimited(Array.from({ length: count }, (_, i) => i), IO_CONCURRENCY, async (i) => {
          out[i] = await this.#result(ref.queue, `${prefix}${i}`);
        });
        kwargs[name] = out;
      }
    }
    return kwargs;
  }

  async #result(queue: string, id: string): Promise<unknown> {
    const e = await (await this.#d.bucket(queue)).get(id);
    this.stats.recordReads++;
    const rec = e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
    if (rec?.status.phase !== "Succeeded") throw new CanvasResultMissingError(`the result of task ${id} (queue ${queue}) is not in its results bucket${rec ? ` (phase ${rec.status.phase})` : ""}`);
    return rec.status.result ?? null;
  }

  /**
   * A join's results, in member order: each slot's value, the result it references, or a nested
   * join's list.
   * @param home the queue whose results bucket holds the join
   * @param joinId the join (group) id
   * @throws CanvasResultMissingError when the join record, a slot or a referenced record is
   *   missing, or the join failed (the message names the failed step); read it once the join's
   *   `count` equals its `size`
   */
  async readJoinResults(home: string, joinId: string): Promise<unknown[]> {
    const kv = await this.#d.bucket(home);
    const j = await kv.get(joinKey(joinId));
    if (j?.operation !== "PUT") throw new CanvasResultMissingError(`join ${joinId} is not in the results bucket of queue ${home}`);
    const jr = j.json<JoinRecord>();
    if (jr.failed) throw new CanvasResultMissingError(`join ${joinId} has no results: its step ${jr.failed.id} (${jr.failed.task}) failed: ${jr.failed.error.type}: ${jr.failed.error.message}`);
    const size = jr.size;
    const out: unknown[] = new Array(size);
    // many slots: one watch streams them all (10,000 gets took ~1 s); a slot it did not bring is read alone
    const streamed = size >= SLOT_WATCH_MIN ? await this.#streamSlots(kv, joinId, size) : new Map<number, JoinSlot>();
    await eachLimited(Array.from({ length: size }, (_, i) => i), IO_CONCURRENCY, async (i) => {
      let slot = streamed.get(i);
      if (!slot) {
        this.stats.slotReads++;
        const e = await kv.get(joinSlotKey(joinId, i));
        if (e?.operation !== "PUT") throw new CanvasResultMissingError(`result ${i} of join ${joinId} is not in the results bucket of queue ${home}`);
        slot = e.json<JoinSlot>();
      }
      out[i] = "value" in slot ? slot.value : "ref" in slot ? await this.#result(slot.ref.queue, slot.ref.id) : await this.readJoinResults(home, slot.join);
    });
    return out;
  }

  /**
   * The slots of join `joinId` as they are now, through one KV watch of `join.<id>.*` (last values):
   * stops once `size` slots came, at the end of the initial values (delta 0 or an update), or after
   * SLOT_WATCH_IDLE_MS without one. Best effort: a slot missing from the map is read alone.
   */
  async #streamSlots(kv: KV, joinId: string, size: number): Promise<Map<number, JoinSlot>> {
    const slots = new Map<number, JoinSlot>();
    const prefix = `${joinKey(joinId)}.`;
    let iter: Awaited<ReturnType<KV["watch"]>>;
    try {
      iter = await kv.watch({ key: `${prefix}*`, include: KvWatchInclude.LastValue, ignoreDeletes: true });
    } catch {
      return slots;
    }
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => iter.stop(), SLOT_WATCH_IDLE_MS);
    };
    arm();
    try {
      for await (const e of iter) {
        arm();
        this.stats.slotsStreamed++;
        if (e.operation === "PUT") {
          const i = Number(e.key.slice(prefix.length));
          if (Number.isInteger(i) && i >= 0 && i < size) slots.set(i, e.json<JoinSlot>());
        }
        if (slots.size >= size || e.isUpdate || e.delta === 0) break;
      }
    } catch {
      // a broken watch: the slots it did not bring are read one by one
    } finally {
      clearTimeout(idle);
      iter.stop();
    }
    return slots;
  }
}
