/**
 * Queue reconciler: turns a Queue into its NATS resources (stream, consumers, dead-letter stream,
 * results bucket — applied only on drift), the workers' ServiceAccount/Role/RoleBinding and the
 * worker Deployment (or a KEDA ScaledObject), and keeps one scale loop and one delay mover per live
 * Queue, and one flow-control dispatcher per flow-controlled Queue (operator/flow/dispatchers.ts).
 * It runs on Queue and Deployment changes and on the controller's resync (JetStream raises no
 * Kubernetes events, so the resync is what repairs NATS drift).
 *
 * Fixed order, one status write at the end (KEDA's ScaledObject controller):
 *   finalizer/deletion → validate (autoscaling bounds, the flow-control policy) → ensure streams →
 *   delay mover and flow-control dispatcher → ensure RBAC → ensure NATS credentials (minting mode
 *   only) → ensure workers → request the scale loop → status.
 * Each ensure step returns its condition; `queueStatus` builds the status from them. Reading the
 * depth and scaling is the scale loop's job (scale-loop.ts), not the reconcile's.
 *
 * Cheap when nothing changed: the NATS resources and the worker RBAC this reconciler applied for a
 * Queue's uid and generation are not applied again for `recheckMs` (the resync re-applies them, so
 * one deleted behind the operator's back comes back within a resync interval); the worker Deployment
 * is compared with the informer cache and written only on a difference; a new Queue's children are
 * created without a read first.
 */
import type { Waiting } from "../../api/flow.js";
import type { TaskIdentity } from "../../api/message.js";
import type { KubeConfig, V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CONDITION_TYPES, FIELD_MANAGERS, FINALIZERS, REASONS } from "../../api/constants.js";
import { heldNames, isFlowControlled } from "../../api/flow.js";
import { NATS_CREDS_SECRET_KEY, workerCredsSecretName } from "../../api/nats-creds-secrets.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import { CELERIAC_TYPES, type Queue } from "../../api/objects.js";
import type { QueueStatus } from "../../api/queue.js";
import { decideReplicas } from "../autoscale/decision.js";
import type { QueueCredentials } from "../credentials/queue-credentials.js";
import type { TenantNats } from "../credentials/tenant-connections.js";
import { desiredScaledObject } from "../autoscale/keda.js";
import { resolveAutoscaling, type ResolvedAutoscaling } from "../autoscale/policy.js";
import {
  applyChild, BUILTIN_TYPES, getObject, isConflict, isNotFound, patchStatus, setFinalizer, TerminalError,
  type EventSink, type KubeObject, type ObjectRef, type ReconcileContext, type ReconcileKey, type ReconcileResult, type ResourceType,
} from "../runtime/index.js";
import { Dispatchers } from "../flow/dispatchers.js";
import { flowPolicy } from "../flow/flow-state.js";
import { DelayMovers } from "./delay-movers.js";
import { desiredWorkerRole, desiredWorkerRoleBinding, desiredWorkerServiceAccount } from "./desired-rbac.js";
import { desiredWorkerDeployment, isInvalidWorkerTemplate, specNamesTasksModule, type WorkerNatsOptions } from "./desired-workers.js";
import { workerDeploymentName } from "./labels.js";
import { TenantQueueNats, type QueueNats } from "./queue-nats.js";
import { queueSettingsFromSpec } from "./queue-settings.js";
import { publishQueueSettings } from "./queue-settings-publish.js";
import { invalidSpecStatus, KEDA_MISSING_MESSAGE, queueStatus, rfc3339, statusChanges, workerPodProblem, workersCondition, type StepCondition } from "./queue-status.js";
import { PauseWatches } from "./pause-watches.js";
import { ScaleLoops, type ScaleLoopDeps } from "./scale-loop.js";

export type { QueueDepth, QueueNats } from "./queue-nats.js";


/** Start of the InvalidSpec message of a Queue whose worker names no tasks module. */
const NO_TASKS_MODULE = "spec.worker names no tasks module (no CELERIAC_TASKS in spec.worker.env or the template, no --tasks argument)";

/** Dependencies of the Queue reconciler. */
export interface QueueReconcilerDeps {
  kc: KubeConfig;
  /** The Queue from the informer cache. */
  getQueue(namespace: string, name: string): Queue | undefined;
  /** The worker Deployment from the informer cache. */
  getDeployment(namespace: string, name: string): V1Deployment | undefined;
  /** The Queue's worker Pods from the informer cache (label `celeriac.io/queue`); none when absent. */
  listWorkerPods?(namespace: string, queue: string): V1Pod[];
  /**
   * The NATS connection of each namespace: its streams, consumers, bucket and delay movers (one
   * connection for all but in accounts mode, operator/credentials/tenant-connections.ts).
   */
  tenants: Pick<TenantNats, "forNamespace">;
  events: EventSink;
  /** Base logger of the scale loops and delay movers (reconciles log through `ctx.log`). */
  log: Logger;
  workerNats: WorkerNatsOptions;
  workerImage?: string;
  /** Environment every worker container gets unless its own env sets the name (the OTEL_* export settings). */
  workerDefaultEnv?: Readonly<Record<string, string>>;
  /** NATS monitoring endpoint (host:port) for KEDA mode. */
  natsMonitoringEndpoint?: string;
  /**
   * Minting mode: keeps each Queue's worker and its namespace's producer credential Secrets, and worker
   * pods mount `<queue>-worker-nats` instead of `workerNats.credsSecret`. Absent = shared credentials.
   */
  credentials?: QueueCredentials;
  /** Called by the scale loops with what each read saw of a queue (metrics). */
  onObserved?: ScaleLoopDeps["onObserved"];
  /** Called when a queue's scale loop is removed (its metrics go). */
  onRemoved?: ScaleLoopDeps["onRemoved"];
  /**
   * Called when a flow-controlled Queue's dispatcher has held a Task's task ≥ 1 s (not awaited):
   * the operator puts `status.waiting` on the Task (operator/task/task-waiting.ts).
   */
  onTaskWaiting?: (identity: TaskIdentity, waiting: Waiting) => void;
  /**
   * How long NATS resources and worker RBAC applied for one uid, generation and desired state are
   * trusted before a reconcile applies them again, ms. Default 15 000; the operator passes half its
   * resync period, so every resync re-applies them. 0 re-applies on every reconcile.
   */
  recheckMs?: number;
  now?: () => number;
}

/** What a reconcile last applied for one Queue: its uid, the desired state (JSON) and when, ms. */
interface Applied {
  uid: string | undefined;
  desired: string;
  at: number;
}

const SCALED_OBJECT: ResourceType = { group: "keda.sh", version: "v1alpha1", plural: "scaledobjects", kind: "ScaledObject", namespaced: true };

/** What one ensure-workers step found. */
interface WorkersOutcome {
  condition: StepCondition;
  replicas: number;
  readyReplicas: number;
  /** Set when the step created the Deployment (builtin provider). */
  lastScaleTime?: string;
}

/** Reconciles Queue resources; owns the scale loops and delay movers of the Queues it has seen. */
export class QueueReconciler {
  readonly #d: QueueReconcilerDeps;
  readonly #now: () => number;
  readonly #loops: ScaleLoops;
  readonly #movers: DelayMovers;
  readonly #dispatchers: Dispatchers;
  readonly #pauses: PauseWatches;
  readonly #nats: QueueNats;
  /** The reconcile's status fields last written per Queue (the cache may not show them yet). */
  readonly #written = new Map<string, { uid: string | undefined; status: QueueStatus }>();
  /** NATS resources and settings applied per Queue (`namespace/name`). */
  readonly #appliedNats = new Map<string, Applied>();
  /** Worker RBAC applied per Queue (`namespace/name`). */
  readonly #appliedRbac = new Map<string, Applied>();
  readonly #recheckMs: number;
  #stopping: Promise<void> | undefined;

  constructor(deps: QueueReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    this.#recheckMs = deps.recheckMs ?? 15_000;
    this.#nats = new TenantQueueNats(deps.tenants);
    const jsFor = async (ns: string) => (await deps.tenants.forNamespace(ns)).js;
    this.#dispatchers = new Dispatchers(jsFor, deps.log.child({ controller: "queue" }), deps.onTaskWaiting);
    this.#loops = new ScaleLoops({
      kc: deps.kc, getQueue: deps.getQueue, getDeployment: deps.getDeployment, nats: this.#nats, events: deps.events,
      log: deps.log.child({ controller: "queue" }), now: this.#now, ...(deps.onObserved ? { onObserved: deps.onObserved } : {}), ...(deps.onRemoved ? { onRemoved: deps.onRemoved } : {}),
      flow: (ns, name) => this.#dispatchers.status(ns, name),
      paused: (ns, name) => this.#pauses.paused(ns, name),
    });
    this.#pauses = new PauseWatches(jsFor, deps.log.child({ controller: "queue" }), (ns, name) => this.#loops.kick(ns, name));
    this.#movers = new DelayMovers(jsFor, deps.log.child({ controller: "queue" }));
  }

  /**
   * Reconciles the Queue `key`.
   * @returns `requeueAfterMs` of one polling interval while the streams cannot be applied, and in
   *   minting mode no later than the next credential renewal; else nothing
   * @throws TerminalError (reason InvalidSpec) when the spec cannot be reconciled, after writing the
   *   InvalidSpec condition; not thrown again for the same generation and message
   * @throws Error on API or NATS failures (retried by the controller with back-off)
   */
  async reconcile(key: ReconcileKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const { namespace, name } = key;
    const log = ctx.log;
    const q = this.#d.getQueue(namespace, name);
    if (!q) {
      await this.#forget(namespace, name);
      await this.#d.credentials?.remove(namespace, name, log);
      return;
    }
    const ref: ObjectRef = { ...CELERIAC_TYPES.Queue, namespace, name };
    const now = new Date(this.#now());

    let names: QueueNames;
    try {
      names = queueNames(namespace, name);
    } catch (err) {
      return this.#invalid(q, ref, `${(err as Error).message}: rename the Queue`, now);
    }

    if (q.metadata.deletionTimestamp) {
      await this.#forget(namespace, name);
      await this.#d.credentials?.remove(namespace, name, log, q);
      await this.#finalize(q, ref, names, log);
      return;
    }
    // A finalizer only when there is state outside the cluster to clean up: the streams under Delete.
    await setFinalizer(this.#d.kc, ref, q, FINALIZERS.queue, q.spec.deletionPolicy === "Delete", FIELD_MANAGERS.operator);

    const policy = resolveAutoscaling(q.spec);
    if (policy.minReplicas > policy.maxReplicas) {
      return this.#invalid(q, ref, `spec.autoscaling.minReplicas (${policy.minReplicas}) must not exceed maxReplicas (${policy.maxReplicas}): lower minReplicas or raise maxReplicas`, now);
    }

    if (isFlowControlled(q.spec)) {
      try {
        flowPolicy(q.spec);
      } catch (err) {
        return this.#invalid(q, ref, `${(err as Error).message}: fix the Queue's flow control fields`, now);
      }
    }

    // No worker Deployment in the cache and nothing applied yet: a new Queue, whose children are created without reads first.
    const isNew = !this.#d.getDeployment(namespace, workerDeploymentName(name)) && this.#appliedRbac.get(`${namespace}/${name}`)?.uid !== q.metadata.uid;
    const stream = await this.#ensureStreams(q, names, log);
    if (stream.status === "True") await this.#movers.ensure(namespace, name, names);
    // flow control: start, update, restart or drain the Queue's dispatcher (a failure is retried
    // at the next polling interval; the rest of the reconcile goes on)
    let dispatcherFailed = false;
    if (stream.status === "True") {
      try {
        await this.#dispatchers.ensure(q, names);
      } catch (err) {
        dispatcherFailed = true;
        log.warn({ err }, "Failed to start the flow-control dispatcher");
      }
    }
    // the pause (celeriac queue pause) the scale loop holds the worker count for; a failure is
    // retried at the next polling interval, the loop meanwhile scales as if the queue ran
    let pauseFailed = false;
    if (stream.status === "True") {
      try {
        await this.#pauses.ensure(namespace, name, names);
      } catch (err) {
        pauseFailed = true;
        log.warn({ err }, "Failed to watch the queue's pause");
      }
    }
    await this.#ensureRbac(q, isNew);
    const creds = await this.#d.credentials?.ensure(q, log);
    const workers = await this.#ensureWorkers(q, ref, policy, now, log, isNew);
    if ("invalid" in workers) return this.#invalid(q, ref, workers.invalid, now, workers.workers);
    this.#loops.request(q);

    await this.#writeStatus(q, ref, queueStatus({
      current: this.#seen(q, ref), generation: q.metadata.generation, now, streamName: names.stream, stream: stream.condition, workers: workers.condition,
      suspended: q.spec.suspend === true, replicas: workers.replicas, readyReplicas: workers.readyReplicas,
      ...(workers.lastScaleTime !== undefined ? { lastScaleTime: workers.lastScaleTime } : {}),
    }));
    // JetStream raises no event when it recovers: retry the streams once per polling interval.
    const retryMs = stream.status === "True" && !dispatcherFailed && !pauseFailed ? undefined : policy.pollingIntervalSeconds * 1000;
    // Come back when a credential falls due (a little after, so the decision sees it due).
    const renewMs = creds ? Math.max(1000, creds.renewAt.getTime() - this.#now() + 100) : undefined;
    const after = Math.min(retryMs ?? Infinity, renewMs ?? Infinity);
    return Number.isFinite(after) ? { requeueAfterMs: after } : undefined;
  }

  /** Stops every scale loop, delay mover and dispatcher (memoised). Reconciles must have stopped first. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const [what, step] of [["scale loops", () => this.#loops.stop()], ["delay movers", () => this.#movers.stop()], ["dispatchers", () => this.#dispatchers.stop()], ["pause watches", async () => this.#pauses.stop()]] as const) {
        try {
          await step();
        } catch (err) {
          this.#d.log.warn({ err }, `Failed to stop ${what}`);
        }
      }
    })();
    return this.#stopping;
  }

  /**
   * Ensure streams: creates missing and updates drifted NATS resources, with an Event per change.
   * @returns StreamReady, False with reason StreamError (and a Warning Event) when NATS refuses
   */
  async #ensureStreams(q: Queue, names: QueueNames, log: Logger): Promise<{ status: "True" | "False"; condition: StepCondition }> {
    const type = CONDITION_TYPES.Queue.StreamReady;
    const ready = { status: "True" as const, condition: { type, status: "True" as const, reason: REASONS.Reconciled, message: `stream ${names.stream} and consumers are in place` } };
    const key = `${names.namespace}/${names.queue}`;
    const settings = queueSettingsFromSpec(q.spec);
    const desired = JSON.stringify([q.metadata.generation, settings]);
    if (this.#fresh(this.#appliedNats.get(key), q, desired)) return ready;
    this.#appliedNats.delete(key);
    try {
      const changes = await this.#nats.ensure(names, settings);
      await publishQueueSettings((await this.#d.tenants.forNamespace(names.namespace)).js, names, q);
      // One Event per kind of change (a new Queue's six resources are one StreamCreated Event).
      for (const action of ["created", "updated"] as const) {
        const done = changes.filter((x) => x.action === action);
        if (done.length === 0) continue;
        const what = done.map((c) => `${c.kind} ${c.name}${c.drift.length ? ` (${c.drift.map((d) => d.field).join(", ")} drifted)` : ""}`).join(", ");
        this.#d.events.event(q, "Normal", action === "created" ? REASONS.StreamCreated : REASONS.StreamUpdated, `${action === "created" ? "Created" : "Updated"} ${what}`);
        for (const c of done) log.info({ kind: c.kind, resource: c.name, action: c.action, drift: c.drift }, "Applied NATS resource");
      }
      this.#appliedNats.set(key, { uid: q.metadata.uid, desired, at: this.#now() });
      return ready;
    } catch (err) {
      const message = (err as Error).message;
      this.#d.events.event(q, "Warning", REASONS.StreamError, message);
      log.warn({ err }, "Failed to apply NATS resources");
      return { status: "False", condition: { type, status: "False", reason: REASONS.StreamError, message } };
    }
  }

  /**
   * Ensure RBAC: the workers' ServiceAccount (unless the user names one), Role and RoleBinding. The
   * closed condition vocabulary has no RBAC condition, so a failure throws and is retried.
   * @throws Error on API failures
   */
  async #ensureRbac(q: Queue, isNew: boolean): Promise<void> {
    const sa = desiredWorkerServiceAccount(q);
    const children: Array<[ResourceType, KubeObject]> = [
      ...(sa ? [[BUILTIN_TYPES.ServiceAccount, sa as unknown as KubeObject] as [ResourceType, KubeObject]] : []),
      [BUILTIN_TYPES.Role, desiredWorkerRole(q) as unknown as KubeObject],
      [BUILTIN_TYPES.RoleBinding, desiredWorkerRoleBinding(q) as unknown as KubeObject],
    ];
    const key = `${q.metadata.namespace}/${q.metadata.name}`;
    const desired = JSON.stringify(children.map(([, o]) => o));
    if (this.#fresh(this.#appliedRbac.get(key), q, desired)) return;
    this.#appliedRbac.delete(key);
    // A new Queue's children are created straight away, without a read first.
    await Promise.all(children.map(([type, obj]) => applyChild(this.#d.kc, type, obj, FIELD_MANAGERS.operator, isNew ? { live: null } : {})));
    this.#appliedRbac.set(key, { uid: q.metadata.uid, desired, at: this.#now() });
  }

  /** True when `applied` is for this Queue's uid and the same desired state, less than `recheckMs` ago. */
  #fresh(applied: Applied | undefined, q: Queue, desired: string): boolean {
    return applied !== undefined && applied.uid === q.metadata.uid && applied.desired === desired && this.#now() - applied.at < this.#recheckMs;
  }

  /**
   * Ensure workers: the worker Deployment (replicas only on creation — later changes go through the
   * scale subresource, from the scale loop) and, in KEDA mode, the ScaledObject.
   * @returns WorkersReady from the applied Deployment, and its pod counts; `invalid` with the message
   *   when the worker template cannot produce a valid pod (nothing applied)
   */
  async #ensureWorkers(q: Queue, ref: ObjectRef, policy: ResolvedAutoscaling, now: Date, log: Logger, isNew: boolean): Promise<WorkersOutcome | { invalid: string; workers?: StepCondition }> {
    const live = this.#d.getDeployment(ref.namespace!, workerDeploymentName(ref.name));
    let deployment: V1Deployment;
    try {
      deployment = desiredWorkerDeployment(q, {
        nats: this.#d.credentials
          ? { ...this.#d.workerNats, credsSecret: { name: workerCredsSecretName(ref.name), key: NATS_CREDS_SECRET_KEY } }
          : this.#d.workerNats,
        ...(this.#d.workerImage ? { workerImage: this.#d.workerImage } : {}),
        ...(this.#d.workerDefaultEnv && Object.keys(this.#d.workerDefaultEnv).length > 0 ? { defaultEnv: this.#d.workerDefaultEnv } : {}),
        ...(live ? {} : { replicas: initialReplicas(policy, q.spec.suspend === true, now.getTime()) }),
      });
    } catch (err) {
      if (!isInvalidWorkerTemplate(err)) throw err;
      return { invalid: err.message };
    }
    // The cached Deployment saves the read: nothing is written when it already has every desired
    // field (a change to it raises an event, so the cache is current enough); a new Queue's is created at once.
    const applied = await applyChild(this.#d.kc, BUILTIN_TYPES.Deployment, deployment, FIELD_MANAGERS.operator, live ? { live } : isNew ? { live: null } : {});
    const d = applied.object as V1Deployment;
    const kedaMissing = policy.provider === "keda" && !(await this.#applyScaledObject(q, log));
    const readyReplicas = d.status?.readyReplicas ?? 0;
    const problem = workerPodProblem(this.#d.listWorkerPods?.(ref.namespace!, ref.name) ?? []);
    if (!specNamesTasksModule(q)) {
      // No tasks module in the spec and workers that exit at start: the spec must name one. Once
      // recorded for this generation it stays while no worker is ready, so the conditions do not
      // flap as the pods cycle between CrashLoopBackOff, a fresh start and the next exit.
      const ready = this.#seen(q, ref)?.conditions?.find((c) => c.type === CONDITION_TYPES.Queue.Ready);
      const recorded = ready?.reason === REASONS.InvalidSpec && ready.message.startsWith(NO_TASKS_MODULE) && ready.observedGeneration === q.metadata.generation;
      const invalid = problem?.reason === REASONS.WorkersCrashLooping
        ? `${NO_TASKS_MODULE} and the workers exit at start${problem.lastError ? `: ${problem.lastError}` : ""}: set CELERIAC_TASKS to the compiled tasks module, e.g. dist/tasks.js`
        : recorded && readyReplicas === 0 ? ready.message : undefined;
      if (invalid) return { invalid, workers: { type: CONDITION_TYPES.Queue.WorkersReady, status: "False", reason: REASONS.InvalidSpec, message: invalid } };
    }
    return {
      condition: workersCondition({ provider: policy.provider, kedaMissing, suspended: q.spec.suspend === true, desired: d.spec?.replicas ?? 0, ready: readyReplicas, ...(problem ? { problem } : {}) }),
      replicas: d.status?.replicas ?? 0,
      readyReplicas,
      ...(applied.action === "created" && policy.provider === "builtin" ? { lastScaleTime: rfc3339(now.getTime()) } : {}),
    };
  }

  /**
   * Applies the Queue's KEDA ScaledObject.
   * @returns false when the API server does not serve `scaledobjects.keda.sh` (KEDA not installed):
   *   a 404 on create, since the Queue's namespace exists
   * @throws Error on other API failures
   */
  async #applyScaledObject(q: Queue, log: Logger): Promise<boolean> {
    // Minting modes: KEDA reads the consumer from /jsz of the account the streams live in.
    const account = await this.#d.credentials?.accountOf(q.metadata.namespace!);
    const so = desiredScaledObject(q, { natsMonitoringEndpoint: this.#d.natsMonitoringEndpoint ?? "nats:8222", ...(account ? { account } : {}) });
    try {
      await applyChild(this.#d.kc, SCALED_OBJECT, so, FIELD_MANAGERS.operator);
      return true;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!q.status?.conditions?.some((c) => c.type === CONDITION_TYPES.Queue.WorkersReady && c.message === KEDA_MISSING_MESSAGE)) {
        this.#d.events.event(q, "Warning", REASONS.KedaNotInstalled, KEDA_MISSING_MESSAGE);
        log.warn({ err }, "Failed to apply ScaledObject: KEDA is not installed");
      }
      return false;
    }
  }

  /**
   * A spec that retrying cannot fix: stops the Queue's scale loop, writes Ready False InvalidSpec,
   * and throws a TerminalError (the controller records it as a Warning Event). When the status
   * already records this message for this generation, the error is recorded already: returns quietly.
   * @throws TerminalError with reason InvalidSpec
   */
  async #invalid(q: Queue, ref: ObjectRef, message: string, now: Date, workers?: StepCondition): Promise<ReconcileResult> {
    await this.#loops.remove(ref.namespace!, ref.name);
    const gen = q.metadata.generation;
    const ready = this.#seen(q, ref)?.conditions?.find((c) => c.type === CONDITION_TYPES.Queue.Ready);
    const recorded = ready?.reason === REASONS.InvalidSpec && ready.message === message && ready.observedGeneration === gen;
    await this.#writeStatus(q, ref, invalidSpecStatus(this.#seen(q, ref), gen, message, now, workers));
    if (recorded) return;
    throw new TerminalError(message, { reason: REASONS.InvalidSpec });
  }

  /** The Queue's status as the cache shows it, with what this reconciler wrote since on top. */
  #seen(q: Queue, ref: ObjectRef): QueueStatus | undefined {
    const mine = this.#written.get(`${ref.namespace}/${ref.name}`);
    return mine && mine.uid === q.metadata.uid ? { ...q.status, ...mine.status } : q.status;
  }

  /** Writes the fields of `status` that differ from what the Queue shows (or this reconciler last wrote). */
  async #writeStatus(q: Queue, ref: ObjectRef, status: QueueStatus): Promise<void> {
    const key = `${ref.namespace}/${ref.name}`;
    const mine = this.#written.get(key);
    const patch = statusChanges(this.#seen(q, ref), status);
    if (!patch) return;
    await patchStatus(this.#d.kc, ref, patch as Record<string, unknown>, FIELD_MANAGERS.operator);
    this.#written.set(key, { uid: q.metadata.uid, status: { ...(mine && mine.uid === q.metadata.uid ? mine.status : {}), ...patch } });
  }

  /** Stops the Queue's scale loop, delay mover and dispatcher and forgets what was written for it. */
  async #forget(namespace: string, name: string): Promise<void> {
    this.#written.delete(`${namespace}/${name}`);
    this.#appliedNats.delete(`${namespace}/${name}`);
    this.#appliedRbac.delete(`${namespace}/${name}`);
    await this.#loops.remove(namespace, name);
    await this.#movers.remove(namespace, name);
    await this.#dispatchers.remove(namespace, name);
    this.#pauses.remove(namespace, name);
  }

  async #finalize(q: Queue, ref: ObjectRef, names: QueueNames, log: Logger): Promise<void> {
    if (!q.metadata.finalizers?.includes(FINALIZERS.queue)) return;
    if (q.spec.deletionPolicy === "Delete") {
      await this.#nats.remove(names);
      this.#d.events.event(q, "Normal", REASONS.StreamDeleted, `Deleted streams ${names.stream}, ${names.delayedStream}, ${names.deadLetterStream}${isFlowControlled(q.spec) ? `, ${heldNames(names).stream}` : ""} and bucket ${names.resultsBucket} (deletionPolicy Delete)`);
      log.info("Deleted NATS resources of deleted queue");
    }
    try {
      await setFinalizer(this.#d.kc, ref, q, FINALIZERS.queue, false, FIELD_MANAGERS.operator);
    } catch (err) {
      // a status write of the scale loop (stopped just before) can make the cached Queue stale:
      // the cleanup is done, so release it from the live object
      if (!isConflict((err as Error).cause ?? err)) throw err;
      await setFinalizer(this.#d.kc, ref, await getObject<Queue & KubeObject>(this.#d.kc, ref), FINALIZERS.queue, false, FIELD_MANAGERS.operator);
    }
  }
}

/**
 * Replicas of a newly created worker Deployment: KEDA mode `minReplicas` (so the API server's
 * default of 1 does not start a worker KEDA would stop again); builtin, the decision for an empty
 * queue (0 with minReplicas 0, else minReplicas; the fixed size; 0 when suspended). The scale loop's
 * first read, at once, corrects it for a queue that already has a backlog.
 */
function initialReplicas(policy: ResolvedAutoscaling, suspended: boolean, now: number): number {
  if (policy.provider === "keda") return policy.minReplicas;
  return decideReplicas({ backlog: 0, inFlight: 0, current: 0, policy, suspended, now, history: [] }).desired;
}
