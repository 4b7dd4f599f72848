/**
 * The operator process: the only wiring point. Reads the configuration, connects to Kubernetes and
 * NATS, builds informers → controllers → reconcilers, runs them while it holds the leader Lease, and
 * serves /healthz, /readyz and /metrics. Shutdown is memoised and ordered: stop controllers, release
 * the Lease, drain NATS, close the health server.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino, type Logger } from "pino";
import { Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { GROUP, LABELS, MANAGED_BY, RESOURCES, VERSION, isTerminalPhase } from "../api/constants.js";
import { connectNats } from "../nats/connection.js";
import type { OperatorConfig } from "./config.js";
import { JetStreamQueueNats } from "./queue/queue-nats.js";
import type { Queue } from "../api/objects.js";
import { QueueReconciler } from "./queue/queue-reconciler.js";
import { BUILTIN_TYPES, Controller, EventRecorder, Informer, LeaderElector, loadKubeConfig, startHealthServer, type KubeObject, type ResourceType } from "./runtime/index.js";
import { ScheduleReconciler, type ScheduleResource } from "./schedule/schedule-reconciler.js";
import { JetStreamTaskPublisher } from "./task/task-publisher.js";
import { TaskReconciler, type QueueResource, type TaskResource } from "./task/task-reconciler.js";
import type { V1Deployment } from "@kubernetes/client-node";

const crd = (r: (typeof RESOURCES)[keyof typeof RESOURCES]): ResourceType => ({ group: GROUP, version: VERSION, plural: r.plural, kind: r.kind, namespaced: true });

/** A running operator. */
export interface RunningOperator {
  /** Port of the health/metrics server. */
  port: number;
  /** Stops everything (memoised). */
  stop(): Promise<void>;
}

/**
 * Starts the operator.
 * @param config parsed configuration (see operatorConfigFrom)
 * @param log root logger
 * @param onLostLease called when the Lease is lost after being held (the CLI exits the process)
 * @throws Error when Kubernetes or NATS cannot be reached at start
 */
export async function startOperator(config: OperatorConfig, log: Logger = pino({ name: "celeriac-operator" }), onLostLease: () => void = () => process.exit(1)): Promise<RunningOperator> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "celeriac_operator_" });
  const backlogGauge = new Gauge({ name: "celeriac_queue_backlog", help: "Pending plus in-flight tasks of a queue", labelNames: ["namespace", "queue"], registers: [registry] });
  const desiredGauge = new Gauge({ name: "celeriac_queue_desired_replicas", help: "Worker replicas the autoscaler wants", labelNames: ["namespace", "queue"], registers: [registry] });
  const lateness = new Histogram({
    name: "celeriac_schedule_lateness_seconds", help: "Delay from a run's nominal time to its Task's creation",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [registry],
  });

  const kc = loadKubeConfig(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {});
  const nc: NatsConnection = await connectNats(config.nats);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const recorder = new EventRecorder({ kc, logger: log });
  const events = { event: (obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string) => void recorder.record(obj, type, reason, message) };

  const controllers: Controller[] = [];
  const informers: Informer[] = [];
  const queueReconcilers: QueueReconciler[] = [];
  const namespaces = config.watchNamespaces.length > 0 ? [...config.watchNamespaces] : [undefined];
  // When this instance started reconciling (reset when it acquires the Lease): Schedules treat runs
  // due before it as missed by downtime.
  let startedAt = new Date();

  for (const namespace of namespaces) {
    const inf = <T extends KubeObject>(type: ResourceType, labelSelector?: string) => {
      const i = new Informer<T>({ kc, type, logger: log, ...(namespace ? { namespace } : {}), ...(labelSelector ? { labelSelector } : {}) });
      informers.push(i as unknown as Informer);
      return i;
    };
    const queues = inf<Queue>(crd(RESOURCES.Queue));
    const tasks = inf<TaskResource>(crd(RESOURCES.Task));
    const schedules = inf<ScheduleResource>(crd(RESOURCES.Schedule));
    const deployments = inf<V1Deployment & KubeObject>(BUILTIN_TYPES.Deployment, `${LABELS.managedBy}=${MANAGED_BY}`);

    const queueReconciler = new QueueReconciler({
      kc,
      getQueue: (ns, name) => queues.get(ns, name),
      getDeployment: (ns, name) => deployments.get(ns, name),
      nats: new JetStreamQueueNats(jsm),
      js,
      events,
      log,
      workerNats: config.workerNats,
      workerImage: config.workerImage,
      natsMonitoringEndpoint: config.natsMonitoringEndpoint,
      onObserved: (ns, q, backlog, desired) => {
        backlogGauge.set({ namespace: ns, queue: q }, backlog);
        desiredGauge.set({ namespace: ns, queue: q }, desired);
      },
    });
    queueReconcilers.push(queueReconciler);
    const taskReconciler = new TaskReconciler({
      kc, getTask: (ns, name) => tasks.get(ns, name), getQueue: (ns, name) => queues.get(ns, name) as QueueResource | undefined,
      publisher: new JetStreamTaskPublisher(js), events, log,
    });
    const scheduleReconciler = new ScheduleReconciler({
      kc, getSchedule: (ns, name) => schedules.get(ns, name),
      tasksOf: (ns, label) => tasks.list(ns).filter((t) => t.metadata.labels?.[LABELS.schedule] === label) as unknown as TaskResource[],
      events, log, startedAt: () => startedAt, onFired: (ms) => lateness.observe(ms / 1000),
    });

    controllers.push(
      new Controller({
        name: "queue", for: queues as unknown as Informer, owns: [{ informer: deployments as unknown as Informer, ownerKind: RESOURCES.Queue.kind }],
        logger: log, registry, recorder, stopInformers: false, workers: 2, resyncPeriodMs: config.resyncSeconds * 1000,
        reconcile: (key, ctx) => queueReconciler.reconcile(key, ctx),
      }),
      new Controller({
        name: "task", for: tasks as unknown as Informer, logger: log, registry, recorder, stopInformers: false, workers: 4, resyncPeriodMs: config.resyncSeconds * 1000,
        // A new Queue releases the Tasks waiting for it.
        watches: [{
          informer: queues as unknown as Informer,
          map: (q: KubeObject) => tasks.list(q.metadata?.namespace)
            .filter((t) => t.spec.queue === q.metadata?.name && !isTerminalPhase(t.status?.phase) && (t.status?.phase ?? "Pending") === "Pending")
            .map((t) => ({ namespace: t.metadata.namespace, name: t.metadata.name })),
        }],
        reconcile: (key) => taskReconciler.reconcile(key.namespace, key.name),
      }),
      new Controller({
        name: "schedule", for: schedules as unknown as Informer, logger: log, registry, recorder, stopInformers: false, workers: 8, resyncPeriodMs: config.resyncSeconds * 1000,
        owns: [{ informer: tasks as unknown as Informer, ownerKind: RESOURCES.Schedule.kind }],
        reconcile: (key) => scheduleReconciler.reconcile(key.namespace, key.name),
      }),
    );
  }

  let leading = !config.leaderElect;
  let elector: LeaderElector | undefined;
  const startControllers = async () => {
    startedAt = new Date();
    for (const i of informers) i.start();
    await Promise.all(controllers.map((c) => c.start()));
    log.info({ controllers: controllers.length }, "Started controllers");
  };
  const health = await startHealthServer({
    port: config.port,
    registry,
    ready: () => (elector?.state() === "stopped" ? "lost leadership" : !leading ? true : controllers.every((c) => c.hasSynced()) || "caches not synced"),
  });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const steps: Array<[string, () => Promise<unknown>]> = [
        ["stop controllers", () => Promise.all(controllers.map((c) => c.stop()))],
        ["stop informers", () => Promise.all(informers.map((i) => i.stop()))],
        ["stop scale loops and delay movers", () => Promise.all(queueReconcilers.map((r) => r.stop()))],
        ["release lease", async () => elector?.stop({ release: true })],
        ["drain NATS", () => nc.drain()],
        ["close health server", () => health.close()],
      ];
      for (const [what, step] of steps) {
        try {
          await step();
        } catch (err) {
          log.warn({ err }, `Failed to ${what} during shutdown`);
        }
      }
    })());

  if (config.leaderElect) {
    elector = new LeaderElector({
      kc, namespace: config.leaseNamespace, name: config.leaseName, identity: config.identity,
      leaseDurationMs: config.leaseDurationSeconds * 1000, renewDeadlineMs: config.renewDeadlineSeconds * 1000, retryPeriodMs: config.retryPeriodSeconds * 1000,
      logger: log, registry,
      onStartedLeading: () => {
        leading = true;
        log.info({ identity: config.identity }, "Acquired leader lease");
        startControllers().catch((err) => {
          log.error({ err }, "Controllers failed to start");
          onLostLease();
        });
      },
      onStoppedLeading: () => {
        if (!leading || stopping) return;
        log.error({ identity: config.identity }, "Lost leader lease");
        void stop().finally(onLostLease);
      },
    });
    await elector.start();
  } else {
    await startControllers();
  }
  log.info({ port: health.port, leaderElect: config.leaderElect, namespaces: config.watchNamespaces }, "Operator started");
  return { port: health.port, stop };
}
