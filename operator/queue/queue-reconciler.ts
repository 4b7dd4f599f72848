/**
 * Queue reconciler: turns a Queue into its NATS resources (stream, consumers, dead-letter stream,
 * results bucket — applied only on drift), the workers' ServiceAccount/Role/RoleBinding, the worker
 * Deployment (or a KEDA ScaledObject), and scales the workers by queue depth every
 * `pollingIntervalSeconds` (JetStream raises no Kubernetes events, so the reconcile requeues itself).
 *
 * Fixed order, one status write at the end (KEDA's controller pattern):
 *   finalizer/deletion → validate → NATS resources → RBAC → backlog → scale decision → Deployment → status.
 */
import type { KubeConfig, V1Deployment } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CONDITION_TYPES, FIELD_MANAGERS, FINALIZERS, GROUP, REASONS, RESOURCES, VERSION } from "../../api/constants.js";
import { setCondition, type Condition } from "../../api/conditions.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import type { QueueSpec, QueueStatus } from "../../api/queue.js";
import type { ResourceChange } from "../../nats/queue-resources.js";
import type { QueueSettings } from "../../nats/queue-settings.js";
import { decideReplicas, type Recommendation } from "../autoscale/decision.js";
import { desiredScaledObject } from "../autoscale/keda.js";
import { resolveAutoscaling } from "../autoscale/policy.js";
import { applyChild, BUILTIN_TYPES, isNotFound, kubeRequest, patchStatus, setFinalizer, resourcePath, type KubeObject, type ObjectRef, type ResourceType } from "../../kube/k8s-client.js";
import type { EventSink } from "../runtime/events.js";
import { desiredWorkerRole, desiredWorkerRoleBinding, desiredWorkerServiceAccount } from "./desired-rbac.js";
import { desiredWorkerDeployment, isInvalidWorkerTemplate, type WorkerNatsOptions } from "./desired-workers.js";
import { workerDeploymentName } from "./labels.js";
import { queueSettingsFromSpec } from "./queue-settings.js";

/** A Queue as read from the cache. */
export interface QueueObjectResource extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; generation?: number; resourceVersion?: string; finalizers?: string[]; deletionTimestamp?: string };
  spec: QueueSpec;
  status?: QueueStatus;
}

/** Queue depth read from JetStream. */
export interface QueueDepth {
  /** Messages not yet delivered to any worker (`num_pending` of the worker consumer). */
  pending: number;
  /** Delivered, not yet acknowledged (`num_ack_pending`). */
  inFlight: number;
  /** Messages in the delay stream (countdown/eta not reached). */
  delayed: number;
  /** Delayed messages whose time has come (counted as backlog). */
  dueDelayed: number;
  /** Messages in the dead-letter stream. */
  deadLetters: number;
}

/** NATS operations the Queue reconciler needs. */
export interface QueueNats {
  /** Creates missing and updates drifted streams, consumers and bucket. */
  ensure(names: QueueNames, settings: QueueSettings): Promise<ResourceChange[]>;
  /** Reads the queue's depth. */
  depth(names: QueueNames): Promise<QueueDepth>;
  /** Deletes the queue's streams and results bucket (deletionPolicy Delete). */
  remove(names: QueueNames): Promise<void>;
}

/** Dependencies of the Queue reconciler. */
export interface QueueReconcilerDeps {
  kc: KubeConfig;
  getQueue(namespace: string, name: string): QueueObjectResource | undefined;
  getDeployment(namespace: string, name: string): V1Deployment | undefined;
  nats: QueueNats;
  events: EventSink;
  log: Logger;
  workerNats: WorkerNatsOptions;
  workerImage?: string;
  /** NATS monitoring endpoint (host:port) for KEDA mode. */
  natsMonitoringEndpoint?: string;
  /**
   * Between spec changes, NATS resources and worker RBAC are re-applied at most this often, ms (default
   * 30 000); the polls in between only read depth, scale and write status. Drift (a stream deleted behind
   * the operator's back) is therefore repaired within this interval.
   */
  fullSyncEveryMs?: number;
  /** Called with each queue's backlog and desired replicas (metrics). */
  onObserved?: (namespace: string, queue: string, backlog: number, desired: number) => void;
  now?: () => number;
}

/** Result of one reconcile. */
export interface QueueReconcileResult {
  requeueAfterMs?: number;
}

const QUEUE_GVR = { group: GROUP, version: VERSION, plural: RESOURCES.Queue.plural };
/** WorkersReady message of a `provider: keda` Queue on a cluster without KEDA's CRD. */
const KEDA_MISSING_MESSAGE =
  "autoscaling.provider is keda but the API server does not serve scaledobjects.keda.sh (KEDA is not installed): install KEDA, or set spec.autoscaling.provider to builtin";
const SCALED_OBJECT: ResourceType = { group: "keda.sh", version: "v1alpha1", plural: "scaledobjects", kind: "ScaledObject", namespaced: true };

/** What the reconciler remembers per Queue between polls. */
interface QueueState {
  /** Autoscaling recommendations in the stabilization window. */
  history: Recommendation[];
  /** When backlog or in-flight was last above zero, ms. */
  lastActiveAt?: number;
  /** Generation and time (ms) of the last full apply of NATS resources and RBAC. */
  applied?: { generation: number | undefined; at: number };
}

/** Reconciles Queue resources; keeps per-queue autoscaling history in memory. */
export class QueueReconciler {
  readonly #d: QueueReconcilerDeps;
  readonly #scale = new Map<string, QueueState>();
  readonly #now: () => number;

  constructor(deps: QueueReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Reconciles the Queue `namespace/name`.
   * @throws Error on API or NATS failures (retried by the controller with back-off)
   */
  async reconcile(namespace: string, name: string): Promise<QueueReconcileResult> {
    const q = this.#d.getQueue(namespace, name);
    if (!q) {
      this.#scale.delete(`${namespace}/${name}`);
      return {};
    }
    const ref: ObjectRef = { ...QUEUE_GVR, namespace, name };
    const now = this.#now();
    const gen = q.metadata.generation;
    let conditions = (q.status?.conditions ?? []) as Condition[];
    const cond = (type: string, status: "True" | "False", reason: string, message: string) => {
      conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: gen }, new Date(now));
    };

    let names: QueueNames;
    try {
      names = queueNames(namespace, name);
    } catch (err) {
      cond(CONDITION_TYPES.Queue.Ready, "False", REASONS.InvalidSpec, `${(err as Error).message}: rename the Queue`);
      await this.#writeStatus(q, ref, { ...q.status, conditions, observedGeneration: gen });
      return {};
    }

    if (q.metadata.deletionTimestamp) return this.#finalize(q, ref, names);
    await this.#syncFinalizer(q, ref);

    const policy = resolveAutoscaling(q.spec);
    if (policy.minReplicas > policy.maxReplicas) {
      cond(CONDITION_TYPES.Queue.Ready, "False", REASONS.InvalidSpec, `spec.autoscaling.minReplicas (${policy.minReplicas}) must not exceed maxReplicas (${policy.maxReplicas}): lower minReplicas or raise maxReplicas`);
      await this.#writeStatus(q, ref, { ...q.status, conditions, observedGeneration: gen });
      this.#d.events.event(q, "Warning", REASONS.InvalidSpec, "minReplicas exceeds maxReplicas");
      return {};
    }

    const key = `${namespace}/${name}`;
    const state: QueueState = this.#scale.get(key) ?? { history: [] };
    this.#scale.set(key, state);
    const streamWasReady = conditions.some((c) => c.type === CONDITION_TYPES.Queue.StreamReady && c.status === "True");
    const fullSync = !state.applied || state.applied.generation !== gen || !streamWasReady || now - state.applied.at >= (this.#d.fullSyncEveryMs ?? 30_000);

    // NATS resources, applied on drift (on spec changes, after errors, and every fullSyncEveryMs)
    let streamOk = true;
    if (fullSync) try {
      const changes = await this.#d.nats.ensure(names, queueSettingsFromSpec(q.spec));
      for (const c of changes.filter((x) => x.action === "created" || x.action === "updated")) {
        const what = `${c.action === "created" ? "Created" : "Updated"} ${c.kind} ${c.name}`;
        this.#d.events.event(q, "Normal", c.action === "created" ? REASONS.StreamCreated : REASONS.StreamUpdated, c.drift.length ? `${what}: ${c.drift.map((d) => d.field).join(", ")} drifted` : what);
        this.#d.log.info({ kind: c.kind, resource: c.name, action: c.action, drift: c.drift }, "Applied NATS resource");
      }
      cond(CONDITION_TYPES.Queue.StreamReady, "True", REASONS.Reconciled, `stream ${names.stream} and consumers are in place`);
    } catch (err) {
      streamOk = false;
      const message = `${(err as Error).message}`;
      cond(CONDITION_TYPES.Queue.StreamReady, "False", REASONS.StreamError, message);
      this.#d.events.event(q, "Warning", REASONS.StreamError, message);
      this.#d.log.warn({ err }, "Failed to apply NATS resources");
    }

    // RBAC for the workers
    if (fullSync) {
      const sa = desiredWorkerServiceAccount(q);
      if (sa) await applyChild(this.#d.kc, BUILTIN_TYPES.ServiceAccount, sa as unknown as KubeObject, FIELD_MANAGERS.operator);
      await applyChild(this.#d.kc, BUILTIN_TYPES.Role, desiredWorkerRole(q) as unknown as KubeObject, FIELD_MANAGERS.operator);
      await applyChild(this.#d.kc, BUILTIN_TYPES.RoleBinding, desiredWorkerRoleBinding(q) as unknown as KubeObject, FIELD_MANAGERS.operator);
      if (streamOk) state.applied = { generation: gen, at: now };
    }

    // depth and the scaling decision
    const depth: QueueDepth = streamOk ? await this.#d.nats.depth(names) : { pending: 0, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 };
    const backlog = depth.pending + depth.inFlight + depth.dueDelayed;
    const deployName = workerDeploymentName(name);
    const live = this.#d.getDeployment(namespace, deployName);
    const current = live?.spec?.replicas ?? 0;
    let desired = current;
    let reason = "";
    if (policy.provider === "builtin") {
      const decision = decideReplicas({
        backlog, inFlight: depth.inFlight, current, policy, suspended: q.spec.suspend === true, now,
        history: state.history, ...(state.lastActiveAt !== undefined ? { lastActiveAt: state.lastActiveAt } : {}),
      });
      state.history = decision.history;
      state.lastActiveAt = decision.lastActiveAt;
      desired = decision.desired;
      reason = decision.reason;
    }

    // the worker Deployment: replicas only on creation (KEDA mode: minReplicas, so the API server's
    // default of 1 does not start a worker KEDA would stop again); later changes go through the scale subresource
    let deployment: V1Deployment;
    try {
      deployment = desiredWorkerDeployment(q, {
        nats: this.#d.workerNats,
        ...(this.#d.workerImage ? { workerImage: this.#d.workerImage } : {}),
        ...(live ? {} : { replicas: policy.provider === "keda" ? policy.minReplicas : desired }),
      });
    } catch (err) {
      if (!isInvalidWorkerTemplate(err)) throw err;
      cond(CONDITION_TYPES.Queue.Ready, "False", REASONS.InvalidSpec, (err as Error).message);
      await this.#writeStatus(q, ref, { ...q.status, conditions, observedGeneration: gen });
      this.#d.events.event(q, "Warning", REASONS.InvalidSpec, (err as Error).message);
      return {};
    }
    const applied = await applyChild(this.#d.kc, BUILTIN_TYPES.Deployment, deployment as unknown as KubeObject, FIELD_MANAGERS.operator);
    const liveDeploy = applied.object as V1Deployment;
    let lastScaleTime = q.status?.lastScaleTime;
    let kedaMissing = false;
    if (policy.provider === "keda") {
      kedaMissing = !(await this.#applyScaledObject(q));
      desired = liveDeploy.spec?.replicas ?? 0;
    } else if ((liveDeploy.spec?.replicas ?? 0) !== desired) {
      const from = liveDeploy.spec?.replicas ?? 0;
      await kubeRequest(this.#d.kc, {
        method: "PATCH",
        path: resourcePath(BUILTIN_TYPES.Deployment, namespace, deployName, "scale"),
        query: { fieldManager: FIELD_MANAGERS.operator },
        body: { spec: { replicas: desired } },
        contentType: "application/merge-patch+json",
      });
      lastScaleTime = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
      this.#d.events.event(q, "Normal", "Scaled", `Scaled workers from ${from} to ${desired}: ${reason || `backlog ${backlog}`}`);
      this.#d.log.info({ from, to: desired, backlog, inFlight: depth.inFlight, reason }, "Scaled workers");
    } else if (applied.action === "created") {
      lastScaleTime = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
    }
    this.#d.onObserved?.(namespace, name, backlog, desired);

    // conditions and the one status write
    const ready = liveDeploy.status?.readyReplicas ?? 0;
    const replicas = liveDeploy.status?.replicas ?? 0;
    if (kedaMissing) cond(CONDITION_TYPES.Queue.WorkersReady, "False", REASONS.KedaNotInstalled, KEDA_MISSING_MESSAGE);
    else if (q.spec.suspend) cond(CONDITION_TYPES.Queue.WorkersReady, "True", REASONS.Suspended, "the queue is suspended: no workers run and tasks wait in the stream");
    else if (desired === 0) {
      cond(CONDITION_TYPES.Queue.WorkersReady, "True", REASONS.ScaledToZero, policy.provider === "keda"
        ? `KEDA scales the workers; none run now (backlog ${backlog})`
        : "no backlog: workers are scaled to zero and start when tasks arrive");
    }
    else if (ready > 0) cond(CONDITION_TYPES.Queue.WorkersReady, "True", REASONS.WorkersAvailable, `${ready} of ${desired} workers ready`);
    else cond(CONDITION_TYPES.Queue.WorkersReady, "False", REASONS.WorkersUnavailable, `0 of ${desired} workers ready`);
    const streamReady = conditions.find((c) => c.type === CONDITION_TYPES.Queue.StreamReady)?.status === "True";
    const workersReady = conditions.find((c) => c.type === CONDITION_TYPES.Queue.WorkersReady)?.status === "True";
    if (streamReady && workersReady) cond(CONDITION_TYPES.Queue.Ready, "True", REASONS.Reconciled, q.spec.suspend ? "the queue is suspended" : "the queue accepts and runs tasks");
    else cond(CONDITION_TYPES.Queue.Ready, "False", streamReady ? REASONS.WorkersUnavailable : REASONS.StreamError, "waiting for the stream and workers");

    const status: QueueStatus = {
      conditions,
      observedGeneration: gen,
      streamName: names.stream,
      backlog,
      inFlight: depth.inFlight,
      delayed: depth.delayed,
      deadLetters: depth.deadLetters,
      replicas,
      readyReplicas: ready,
      desiredReplicas: desired,
      ...(lastScaleTime ? { lastScaleTime } : {}),
    };
    await this.#writeStatus(q, ref, status);
    return { requeueAfterMs: policy.pollingIntervalSeconds * 1000 };
  }

  /**
   * Applies the Queue's KEDA ScaledObject.
   * @returns false when the API server does not serve `scaledobjects.keda.sh` (KEDA not installed):
   *   a 404 on create, since the Queue's namespace exists
   * @throws Error on other API failures
   */
  async #applyScaledObject(q: QueueObjectResource): Promise<boolean> {
    const so = desiredScaledObject(q, { natsMonitoringEndpoint: this.#d.natsMonitoringEndpoint ?? "nats:8222" });
    try {
      await applyChild(this.#d.kc, SCALED_OBJECT, so as unknown as KubeObject, FIELD_MANAGERS.operator);
      return true;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!q.status?.conditions?.some((c) => c.type === CONDITION_TYPES.Queue.WorkersReady && c.message === KEDA_MISSING_MESSAGE)) {
        this.#d.events.event(q, "Warning", REASONS.KedaNotInstalled, KEDA_MISSING_MESSAGE);
        this.#d.log.warn({ err }, "Failed to apply ScaledObject: KEDA is not installed");
      }
      return false;
    }
  }

  async #writeStatus(q: QueueObjectResource, ref: ObjectRef, status: QueueStatus): Promise<void> {
    if (JSON.stringify(status) === JSON.stringify(q.status ?? {})) return; // no-op writes cause no events
    await patchStatus(this.#d.kc, ref, status as Record<string, unknown>, FIELD_MANAGERS.operator);
  }

  /** A finalizer only when there is state outside the cluster to clean up: the streams under Delete. */
  async #syncFinalizer(q: QueueObjectResource, ref: ObjectRef): Promise<void> {
    await setFinalizer(this.#d.kc, ref, q, FINALIZERS.queue, q.spec.deletionPolicy === "Delete", FIELD_MANAGERS.operator);
  }

  async #finalize(q: QueueObjectResource, ref: ObjectRef, names: QueueNames): Promise<QueueReconcileResult> {
    this.#scale.delete(`${q.metadata.namespace}/${q.metadata.name}`);
    if (!q.metadata.finalizers?.includes(FINALIZERS.queue)) return {};
    if (q.spec.deletionPolicy === "Delete") {
      await this.#d.nats.remove(names);
      this.#d.events.event(q, "Normal", "StreamDeleted", `Deleted streams ${names.stream}, ${names.delayedStream}, ${names.deadLetterStream} and bucket ${names.resultsBucket} (deletionPolicy Delete)`);
      this.#d.log.info("Deleted NATS resources of deleted queue");
    }
    await setFinalizer(this.#d.kc, ref, q, FINALIZERS.queue, false, FIELD_MANAGERS.operator);
    return {};
  }
}
