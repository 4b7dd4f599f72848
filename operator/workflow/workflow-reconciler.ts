/**
 * Workflow reconciler: the I/O shell around the planner (plan.ts). Per reconcile: finalizer, spec
 * check (a cycle fails the Workflow: reason InvalidSpec), retry-from-failed (annotation
 * celeriac.io/retry), then observe → plan → publish → status, and the TTL delete of a finished
 * Workflow. Deleting a Workflow revokes its unfinished tasks before the finalizer is released.
 *
 * Steps are task messages (no Task objects): published with `Nats-Msg-Id` = the task id, with
 * `origin.kind` Workflow and `canvas.workflow` set, so the worker writes a step-end notice when the
 * task ends (step-notices.ts feeds them back here). Exactly once across operator restarts: the
 * first time this process plans a Workflow it looks every ready task up in NATS (a results-bucket
 * record, or the message in a stream: `TaskPublisher.isStored`) before publishing anything; after
 * that it publishes only tasks that became ready while it watched, which no earlier process can
 * have published (readiness only grows, and everything ready at adoption was looked up). A Workflow
 * created after this process took the Lease is not looked up: no earlier process saw it.
 *
 * This process is the only writer of a Workflow's status, so it plans from the status it last
 * wrote rather than from the informer's copy, which can lag behind it.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { KV } from "@nats-io/kv";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { ANNOTATIONS, FIELD_MANAGERS, FINALIZERS, REASONS, isTerminalPhase } from "../../api/constants.js";
import { eachLimited } from "../../api/limited.js";
import { taskRecord, type TaskMessage, type TaskRecord } from "../../api/message.js";
import type { KwargsRef } from "../../api/canvas.js";
import { CELERIAC_TYPES, type Queue, type Task, type Workflow } from "../../api/objects.js";
import { InvalidTaskMessageError, newTaskMessage, taskMessageInput } from "../../api/task-message.js";
import { workflowTraceContext } from "../../api/tracing.js";
import { kvPut } from "../../nats/kv-put.js";
import { MAX_FOR_EACH_ITEMS, MAX_WORKFLOW_INLINE_RESULT_BYTES, workflowResultKey, type WorkflowStatus, type WorkflowStepEvent } from "../../api/workflow.js";
import {
  applyStatus, deleteObject, isNotFound, setFinalizer,
  type EventSink, type ObjectReconciler, type ObjectRef, type ReconcileContext, type ReconcileKey, type ReconcileResult,
} from "../runtime/index.js";
import type { TaskPublisher } from "../task/task-reconciler.js";
import { planWorkflow, retryStatus, specProblem, workflowConditions, type PlannedTask, type ResultSource, type TaskObservation, type WorkflowPlan } from "./plan.js";

/** What the Workflow reconciler needs. */
export interface WorkflowReconcilerDeps {
  kc: KubeConfig;
  getWorkflow(namespace: string, name: string): Workflow | undefined;
  getQueue(namespace: string, name: string): Queue | undefined;
  /** Publishes, looks up and revokes task messages (the Task reconciler's). */
  publisher: Pick<TaskPublisher, "publish" | "isStored" | "revoke">;
  /** The results bucket of a queue. */
  bucket(namespace: string, queue: string): Promise<KV>;
  /** Starts the step-end notice watch of a queue's results bucket (idempotent). */
  watchQueue(namespace: string, queue: string): void;
  events: EventSink;
  /**
   * When this process started reconciling (it took the leader Lease): a Workflow created more than
   * a second later (creationTimestamp has 1 s resolution) was never seen by an earlier process, so
   * its tasks are not looked up in NATS before their first publish. Unset: every Workflow is.
   */
  startedAt?: () => Date;
  now?: () => Date;
}

/** How often a running Workflow's unfinished tasks are read from their records (a missed notice, a revoke), ms. */
export const WORKFLOW_REREAD_MS = 10_000;
/** How many KV reads or publishes one reconcile runs at once. */
const IO_CONCURRENCY = 256;

/** This process's memory of one Workflow run (by uid). */
interface Run {
  key: ReconcileKey;
  tasks: Map<string, TaskObservation>;
  published: Set<string>;
  items: Map<string, unknown[] | { error: string }>;
  adopted: boolean;
  lastRead: number;
  /** True once this process added the finalizer (the informer's copy may not show it yet). */
  finalizer: boolean;
  /** The status this process last wrote (the informer's copy can be older). */
  status?: WorkflowStatus;
}

const isCreateConflict = (err: unknown) =>
  err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);

/** Canonical JSON (sorted keys), to tell a changed status from the same one. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

/** A task's observation from its record. */
function observation(r: TaskRecord): TaskObservation {
  const s = r.status;
  return {
    phase: s.phase ?? "Queued",
    ...(s.attempts !== undefined ? { attempts: s.attempts } : {}),
    ...(s.startTime ? { startTime: s.startTime } : {}),
    ...(s.completionTime ? { completionTime: s.completionTime } : {}),
    ...(s.error ? { error: { type: s.error.type, message: s.error.message } } : {}),
  };
}

/** Reconciles Workflow resources (see the module header). One per operator. */
export class WorkflowReconciler implements ObjectReconciler {
  readonly #d: WorkflowReconcilerDeps;
  readonly #runs = new Map<string, Run>();
  /** The uid of each Workflow (namespace/name) this process has a run of. */
  readonly #uidByKey = new Map<string, string>();
  readonly #now: () => Date;
  /** Called with the Workflow to reconcile when a notice of one of its tasks arrives (main wires the controller's enqueue). */
  onChange: (key: ReconcileKey) => void = () => {};

  /** @param deps Kubernetes, caches, NATS and events */
  constructor(deps: WorkflowReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Records a step-end notice and enqueues its Workflow (StepNotices' `onNotice`). Notices of a
   * Workflow this process has not planned yet are dropped: its first reconcile reads the records.
   */
  notice(_namespace: string, uid: string, n: WorkflowStepEvent): void {
    const run = this.#runs.get(uid);
    if (!run || typeof n.id !== "string" || !isTerminalPhase(n.phase)) return;
    run.tasks.set(n.id, {
      phase: n.phase,
      ...(n.attempts !== undefined ? { attempts: n.attempts } : {}),
      ...(n.startTime ? { startTime: n.startTime } : {}),
      ...(n.completionTime ? { completionTime: n.completionTime } : {}),
      ...(n.error ? { error: n.error } : {}),
    });
    this.onChange(run.key);
  }

  /**
   * Reconciles Workflow `key` from the cache.
   * @returns `requeueAfterMs`: the re-read period while it runs, or the TTL delete
   * @throws Error on API or NATS failures (the controller retries with back-off)
   */
  async reconcile(key: ReconcileKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    let wf = this.#d.getWorkflow(key.namespace, key.name);
    const k = `${key.namespace}/${key.name}`;
    if (!wf) {
      // gone: forget its run
      const old = this.#uidByKey.get(k);
      if (old !== undefined) this.#runs.delete(old);
      this.#uidByKey.delete(k);
      return {};
    }
    const uid = wf.metadata.uid ?? "";
    const was = this.#uidByKey.get(k);
    if (was !== undefined && was !== uid) this.#runs.delete(was);
    this.#uidByKey.set(k, uid);
    const ref: ObjectRef = { ...CELERIAC_TYPES.Workflow, namespace: key.namespace, name: key.name };
    let run = this.#runs.get(uid);
    if (!run) this.#runs.set(uid, (run = { key, tasks: new Map(), published: new Set(), items: new Map(), adopted: false, lastRead: 0, finalizer: false }));
    if (run.status) wf = { ...wf, status: run.status };
    if (wf.metadata.deletionTimestamp) return this.#finalize(wf, ref, run, ctx);
    if (!run.finalizer && !wf.metadata.finalizers?.includes(FINALIZERS.workflow)) {
      await setFinalizer(this.#d.kc, ref, wf, FINALIZERS.workflow, true, FIELD_MANAGERS.operator);
    }
    run.finalizer = true;
    const phase = wf.status?.phase;
    const problem = specProblem(wf.spec);
    if (problem) {
      const request = wf.metadata.annotations?.[ANNOTATIONS.retry];
      if (phase === "Failed" && request !== undefined && request !== wf.status?.retryRequest) {
        // a retry cannot help: the spec is immutable
        await this.#write(ref, run, { ...(wf.status ?? {}), retryRequest: request });
        this.#d.events.event(wf, "Warning", REASONS.RetryIgnored, `Retry request ${request} ignored: the spec is invalid (${problem}) and cannot change; delete the Workflow and apply a fixed one`);
      }
      if (phase !== "Failed") {
        const status: WorkflowStatus = { phase: "Failed", message: problem, progress: `0/${wf.spec.steps.length}`, completionTime: this.#now().toISOString(), observedGeneration: wf.metadata.generation ?? 0 };
        const conditions = workflowConditions(wf, "Failed", problem, this.#now()).map((c) => (c.status === "True" ? { ...c, reason: REASONS.InvalidSpec } : c));
        await this.#write(ref, run, { ...status, conditions });
        this.#d.events.event(wf, "Warning", REASONS.InvalidSpec, problem);
      }
      return {};
    }
    // retry from the failed steps
    const request = wf.metadata.annotations?.[ANNOTATIONS.retry];
    if (request !== undefined && request !== wf.status?.retryRequest) {
      if (phase === "Failed" || phase === "Cancelled") {
        const status = retryStatus(wf, request);
        await this.#write(ref, run, status);
        run.items.clear();
        const again = (status.steps ?? []).filter((s) => s.phase === "Pending").map((s) => s.name);
        this.#d.events.event(wf, "Normal", REASONS.RetryStarted, `Retry ${status.retries}: re-running step${again.length === 1 ? "" : "s"} ${again.join(", ")}; the succeeded steps keep their results`);
        ctx.log.info({ retries: status.retries, steps: again }, "Retrying workflow from its failed steps");
        return { requeueAfterMs: 0 };
      }
      this.#d.events.event(wf, "Warning", REASONS.RetryIgnored, `Retry request ${request} ignored: the Workflow is ${phase ?? "Pending"}; only a Failed or Cancelled Workflow is retried`);
      await this.#write(ref, run, { ...(wf.status ?? {}), retryRequest: request });
      if (wf.status) wf = { ...wf, status: { ...wf.status, retryRequest: request } };
    }
    if (phase === "Succeeded" || phase === "Failed" || phase === "Cancelled") return this.#finished(wf, ref, run, ctx);

    for (const q of this.#queues(wf)) this.#d.watchQueue(key.namespace, q);
    const plan = await this.#plan(wf, run);
    try {
      await this.#publish(wf, run, plan.publish, ctx);
    } catch (err) {
      // say why it does not move (NATS down, a publish not confirmed); the controller retries with back-off
      const steps = [...new Set(plan.publish.filter((t) => !run.published.has(t.id)).map((t) => t.step))].join(", ");
      const message = `waiting to publish step${steps.includes(",") ? "s" : ""} ${steps}: ${(err as Error).message}; retrying with back-off`;
      await this.#write(ref, run, { ...plan.status, message }).catch(() => undefined);
      throw err;
    }
    // the status after the publishes (their steps are Running now)
    const after = plan.publish.length > 0 ? await this.#plan(wf, run) : plan;
    const status = after.status;
    if (after.loadResult) await this.#loadResult(wf, status, after.loadResult);
    await this.#write(ref, run, status);
    // WorkflowStarted names what the first plan published; the rest are the final plan's transitions
    const events = [...plan.events.filter((e) => e.reason === REASONS.WorkflowStarted), ...after.events.filter((e) => e.reason !== REASONS.WorkflowStarted)];
    for (const e of events) this.#d.events.event(wf, e.type, e.reason, e.message);
    if (after.done) {
      ctx.log.info({ phase: status.phase, duration: status.duration }, "Workflow finished");
      return this.#finished({ ...wf, status }, ref, run, ctx);
    }
    return { requeueAfterMs: WORKFLOW_REREAD_MS };
  }

  /** Every queue the Workflow's steps and hooks use. */
  #queues(wf: Workflow): string[] {
    const s = wf.spec;
    return [...new Set([s.queue, ...s.steps.map((x) => x.queue ?? s.queue), ...[s.onFailure, s.onExit].filter((h) => h).map((h) => h!.queue ?? s.queue)])];
  }

  /** Observes (adoption look-ups, periodic re-reads, forEach lists) and plans. */
  async #plan(wf: Workflow, run: Run): Promise<WorkflowPlan> {
    const ns = wf.metadata.namespace ?? "";
    const queueExists = (q: string) => {
      const o = this.#d.getQueue(ns, q);
      return Boolean(o && !o.metadata.deletionTimestamp);
    };
    const obs = () => ({ now: this.#now(), tasks: run.tasks, published: run.published, items: run.items, queueExists });
    let plan = planWorkflow(wf, obs());
    if (!run.adopted && !wf.status?.startTime && this.#d.startedAt) {
      const created = Date.parse(wf.metadata.creationTimestamp ?? "");
      if (created > this.#d.startedAt().getTime() + 1000) {
        run.adopted = true;
        run.lastRead = this.#now().getTime();
      }
    }
    // Adopting (or re-reading), each round reads the ready tasks not read yet: what it finds finished
    // makes the next level of the DAG ready, so a deep DAG is caught up in one reconcile (one round
    // per level), not one level per re-read period.
    const nowMs = this.#now().getTime();
    const adopting = !run.adopted;
    const reread = nowMs - run.lastRead >= WORKFLOW_REREAD_MS;
    const looked = new Set<string>();
    for (let round = 0; round < wf.spec.steps.length + 4; round++) {
      let changed = false;
      if (adopting || reread) {
        // ready tasks not known finished: read their records; adopting, look the unseen ones up in NATS
        const ids = plan.ready.filter((id) => !looked.has(id) && (!run.tasks.has(id) || !isTerminalPhase(run.tasks.get(id)!.phase)));
        for (const id of ids) looked.add(id);
        const queueOf = new Map<string, string>();
        for (const p of plan.publish) queueOf.set(p.id, p.queue);
        const stepQueue = this.#taskQueues(wf);
        await eachLimited(ids, IO_CONCURRENCY, async (id) => {
          const queue = queueOf.get(id) ?? stepQueue(id);
          if (!queueExists(queue)) return;
          const rec = await this.#record(ns, queue, id);
          if (rec) {
            run.tasks.set(id, observation(rec));
            run.published.add(id);
            changed = true;
          } else if (adopting && !run.published.has(id)) {
            const probe = { id, namespace: ns, queue } as TaskMessage;
            if (await this.#d.publisher.isStored(probe)) {
              run.published.add(id);
              changed = true;
            }
          }
        });
        run.adopted = true;
        run.lastRead = nowMs;
      }
      if (plan.loadItems.length > 0) {
        for (const src of plan.loadItems) {
          let value: unknown;
          try {
            value = await this.#result(ns, src);
          } catch (err) {
            if (!(err instanceof Error && err.message.startsWith("the result of step"))) throw err;
            // gone (expired from the results bucket): the step fails, saying so, rather than waiting forever
            for (const s of wf.spec.steps) if (s.forEach?.fromStep === src.name) run.items.set(s.name, { error: `forEach.fromStep ${src.name}: ${err.message}` });
            changed = true;
            continue;
          }
          for (const s of wf.spec.steps) {
            if (s.forEach?.fromStep !== src.name) continue;
            run.items.set(
              s.name,
              !Array.isArray(value) ? { error: `forEach.fromStep ${src.name}: its result is ${value === null ? "null" : typeof value}, not a JSON list` }
              : value.length > MAX_FOR_EACH_ITEMS ? { error: `forEach.fromStep ${src.name}: its result lists ${value.length} items; a forEach fans out to at most ${MAX_FOR_EACH_ITEMS}: split the list, or make each item a batch` }
              : value,
            );
          }
          changed = true;
        }
      }
      if (!changed) return plan;
      plan = planWorkflow(wf, obs());
    }
    return plan;
  }

  /** Maps a task id of this Workflow to the queue of its step (for the re-read of ready tasks). */
  #taskQueues(wf: Workflow): (id: string) => string {
    const uid = wf.metadata.uid ?? "";
    const s = wf.spec;
    return (id) => {
      const name = id.slice(uid.length + 1).split("_")[0]!;
      const step = s.steps.find((x) => x.name === name) ?? (name === "onFailure" ? s.onFailure : name === "onExit" ? s.onExit : undefined);
      return step?.queue ?? s.queue;
    };
  }

  async #record(namespace: string, queue: string, id: string): Promise<TaskRecord | undefined> {
    const e = await (await this.#d.bucket(namespace, queue)).get(id);
    return e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  }

  /**
   * A dependency's result: one task's (`list` false) or the list of its tasks' results.
   * @throws Error when a record is missing or not Succeeded (expired from the results bucket)
   */
  async #result(namespace: string, src: ResultSource, cache?: Map<string, unknown>): Promise<unknown> {
    const hit = cache?.get(src.name);
    if (hit !== undefined || cache?.has(src.name)) return hit;
    const values = new Array<unknown>(src.ids.length);
    await eachLimited(src.ids.map((id, i) => [id, i] as const), IO_CONCURRENCY, async ([id, i]) => {
      const rec = await this.#record(namespace, src.queue, id);
      if (rec?.status.phase !== "Succeeded") throw new Error(`the result of step ${src.name} (task ${id}, queue ${src.queue}) is not in its results bucket${rec ? ` (phase ${rec.status.phase})` : ""}`);
      values[i] = rec.status.result ?? null;
    });
    const value = src.list ? values : values[0];
    cache?.set(src.name, value);
    return value;
  }

  /** Sets the final result (inline, or by reference when larger than 8 KiB) of a Workflow that just succeeded. */
  async #loadResult(wf: Workflow, status: WorkflowStatus, leaves: ResultSource[]): Promise<void> {
    const ns = wf.metadata.namespace ?? "";
    const values = await Promise.all(leaves.map((l) => this.#result(ns, l)));
    const value = leaves.length === 1 ? values[0] : Object.fromEntries(leaves.map((l, i) => [l.name, values[i]]));
    const bytes = Buffer.byteLength(JSON.stringify(value ?? null));
    if (bytes <= MAX_WORKFLOW_INLINE_RESULT_BYTES) status.result = value ?? null;
    else if (leaves.length === 1 && !leaves[0]!.list) status.resultRef = { queue: leaves[0]!.queue, taskId: leaves[0]!.ids[0]!, sizeBytes: bytes };
    else {
      // several leaves or a fan-out: no one record holds it, so it is stored under its own key
      const key = workflowResultKey(wf.metadata.uid ?? "");
      await kvPut(await this.#d.bucket(ns, wf.spec.queue), key, JSON.stringify({ v: 1, result: value ?? null }));
      status.resultRef = { queue: wf.spec.queue, taskId: key, sizeBytes: bytes };
    }
  }

  /** Publishes the planned tasks (a task whose message cannot be built is recorded Failed). */
  async #publish(wf: Workflow, run: Run, tasks: PlannedTask[], ctx: ReconcileContext): Promise<void> {
    if (tasks.length === 0) return;
    const results = new Map<string, unknown>();
    const now = this.#now();
    await eachLimited(tasks, IO_CONCURRENCY, async (t) => {
      let msg: TaskMessage;
      try {
        msg = await this.#message(wf, t, results, now);
      } catch (err) {
        const invalid = err instanceof InvalidTaskMessageError;
        const missing = !invalid && err instanceof Error && err.message.startsWith("the result of step");
        if (!invalid && !missing) throw err;
        await this.#failTask(wf, t, invalid ? "InvalidTaskMessage" : "ResultMissing", (err as Error).message, now);
        ctx.log.warn({ taskId: t.id, step: t.step, err: (err as Error).message }, "Workflow step cannot be published; recorded Failed");
        return;
      }
      await this.#d.publisher.publish(msg);
      run.published.add(t.id);
    });
  }

  /** The message of a planned task: its queue's defaults and flow, the dependencies' results in kwargs, the forEach item first in args. */
  async #message(wf: Workflow, t: PlannedTask, results: Map<string, unknown>, now: Date): Promise<TaskMessage> {
    const ns = wf.metadata.namespace ?? "";
    const kwargs: Record<string, unknown> = { ...((t.run.kwargs ?? {}) as Record<string, unknown>) };
    // a dependency on the step's own queue travels by reference (its worker reads the records: no
    // size limit, and the operator reads nothing); one on another queue by value (the step's
    // worker may not read that bucket), within the message's 256 KiB of args and kwargs
    const kwargsRefs: Record<string, KwargsRef> = {};
    for (const src of t.inputs) {
      if (src.queue !== t.queue || (src.list && src.ids.length === 0)) kwargs[src.name] = await this.#result(ns, src, results);
      else if (!src.list) kwargsRefs[src.name] = { queue: src.queue, id: src.ids[0]! };
      else kwargsRefs[src.name] = { queue: src.queue, each: { prefix: src.ids[0]!.slice(0, src.ids[0]!.lastIndexOf("_") + 1), count: src.ids.length } };
    }
    if (t.workflowArg) kwargs.workflow = t.workflowArg;
    const args = t.item ? [t.item.value, ...(t.run.args ?? [])] : (t.run.args ?? []);
    const queue = this.#d.getQueue(ns, t.queue);
    const asTask = {
      metadata: { name: wf.metadata.name, namespace: ns, uid: t.id },
      spec: {
        queue: t.queue, task: t.run.task, args, kwargs,
        ...(t.run.timeoutSeconds !== undefined ? { timeoutSeconds: t.run.timeoutSeconds } : {}),
        ...(t.run.retry ? { retry: t.run.retry } : {}),
        ...(t.run.priority !== undefined ? { priority: t.run.priority } : {}),
      },
    } as unknown as Task;
    const input = taskMessageInput(asTask, queue?.spec);
    const msg = newTaskMessage({ ...input, origin: { kind: "Workflow", namespace: ns, name: wf.metadata.name, uid: wf.metadata.uid ?? "" } }, now);
    const refs = Object.keys(kwargsRefs).length > 0 ? { kwargsRefs } : {};
    // every step's enqueue span joins the Workflow's trace (its traceparent annotation, else derived from its uid)
    const trace = workflowTraceContext(wf);
    return { ...msg, ...(trace ? { trace } : {}), canvas: { root: wf.metadata.uid ?? "", home: t.queue, step: t.index, workflow: { name: wf.metadata.name, uid: wf.metadata.uid ?? "" }, ...refs } };
  }

  /** Records task `t` Failed without publishing it (its message cannot be built, or an input is gone). */
  async #failTask(wf: Workflow, t: PlannedTask, type: string, message: string, now: Date): Promise<void> {
    const ns = wf.metadata.namespace ?? "";
    const rec = taskRecord({ id: t.id, task: t.run.task, queue: t.queue, namespace: ns, origin: { kind: "Workflow", namespace: ns, name: wf.metadata.name, uid: wf.metadata.uid ?? "" } }, { phase: "Failed", attempts: 0, completionTime: now.toISOString(), error: { type, message } }, now);
    try {
      await (await this.#d.bucket(ns, t.queue)).create(t.id, JSON.stringify(rec));
    } catch (err) {
      if (!isCreateConflict(err)) throw err;
    }
    const runs = this.#runs.get(wf.metadata.uid ?? "");
    runs?.tasks.set(t.id, { phase: "Failed", attempts: 0, completionTime: now.toISOString(), error: { type, message } });
  }

  /** Writes `status` when it differs from the last one (server-side apply, the operator's field manager). */
  async #write(ref: ObjectRef, run: Run, status: WorkflowStatus): Promise<void> {
    const cur = run.status ?? this.#d.getWorkflow(ref.namespace ?? "", ref.name)?.status;
    if (cur && canonical(cur) === canonical(status)) {
      run.status = status;
      return;
    }
    await applyStatus(this.#d.kc, CELERIAC_TYPES.Workflow, { metadata: { name: ref.name, namespace: ref.namespace ?? "" }, status: status as Record<string, unknown> }, FIELD_MANAGERS.operator, { force: true });
    run.status = status;
  }

  /** A finished Workflow: forget its run; delete it after ttlSecondsAfterFinished. */
  async #finished(wf: Workflow, ref: ObjectRef, run: Run, ctx: ReconcileContext): Promise<ReconcileResult> {
    // only the last status is kept (an informer event older than it must not make it plan again)
    run.tasks.clear();
    run.published.clear();
    run.items.clear();
    run.adopted = false;
    const ttl = wf.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return {};
    const at = Date.parse(wf.status?.completionTime ?? "");
    if (Number.isNaN(at)) return {};
    const due = at + ttl * 1000 - this.#now().getTime();
    if (due > 0) return { requeueAfterMs: due };
    await deleteObject(this.#d.kc, ref);
    ctx.log.info({ ttlSecondsAfterFinished: ttl }, "Deleted finished workflow after its TTL");
    return {};
  }

  /** A deleted Workflow: revoke every task that may still run, then release the finalizer. */
  async #finalize(wf: Workflow, ref: ObjectRef, run: Run, ctx: ReconcileContext): Promise<ReconcileResult> {
    if (!wf.metadata.finalizers?.includes(FINALIZERS.workflow)) return {};
    const ns = wf.metadata.namespace ?? "";
    const phase = wf.status?.phase;
    if (phase !== "Succeeded" && phase !== "Failed" && phase !== "Cancelled" && !specProblem(wf.spec)) {
      // every task the plan counts as ready (published or not) and not known finished
      const plan = planWorkflow(wf, { now: this.#now(), tasks: run.tasks, published: run.published, items: run.items, queueExists: () => true });
      const queueOf = this.#taskQueues(wf);
      // what this process published, or (before it looked) everything that may have been
      const ids = plan.ready.filter((id) => !isTerminalPhase(run.tasks.get(id)?.phase) && (!run.adopted || run.published.has(id)));
      await eachLimited(ids, IO_CONCURRENCY, async (id) => {
        const queue = queueOf(id);
        if (!this.#d.getQueue(ns, queue)) return;
        await this.#d.publisher.revoke(ns, queue, id);
        // a reconcile again (the finalizer's patch conflicted) does not revoke, nor count, it twice
        run.tasks.set(id, { phase: "Cancelled" });
      });
      if (ids.length > 0) {
        this.#d.events.event(wf, "Normal", REASONS.Revoked, `Revoked ${ids.length} unfinished task${ids.length === 1 ? "" : "s"} because the Workflow was deleted`);
        ctx.log.info({ revoked: ids.length }, "Revoked the deleted workflow's unfinished tasks");
      }
    }
    try {
      await setFinalizer(this.#d.kc, ref, wf, FINALIZERS.workflow, false, FIELD_MANAGERS.operator);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.#runs.delete(wf.metadata.uid ?? "");
    return {};
  }
}
