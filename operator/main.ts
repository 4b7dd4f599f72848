/**
 * The operator process: the only wiring point. Reads the configuration, connects to Kubernetes and
 * NATS, builds one informer per resource type (over all watched namespaces) → one controller per
 * kind → its reconciler, runs them while it holds the leader Lease, and serves /healthz, /readyz and
 * /metrics. In minting mode (`config.natsMint`) it loads the account signing key, connects on a user
 * it mints for itself (unless given `CELERIAC_NATS_CREDS`), and the Queue reconciler keeps the
 * per-Queue and per-namespace credential Secrets, watched through a Secret informer. In accounts
 * mode (`natsMint.mode === "accounts"`) it connects as the system-account user, creates one NATS
 * account per namespace (credentials/tenant-accounts.ts) and reaches each namespace's JetStream on
 * a connection of that account (credentials/tenant-connections.ts). Shutdown is memoised and ordered: stop controllers, informers and reconcilers, release
 * the Lease, drain NATS, close the health server.
 */
import { markTaskWaiting } from "./task/task-waiting.js";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { GROUP, LABELS, MANAGED_BY, RESOURCES, VERSION } from "../api/constants.js";
import { NATS_CREDS_ANNOTATIONS, NATS_CREDS_LABELS } from "../api/nats-creds-secrets.js";
import { CELERIAC_TYPES, type Queue, type Schedule, type Task, type Workflow } from "../api/objects.js";
import { queueNames } from "../api/naming.js";
import { Kvm, type KV } from "@nats-io/kv";
import { connectNatsWithBackoff } from "../nats/connection.js";
import { readServersMaxControlLine } from "../nats/server-limits.js";
import type { OperatorConfig } from "./config.js";
import { createOperatorMetrics, forgetQueue, observeQueue } from "./metrics.js";
import {
  AccountKeyStore, AccountTenantNats, connectWithOperatorCredential, loadCredentialMinter, loadOperatorSigner, OperatorCredential, QueueCredentials, SharedTenantNats, TenantAccounts,
  type CredentialMinter, type CredsSecret, type TenantNats,
} from "./credentials/index.js";
import { queueOfWorkerPod } from "./queue/labels.js";
import { QueueReconciler } from "./queue/queue-reconciler.js";
import {
  BUILTIN_TYPES, Controller, EventRecorder, LeaderElector, isNotFound, kubeRequest, loadKubeConfig, namespacedInformer, startHealthServer,
  type KubeObject, type ResourceType, type SharedInformer,
} from "./runtime/index.js";
import { ScheduleReconciler } from "./schedule/schedule-reconciler.js";
import { TenantTaskPublisher } from "./task/task-publisher.js";
import { TaskReconciler } from "./task/task-reconciler.js";
import { PurgeNotices } from "./task/purge-notices.js";
import { tasksWaitingOnNats, waitingTasks } from "./task/waiting-tasks.js";
import { StepNotices, WorkflowReconciler } from "./workflow/index.js";

/** The Queues named by a Secret's ownerReferences (controller or not), as reconcile keys. */
function queueOwnersOf(s: CredsSecret): Array<{ namespace: string; name: string }> {
  const ns = s.metadata.namespace ?? "";
  return (s.metadata.ownerReferences ?? []).filter((r) => r.kind === RESOURCES.Queue.kind).map((r) => ({ namespace: ns, name: r.name }));
}

/**
 * Fails with a message that says what to do when a Celeriac CRD is not served (an upgrade that did
 * not apply the chart's crds/ first: Helm never installs or upgrades them on `helm upgrade`), instead
 * of an informer that never syncs.
 * @throws Error naming the missing CRDs and the command that installs them
 */
async function requireCrds(kc: Parameters<typeof kubeRequest>[0]): Promise<void> {
  let served: string[] = [];
  try {
    const list = await kubeRequest<{ resources?: Array<{ name: string }> }>(kc, { method: "GET", path: `/apis/${GROUP}/${VERSION}` });
    served = (list.resources ?? []).map((r) => r.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const missing = Object.values(RESOURCES).map((r) => r.plural).filter((p) => !served.includes(p));
  if (missing.length > 0) {
    throw new Error(`CRD${missing.length > 1 ? "s" : ""} ${missing.map((p) => `${p}.${GROUP}`).join(", ")} not installed: apply the chart's CRDs first (kubectl apply --server-side -f charts/celeriac/crds/; docs/install.md, Upgrade)`);
  }
}

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
  const metrics = createOperatorMetrics(true);
  const registry = metrics.registry;

  const kc = loadKubeConfig(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {});
  // Health first, so /healthz answers and /readyz says why while NATS is not reachable yet.
  let readiness: () => boolean | string = () => "waiting for NATS";
  const health = await startHealthServer({ port: config.port, registry, ready: () => readiness() });
  let nc: NatsConnection;
  let minter: CredentialMinter | undefined;
  let ownCredential: OperatorCredential | undefined;
  let tenants: TenantNats;
  let accounts: TenantAccounts | undefined;
  let keyStore: AccountKeyStore | undefined;
  const mint = config.natsMint;
  try {
    if (mint?.mode === "accounts") {
      // Accounts mode: the main connection is the system user's; each namespace gets its own account.
      const operatorSigner = loadOperatorSigner(mint.operatorSigningKeyFile);
      log.info({ accountsNamespace: mint.accountsNamespace, credsTtlSeconds: mint.credsTtlSeconds }, "Loaded NATS operator signing key: one NATS account per namespace");
      nc = await connectNatsWithBackoff(config.nats, log);
      // A namespace whose credential Secrets name its own account has lost its key if the seed
      // Secret is missing (read from the Secret informer, declared below; used only once synced).
      const existingAccount = (ns: string) => secrets?.list(ns).map((s) => s.metadata.annotations?.[NATS_CREDS_ANNOTATIONS.tenantAccount]).find((a) => a);
      keyStore = new AccountKeyStore(kc, mint.accountsNamespace, existingAccount);
      accounts = new TenantAccounts({ operator: operatorSigner, keys: keyStore, system: nc, log });
      tenants = new AccountTenantNats({ settings: config.nats, accounts, credsTtlSeconds: mint.credsTtlSeconds, log });
    } else {
      if (mint) {
        minter = loadCredentialMinter(mint.signingKeyFile, mint.accountPublicKey);
        log.info({ account: minter.account, issuer: minter.issuer, credsTtlSeconds: mint.credsTtlSeconds }, "Loaded NATS account signing key");
        if (!config.nats.credsFile) ownCredential = await OperatorCredential.start(minter, mint.credsTtlSeconds, log);
      }
      nc = ownCredential ? await connectWithOperatorCredential(config.nats, ownCredential, log) : await connectNatsWithBackoff(config.nats, log);
      tenants = new SharedTenantNats(nc, await jetstreamManager(nc));
    }
  } catch (err) {
    ownCredential?.stop();
    await health.close();
    throw err;
  }
  // The max_control_line minted credentials must fit: as configured, or in accounts mode the servers'
  // own (the system user may ask them; read again on every resync, the setting is hot-reloadable).
  let maxControlLine = mint?.maxControlLine;
  let readFailed = false;
  const readMaxControlLine = async () => {
    if (mint?.mode !== "accounts") return;
    try {
      const read = await readServersMaxControlLine(nc);
      if (read && read.maxControlLine !== maxControlLine) log.info({ maxControlLine: read.maxControlLine, servers: read.servers, configured: mint.maxControlLine }, "Read the NATS servers' max_control_line");
      if (read) maxControlLine = read.maxControlLine;
      readFailed = false;
    } catch (err) {
      // once per run of failures (it is retried on every resync)
      if (!readFailed) log.warn({ err, maxControlLine }, "Failed to read the NATS servers' max_control_line");
      readFailed = true;
    }
  };
  await readMaxControlLine();
  const recorder = new EventRecorder({ kc, logger: log });
  const events = { event: (obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string) => void recorder.record(obj, type, reason, message) };
  // When this instance started reconciling (reset when it acquires the Lease): Schedules treat runs
  // due before it as missed by downtime.
  let startedAt = new Date();

  // One cache per resource type over every watched namespace (controller-runtime's DefaultNamespaces).
  const informers: SharedInformer[] = [];
  const informer = <T extends KubeObject>(type: ResourceType, labelSelector?: string): SharedInformer<T> => {
    const i = namespacedInformer<T>({ kc, type, logger: log, namespaces: config.watchNamespaces, ...(labelSelector ? { labelSelector } : {}) });
    informers.push(i);
    return i;
  };
  const queues = informer<Queue>(CELERIAC_TYPES.Queue);
  const tasks = informer<Task>(CELERIAC_TYPES.Task);
  const schedules = informer<Schedule>(CELERIAC_TYPES.Schedule);
  const workflows = informer<Workflow>(CELERIAC_TYPES.Workflow);
  const deployments = informer<V1Deployment & KubeObject>(BUILTIN_TYPES.Deployment, `${LABELS.managedBy}=${MANAGED_BY}`);
  // Worker Pods: their container states say why workers do not run (WorkersReady).
  const pods = informer<V1Pod & KubeObject>(BUILTIN_TYPES.Pod, `${LABELS.managedBy}=${MANAGED_BY}`);
  // Minting mode: the credential Secrets the operator minted (and nothing else of the namespaces' Secrets).
  const secrets = mint ? informer<CredsSecret & KubeObject>(BUILTIN_TYPES.Secret, NATS_CREDS_LABELS.role) : undefined;
  const minterOf = accounts ?? (minter ? { minterFor: async () => minter } : undefined);
  const credentials = minterOf && secrets && mint
    ? new QueueCredentials({
      kc, minterFor: (ns) => minterOf.minterFor(ns), ttlSeconds: mint.credsTtlSeconds, events, tenantAccounts: Boolean(accounts), maxControlLine: () => maxControlLine ?? mint.maxControlLine,
      getSecret: (ns, name) => secrets.get(ns, name),
      listQueues: (ns) => queues.list(ns),
      listSecrets: () => secrets.list(),
    })
    : undefined;

  const queueReconciler = new QueueReconciler({
    kc,
    getQueue: (ns, name) => queues.get(ns, name),
    getDeployment: (ns, name) => deployments.get(ns, name),
    listWorkerPods: (ns, queue) => pods.list(ns).filter((p) => p.metadata?.labels?.[LABELS.queue] === queue),
    tenants,
    events,
    log,
    workerNats: config.workerNats,
    workerImage: config.workerImage,
    workerDefaultEnv: config.workerOtelEnv,
    natsMonitoringEndpoint: config.natsMonitoringEndpoint,
    ...(credentials ? { credentials } : {}),
    // Half the resync period: every resync re-applies each Queue's NATS resources and worker RBAC.
    recheckMs: config.resyncSeconds * 500,
    onTaskWaiting: (identity, waiting) => void markTaskWaiting(kc, (ns, name) => tasks.get(ns, name), identity, waiting, log),
    onObserved: (ns, q, observed) => observeQueue(metrics, ns, q, observed),
    onRemoved: (ns, q) => forgetQueue(metrics, ns, q),
  });
  // On a NATS reconnect, Tasks waiting on NATS publish at once instead of at their next back-off.
  let onNatsReconnect = () => {};
  const publisher = new TenantTaskPublisher(tenants, { onReconnect: () => onNatsReconnect() });
  // A queue purge's notice: the queue's Queued Tasks are reconciled (a purged one ends Cancelled).
  let onQueuePurged = (_ns: string, _queue: string) => {};
  const purgeNotices = new PurgeNotices({ bucket: (ns, q) => bucket(ns, q), log, onPurge: (ns, q) => onQueuePurged(ns, q) });
  const taskReconciler = new TaskReconciler({
    kc, getTask: (ns, name) => tasks.get(ns, name), getQueue: (ns, name) => queues.get(ns, name),
    publisher, events, purges: purgeNotices,
  });
  // Workflows: results buckets opened once per namespace connection and queue
  const buckets = new Map<string, Promise<KV>>();
  const bucket = async (ns: string, queue: string): Promise<KV> => {
    const t = await tenants.forNamespace(ns);
    const k = `${ns}/${queue}`;
    let kv = buckets.get(k);
    if (!kv) {
      kv = new Kvm(t.js).open(queueNames(ns, queue).resultsBucket);
      kv.catch(() => buckets.delete(k));
      buckets.set(k, kv);
    }
    return kv;
  };
  const stepNotices: StepNotices = new StepNotices({ bucket, log, onNotice: (ns, uid, n) => workflowReconciler.notice(ns, uid, n) });
  const workflowReconciler: WorkflowReconciler = new WorkflowReconciler({
    kc, getWorkflow: (ns, name) => workflows.get(ns, name), getQueue: (ns, name) => queues.get(ns, name),
    publisher, bucket, watchQueue: (ns, q) => stepNotices.watch(ns, q), events, startedAt: () => startedAt,
  });
  const scheduleReconciler = new ScheduleReconciler({
    kc, getSchedule: (ns, name) => schedules.get(ns, name),
    tasksOf: (ns, label) => tasks.list(ns).filter((t) => t.metadata.labels?.[LABELS.schedule] === label),
    workflowsOf: (ns, label) => workflows.list(ns).filter((w) => w.metadata.labels?.[LABELS.schedule] === label),
    events, startedAt: () => startedAt, onFired: (ms) => metrics.scheduleLateness.observe(ms / 1000),
  });

  const common = { logger: log, registry, recorder, stopInformers: false, resyncPeriodMs: config.resyncSeconds * 1000 };
  const controllers = [
    new Controller({
      // A Queue reconcile mostly waits on NATS and the API server: 16 in flight so a burst of new Queues is not serialised behind them.
      ...common, name: "queue", for: queues, workers: 16,
      owns: [{ informer: deployments, ownerKind: RESOURCES.Queue.kind }],
      watches: [
        { informer: pods, map: (p: V1Pod & KubeObject) => queueOfWorkerPod(p) },
        // A credential Secret changed or vanished: reconcile every Queue it belongs to (the producer Secret lists them all).
        ...(secrets ? [{ informer: secrets, map: (s: CredsSecret & KubeObject) => queueOwnersOf(s) }] : []),
      ],
      reconcile: (key, ctx) => queueReconciler.reconcile(key, ctx),
    }),
    new Controller({
      // 16: a reconcile waits on two API writes and a PubAck, so 4 held a burst of new Tasks to ~110/s
      ...common, name: "task", for: tasks, workers: 16,
      // A new Queue releases the Tasks waiting for it; a deleted one marks the Tasks queued in it.
      watches: [{
        informer: queues,
        map: (q: Queue) => waitingTasks(q, tasks.list(q.metadata.namespace ?? ""), { gone: !queues.get(q.metadata.namespace ?? "", q.metadata.name) || Boolean(q.metadata.deletionTimestamp) }),
      }],
      reconcile: (key, ctx) => taskReconciler.reconcile(key, ctx),
    }),
    new Controller({
      // Workflows: a reconcile publishes a step's tasks and writes status; 8 run distinct Workflows at once
      ...common, name: "workflow", for: workflows, workers: 8,
      // a Queue that appears releases the Workflows waiting for it
      watches: [{ informer: queues, map: (q: Queue) => workflows.list(q.metadata.namespace ?? "").filter((w) => w.status?.phase === "Pending" || w.status?.phase === "Running").map((w) => ({ namespace: w.metadata.namespace ?? "", name: w.metadata.name })) }],
      reconcile: (key, ctx) => workflowReconciler.reconcile(key, ctx),
    }),
    new Controller({
      ...common, name: "schedule", for: schedules, workers: 8,
      owns: [{ informer: tasks, ownerKind: RESOURCES.Schedule.kind }, { informer: workflows, ownerKind: RESOURCES.Schedule.kind }],
      reconcile: (key, ctx) => scheduleReconciler.reconcile(key, ctx),
    }),
  ];

  const taskController = controllers[1]!;
  onQueuePurged = (ns, q) => {
    for (const t of tasks.list(ns)) if (t.spec.queue === q && t.status?.phase === "Queued") taskController.enqueue({ namespace: ns, name: t.metadata.name });
  };
  const workflowController = controllers[2]!;
  workflowReconciler.onChange = (key) => workflowController.enqueue(key);
  onNatsReconnect = () => {
    taskReconciler.resetBackoff();
    for (const key of tasksWaitingOnNats(tasks.list())) taskController.enqueue(key);
    // unfinished Workflows plan again at once (a publish that failed during the outage, notices missed)
    for (const w of workflows.list()) {
      const phase = w.status?.phase;
      if (phase !== "Succeeded" && phase !== "Failed" && phase !== "Cancelled") workflowController.enqueue({ namespace: w.metadata.namespace ?? "", name: w.metadata.name });
    }
  };
  if (accounts) {
    // Accounts mode: a namespace whose connection never opened (NATS was down) has no reconnect of
    // its own to report; the system connection's reconnect stands for it.
    void (async () => {
      for await (const s of nc.status()) if (s.type === "reconnect") onNatsReconnect();
    })();
  }

  let leading = !config.leaderElect;
  let elector: LeaderElector | undefined;
  // Minting mode: producer Secrets left in namespaces whose last Queue went while no operator ran
  // are deleted once the caches have synced, then on every resync (no event names them).
  let sweepTimer: NodeJS.Timeout | undefined;
  const sweepOrphanProducers = () => {
    void credentials?.sweepOrphanProducers(log).then(
      (namespaces) => namespaces.length > 0 && log.info({ namespaces }, "Deleted orphaned producer NATS credential Secrets"),
      (err) => log.warn({ err }, "Failed to delete orphaned producer NATS credential Secrets"),
    );
    void readMaxControlLine();
    // Accounts mode: an account key Secret deleted by hand is written back from memory.
    void keyStore?.restoreMissing().then(
      (tenants) => tenants.length > 0 && log.warn({ namespaces: tenants, accountsNamespace: mint?.mode === "accounts" ? mint.accountsNamespace : undefined }, "Wrote back deleted NATS account key Secrets from memory"),
      (err) => log.warn({ err }, "Failed to check the NATS account key Secrets"),
    );
  };
  const startControllers = async () => {
    startedAt = new Date();
    await requireCrds(kc);
    for (const i of informers) i.start();
    await Promise.all(controllers.map((c) => c.start()));
    log.info({ controllers: controllers.length }, "Started controllers");
    if (credentials) {
      void sweepOrphanProducers();
      sweepTimer = setInterval(() => void sweepOrphanProducers(), config.resyncSeconds * 1000);
      sweepTimer.unref();
    }
  };
  // Not ready until the first election attempt is decided: a replica that is about to lead must
  // not answer 200 as a standby and then 503 while its caches sync.
  readiness = () =>
    elector?.state() === "stopped" ? "lost leadership"
    : elector && !elector.hasAttempted() ? "waiting for the first leader election attempt"
    : !leading ? true
    : controllers.every((c) => c.hasSynced()) || "caches not synced";

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const steps: Array<[string, () => Promise<unknown>]> = [
        ["stop the orphaned-Secret sweep", async () => clearInterval(sweepTimer)],
        ["stop controllers", () => Promise.all(controllers.map((c) => c.stop()))],
        ["stop informers", () => Promise.all(informers.map((i) => i.stop()))],
        ["stop the workflow step-notice watches", async () => stepNotices.stop()],
        ["stop the queue purge-notice watches", async () => purgeNotices.stop()],
        ["stop the queue reconciler", () => queueReconciler.stop()],
        ["release lease", async () => elector?.stop({ release: true })],
        ["drain the tenants' NATS connections", () => tenants.close()],
        ["drain NATS", () => nc.drain()],
        ["stop renewing the operator's NATS credential", async () => ownCredential?.stop()],
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
    try {
      await startControllers();
    } catch (err) {
      await stop();
      throw err;
    }
  }
  log.info({ port: health.port, leaderElect: config.leaderElect, namespaces: config.watchNamespaces }, "Operator started");
  return { port: health.port, stop };
}
