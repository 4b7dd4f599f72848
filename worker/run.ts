/**
 * The worker process: load the tasks module, connect, start the worker and its HTTP endpoints, and
 * handle signals — SIGTERM/SIGINT once: graceful shutdown then exit 0; a second time: exit 1 at once
 * (unacked messages are redelivered after the ack wait, so nothing is lost).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { KubeClient } from "../kube/k8s-client.js";
import { pino, type Logger } from "pino";
import { queueNames } from "../api/naming.js";
import { connectNats } from "../nats/index.js";
import type { WorkerConfig } from "./config.js";
import { collectTasks } from "./define-task.js";
import { serveWorkerHttp } from "./http.js";
import { createWorkerMetrics } from "./metrics.js";
import type { StatusSink } from "./status-sink.js";
import { Worker } from "./worker.js";
import { setupTracing } from "../tracing/setup.js";

/**
 * Imports a tasks module by path (relative to the cwd) or package specifier.
 * `.ts` files are not supported by Node 20 directly: compile them (`tsc`) and pass the `.js`.
 * @throws Error naming the module when the import fails or it exports no task
 */
export async function loadTasksModule(spec: string): Promise<ReturnType<typeof collectTasks>> {
  if (spec.endsWith(".ts")) {
    throw new Error(`--tasks ${spec}: TypeScript modules are not loaded directly; compile it (npx tsc) and pass the .js file`);
  }
  // a path (relative to the cwd) when it exists on disk, else a package specifier
  const url = existsSync(spec) ? pathToFileURL(resolve(spec)).href : spec;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`load tasks module ${spec}: ${(err as Error).message} (the module comes from --tasks or CELERIAC_TASKS, on a Queue from spec.worker.env: point it at an existing file or package)`, { cause: err });
  }
  try {
    return collectTasks(mod);
  } catch (err) {
    throw new Error(`load tasks module ${spec}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Cluster access for writing Task status and the pod-deletion-cost annotation: in a pod, its
 * ServiceAccount; elsewhere `KUBECONFIG`. None (client-only mode: status in the results bucket only)
 * when neither is available or `CELERIAC_KUBE_STATUS=false`. Served by the light client
 * (kube/light-client.ts, ~1 MiB); `@kubernetes/client-node` (~70 MiB of RSS, ~0.7 s to load) is
 * imported only for a kubeconfig whose user needs it (exec or auth-provider credentials).
 */
async function kubeSinks(config: WorkerConfig, log: Logger): Promise<{ sink: StatusSink; podCost?: { set(n: number): void } } | undefined> {
  if (process.env.CELERIAC_KUBE_STATUS === "false") return undefined;
  if (!process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG) return undefined;
  const [{ lightKubeClient }, { TaskResourceSink }, { PodDeletionCost }] = await Promise.all([
    import("../kube/light-client.js"),
    import("./task-resource-sink.js"),
    import("./pod-deletion-cost.js"),
  ]);
  let kc: KubeClient;
  try {
    kc = (await lightKubeClient()) ?? (await import("../kube/kubeconfig.js")).loadKubeConfig();
  } catch (err) {
    log.warn({ err }, "No Kubernetes access: task status is kept in the results bucket only");
    return undefined;
  }
  const { POD_NAME, POD_NAMESPACE } = process.env;
  return {
    sink: new TaskResourceSink(kc, queueNames(config.namespace, config.queue).resultsBucket, { namespace: config.namespace, log, instance: config.workerName }),
    ...(POD_NAME && POD_NAMESPACE ? { podCost: new PodDeletionCost(kc, { namespace: POD_NAMESPACE, name: POD_NAME }, log) } : {}),
  };
}

/**
 * Runs a worker until a signal stops it.
 * @returns when the worker has shut down gracefully (the caller exits 0)
 * @throws when startup fails
 */
export async function runWorker(config: WorkerConfig): Promise<void> {
  const log = pino({ level: config.logLevel, base: { component: "worker" } });
  const kubeLoading = kubeSinks(config, log); // loads in parallel with the tasks module and NATS
  const tasks = await loadTasksModule(config.tasks);
  // after the tasks module: one that registers its own OpenTelemetry SDK keeps it
  const tracing = await setupTracing({ serviceName: "celeriac-worker", resourceAttributes: { "service.instance.id": config.workerName }, log });
  const nc = await connectNats(config.nats);
  const metrics = createWorkerMetrics(true);
  const kube = await kubeLoading;
  const podCost = kube?.podCost;
  const worker = new Worker({
    nc,
    tasks,
    queue: config.queue,
    namespace: config.namespace,
    concurrency: config.concurrency,
    workerName: config.workerName,
    settings: { ackWaitSeconds: config.ackWaitSeconds },
    shutdownGraceSeconds: config.gracePeriodSeconds,
    logger: log,
    metrics,
    ...(kube ? { extraSinks: [kube.sink] } : {}),
    ...(podCost ? { onInFlightChange: (n: number) => podCost.set(n) } : {}),
  });
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") connected = false;
      if (s.type === "reconnect") connected = true;
      if (s.type === "disconnect" || s.type === "reconnect") log.info({ event: s.type }, "NATS connection changed");
    }
  })();
  const http = await serveWorkerHttp(config.port, metrics.registry, () => worker.ready && connected);
  log.info({ port: http.port }, "HTTP endpoints listening");
  await worker.start();

  await new Promise<void>((resolveStop) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        log.warn({ signal: sig }, "Second signal received; exiting now");
        process.exit(1);
      }
      log.info({ signal: sig }, "Signal received; shutting down gracefully");
      resolveStop();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  const steps: [string, () => Promise<void>][] = [
    ["worker", () => worker.close()],
    ["nats", async () => void (await nc.drain())],
    ["http", () => http.close()],
    ["tracing", () => tracing.shutdown()],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      log.error({ err, step: name }, "Shutdown step failed");
    }
  }
  log.info("Worker process exiting");
}
