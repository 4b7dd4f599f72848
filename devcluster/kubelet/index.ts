/**
 * The process kubelet: a controller that plays ReplicaSet controller and kubelet for Deployments whose
 * pod template can run as local processes. It talks to the API server only through
 * `@kubernetes/client-node` (informers, Pod create/delete, `pods/status` and `deployments/status`
 * merge patches, Events). The container → command rule, env, ports and logs are described in
 * `docs/dev-kubelet.md`.
 */
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  type Informer,
  type ObjectCache,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
} from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { DEFAULT_BACKOFF_BASE_MS } from "./backoff.js";
import { DeploymentController } from "./deployment-controller.js";
import { EventRecorder } from "./events.js";
import { PodManager } from "./pod-manager.js";
import { keyOf } from "./pod-facts.js";
import { WorkQueue } from "./work-queue.js";

export { podLogPath, logsDirOf } from "./log-path.js";
export { resolveContainerCommand, type LocalCommand, type NotRunnable } from "./command.js";
export { chooseVictims, compareForDeletion, POD_DELETION_COST } from "./victims.js";
export { restartDelayMs, DEFAULT_BACKOFF_BASE_MS } from "./backoff.js";
export { LOCAL_NODE, POD_TEMPLATE_HASH } from "./pod-template.js";
export { DATA_DIR } from "./atomic-writer.js";

/** Options of {@link startKubelet}. */
export interface KubeletOptions {
  /** The kubeconfig the kubelet uses, and passes to every process as `KUBECONFIG` (made absolute). */
  kubeconfigPath: string;
  /** Directory for the per-pod log files `<namespace>_<pod>.log` (created if missing). */
  logsDir: string;
  /** Only Deployments and Pods in this namespace; all namespaces when absent. */
  namespace?: string;
  /** Image (with or without tag) → local command prefix; see `resolveContainerCommand`. */
  imageCommands?: Record<string, string[]>;
  /** First crash back-off in ms (default 10 000; doubles per crash, capped at 30× the base). */
  restartBackoffBaseMs?: number;
  /** Working directory of every process (default: this repository's root). */
  cwd?: string;
  /**
   * Root of the per-Pod directories holding materialised volumes, `<podsDir>/<uid>/volumes/…`
   * (default: `pods` next to `logsDir`, so `.celeriac/pods` for `.celeriac/logs`).
   */
  podsDir?: string;
  /** How often mounted Secret/ConfigMap/downward-API volumes are refreshed, ms (default 1000). */
  volumeResyncMs?: number;
  /** Logger (default: pino at `info` to stdout). */
  log?: Logger;
}

/** A running kubelet. */
export interface Kubelet {
  /** Stops the informers and terminates every process it started (SIGTERM, SIGKILL after each Pod's grace period). Memoised. */
  stop(): Promise<void>;
}

/** Default period of the volume refresh, ms: a rotated Secret reaches running processes within about this long. */
export const DEFAULT_VOLUME_RESYNC_MS = 1000;

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Starts the process kubelet.
 * @returns once both informers have listed (their caches are filled) and watches are running
 * @throws Error when the kubeconfig cannot be loaded or the initial list of Pods or Deployments fails
 */
export async function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  const log = (opts.log ?? pino({ name: "dev-kubelet" })).child({ component: "dev-kubelet" });
  const kubeconfigPath = resolve(opts.kubeconfigPath);
  const logsDir = resolve(opts.logsDir);
  mkdirSync(logsDir, { recursive: true });
  const podsDir = resolve(opts.podsDir ?? join(dirname(logsDir), "pods"));
  mkdirSync(podsDir, { recursive: true });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const events = new EventRecorder(core, log);
  const ns = opts.namespace;

  const pods = makeInformer<V1Pod>(
    kc,
    ns ? `/api/v1/namespaces/${ns}/pods` : "/api/v1/pods",
    () => (ns ? core.listNamespacedPod({ namespace: ns }) : core.listPodForAllNamespaces()),
  );
  const deployments = makeInformer<V1Deployment>(
    kc,
    ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : "/apis/apps/v1/deployments",
    () => (ns ? apps.listNamespacedDeployment({ namespace: ns }) : apps.listDeploymentForAllNamespaces()),
  );

  const manager = new PodManager({
    core,
    events,
    log,
    logsDir,
    cwd: opts.cwd ?? REPO_ROOT,
    kubeconfigPath,
    imageCommands: opts.imageCommands ?? {},
    backoffBaseMs: opts.restartBackoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS,
    nodePath: process.execPath,
    celeriacBin: resolve(REPO_ROOT, "bin/celeriac.js"),
    getPod: (namespace, name) => pods.get(name, namespace),
    podsDir,
    volumeResyncMs: opts.volumeResyncMs ?? DEFAULT_VOLUME_RESYNC_MS,
  });
  const controller = new DeploymentController({
    core,
    apps,
    events,
    log,
    getDeployment: (namespace, name) => deployments.get(name, namespace),
    listPods: (namespace) => pods.list(namespace),
  });
  const queue = new WorkQueue(
    (key) => controller.reconcile(key),
    (key, err) => log.warn({ deployment: key, err: String(err), cause: String((err as Error).cause ?? "") }, "Failed to reconcile deployment"),
  );

  const ownerKey = (pod: V1Pod): string | undefined => {
    const ref = pod.metadata?.ownerReferences?.find((r) => r.controller === true && r.kind === "Deployment");
    return ref ? `${pod.metadata?.namespace ?? ""}/${ref.name}` : undefined;
  };
  const onPod = (pod: V1Pod): void => {
    manager.sync(pod);
    const k = ownerKey(pod);
    if (k) queue.add(k);
  };
  pods.on("add", onPod);
  pods.on("update", onPod);
  pods.on("delete", (pod) => {
    manager.remove(pod);
    const k = ownerKey(pod);
    if (k) queue.add(k);
  });
  deployments.on("add", (d) => queue.add(keyOf(d)));
  deployments.on("update", (d) => queue.add(keyOf(d)));
  deployments.on("delete", (d) => controller.forget(keyOf(d)));

  let stopping = false;
  const restartOnError = (name: string, inf: Informer<KubernetesObject> & ObjectCache<KubernetesObject>): void => {
    inf.on("error", (err) => {
      if (stopping) return;
      log.warn({ informer: name, err: String(err) }, "Informer failed; restarting in 1 s");
      setTimeout(() => {
        if (!stopping) void inf.start().catch(() => undefined);
      }, 1000);
    });
  };
  restartOnError("pods", pods as unknown as Informer<KubernetesObject> & ObjectCache<KubernetesObject>);
  restartOnError("deployments", deployments as unknown as Informer<KubernetesObject> & ObjectCache<KubernetesObject>);

  try {
    await pods.start();
    await deployments.start();
  } catch (err) {
    stopping = true;
    await Promise.allSettled([pods.stop(), deployments.stop()]);
    throw new Error("start dev kubelet informers", { cause: err });
  }
  manager.removeOrphanedPodDirs();
  log.info({ namespace: ns ?? "(all)", logsDir, podsDir }, "Started dev kubelet");

  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        queue.stop();
        for (const step of [() => pods.stop(), () => deployments.stop(), () => manager.stopAll()]) {
          try {
            await step();
          } catch (err) {
            log.warn({ err: String(err) }, "Failed a kubelet shutdown step");
          }
        }
        log.info("Stopped dev kubelet");
      })()),
  };
}
