/**
 * The kubelet half: runs every Pod bound to the local node (`spec.nodeName: "local"`) as local
 * processes, writes its status through `pods/status`, and stops the processes when the Pod is deleted.
 */
import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { isNotRunnable, resolveContainerCommand } from "./command.js";
import { ContainerProcess, type StartPlan } from "./container-process.js";
import { ContainerConfigError, expandVars, resolveEnv, type EnvSources } from "./env.js";
import type { EventRecorder } from "./events.js";
import { apiStatusCode } from "./api-errors.js";
import { podLogPath } from "./log-path.js";
import { isTerminating, keyOf } from "./pod-facts.js";
import { podStatus, type PodSnapshot } from "./pod-status.js";
import { LOCAL_NODE } from "./pod-template.js";
import { containerMounts, rewriteArg, rewriteEnv } from "./mount-paths.js";
import { PodVolumes, type VolumeSources } from "./pod-volumes.js";
import { VolumeSetupError } from "./volume-payload.js";
import { freePort, isNetworkProbe } from "./probe.js";
import { WorkQueue } from "./work-queue.js";

/** Settings shared by every Pod the manager runs. */
export interface PodManagerOptions {
  core: CoreV1Api;
  events: EventRecorder;
  log: Logger;
  logsDir: string;
  cwd: string;
  kubeconfigPath: string;
  imageCommands: Record<string, string[]>;
  backoffBaseMs: number;
  nodePath: string;
  celeriacBin: string;
  /** Returns the Pod as currently cached, or undefined. */
  getPod: (namespace: string, name: string) => V1Pod | undefined;
  /** Root of the per-Pod directories `<podsDir>/<uid>/volumes/…` (see pod-volumes.ts). */
  podsDir: string;
  /** How often mounted Secret/ConfigMap/downward-API volumes are refreshed, ms. */
  volumeResyncMs: number;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** One Pod's processes. */
class PodRunner {
  readonly startedAt = Date.now();
  containers: ContainerProcess[] = [];
  stopped = false;
  /** A volume refresh is running (the resync skips the Pod meanwhile). */
  syncing = false;
  /** The last FailedMount message recorded, so a repeated failure is not recorded again. */
  lastMountError = "";

  constructor(
    readonly uid: string,
    readonly namespace: string,
    readonly name: string,
    readonly volumes: PodVolumes,
  ) {}

  snapshot(pod: V1Pod): PodSnapshot {
    if (this.containers.length > 0) return { startedAt: this.startedAt, containers: this.containers.map((c) => c.snapshot()) };
    return {
      startedAt: this.startedAt,
      containers: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? "",
        state: { kind: "waiting", reason: "ContainerCreating" },
        restartCount: 0,
        ready: false,
        done: false,
      })),
    };
  }
}

/** Runs local Pods; feed it informer events through {@link sync} and {@link remove}. */
export class PodManager {
  private readonly runners = new Map<string, PodRunner>();
  private readonly lastWritten = new Map<string, { rvs: string[]; status: Record<string, unknown> }>();
  private readonly statusQueue: WorkQueue;
  private readonly sources: EnvSources;
  private readonly volumeSources: VolumeSources;
  private readonly resyncTimer: NodeJS.Timeout;

  constructor(private readonly o: PodManagerOptions) {
    this.statusQueue = new WorkQueue(
      (key) => this.writeStatus(key),
      (key, err) => o.log.warn({ pod: key, err: String(err) }, "Failed to write pod status"),
    );
    const secret = async (namespace: string, name: string) => {
      try {
        return await o.core.readNamespacedSecret({ namespace, name });
      } catch (err) {
        if (apiStatusCode(err) === 404) return undefined;
        throw new Error(`read secret ${namespace}/${name}`, { cause: err });
      }
    };
    const configMap = async (namespace: string, name: string) => {
      try {
        return await o.core.readNamespacedConfigMap({ namespace, name });
      } catch (err) {
        if (apiStatusCode(err) === 404) return undefined;
        throw new Error(`read configmap ${namespace}/${name}`, { cause: err });
      }
    };
    const decode = (data: Record<string, string> | undefined, encoding: BufferEncoding) =>
      Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, encoding)]));
    // env: text values (a ConfigMap's binaryData is not env material); volumes: raw bytes
    this.sources = {
      secret: async (ns, name) => {
        const s = await secret(ns, name);
        return s && Object.fromEntries(Object.entries(decode(s.data, "base64")).map(([k, v]) => [k, v.toString("utf8")]));
      },
      configMap: async (ns, name) => {
        const c = await configMap(ns, name);
        return c && { ...(c.data ?? {}) };
      },
    };
    this.volumeSources = {
      secret: async (ns, name) => {
        const s = await secret(ns, name);
        return s && decode(s.data, "base64");
      },
      configMap: async (ns, name) => {
        const c = await configMap(ns, name);
        return c && { ...decode(c.data, "utf8"), ...decode(c.binaryData, "base64") };
      },
    };
    this.resyncTimer = setInterval(() => this.resyncVolumes(), Math.max(50, o.volumeResyncMs));
    this.resyncTimer.unref();
  }

  /**
   * Removes Pod directories under `podsDir` that belong to no Pod this manager runs (left by an
   * earlier kubelet process). Call once the Pod informer has listed.
   */
  removeOrphanedPodDirs(): void {
    let entries: string[];
    try {
      entries = readdirSync(this.o.podsDir);
    } catch {
      return;
    }
    for (const uid of entries) {
      // Only what looks like a Pod uid (a UUID): never anything else someone keeps in that directory.
      if (this.runners.has(uid) || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uid)) continue;
      new PodVolumes(join(this.o.podsDir, uid), this.volumeSources).tearDown();
      this.o.log.info({ uid }, "Removed orphaned pod directory");
    }
  }

  /** The periodic volume refresh: re-reads every mounted Pod's Secrets/ConfigMaps and rewrites what changed. */
  private resyncVolumes(): void {
    for (const runner of this.runners.values()) {
      if (runner.stopped || runner.syncing || !runner.volumes.isMounted) continue;
      const pod = this.o.getPod(runner.namespace, runner.name);
      if (!pod || isTerminating(pod)) continue;
      void this.refreshVolumes(runner, pod);
    }
  }

  /** Refreshes one Pod's volumes; a failure is a FailedMount Event (once per message), the old files stay. */
  private async refreshVolumes(runner: PodRunner, pod: V1Pod): Promise<void> {
    if (runner.syncing) return;
    runner.syncing = true;
    try {
      const changed = await runner.volumes.setUp(pod);
      runner.lastMountError = "";
      if (changed.length > 0 && !runner.stopped) this.o.log.info({ pod: keyOf(pod), volumes: changed }, "Updated volume contents");
    } catch (err) {
      if (!runner.stopped) this.mountFailed(runner, err);
    } finally {
      runner.syncing = false;
    }
  }

  private mountFailed(runner: PodRunner, err: unknown): void {
    const message = err instanceof VolumeSetupError ? err.eventMessage() : `MountVolume.SetUp failed: ${String(err)}`;
    if (message === runner.lastMountError) return;
    runner.lastMountError = message;
    const involved = { kind: "Pod", apiVersion: "v1", name: runner.name, namespace: runner.namespace, uid: runner.uid };
    this.o.log.warn({ pod: `${runner.namespace}/${runner.name}`, err: message }, "Failed to mount volume");
    this.o.events.record(involved, "Warning", "FailedMount", message);
  }

  /**
   * Sets up every volume before any container starts, as the kubelet's WaitForAttachAndMount: until it
   * succeeds the Pod stays Pending with its containers waiting in `ContainerCreating`, retried every
   * volume resync period (at least 1 s).
   * @returns false when the Pod was stopped meanwhile
   */
  private async mountVolumes(runner: PodRunner, pod: V1Pod): Promise<boolean> {
    for (;;) {
      if (runner.stopped) return false;
      const current = this.o.getPod(runner.namespace, runner.name) ?? pod;
      try {
        await runner.volumes.setUp(current);
        runner.lastMountError = "";
        return !runner.stopped;
      } catch (err) {
        if (runner.stopped) return false;
        this.mountFailed(runner, err);
      }
      await new Promise((r) => setTimeout(r, Math.max(1000, this.o.volumeResyncMs)));
    }
  }

  /** Handles an added or updated Pod: starts it if it is ours and new, stops it if it is being deleted. */
  sync(pod: V1Pod): void {
    if (pod.spec?.nodeName !== LOCAL_NODE) return;
    const uid = pod.metadata?.uid ?? "";
    const existing = this.runners.get(uid);
    if (isTerminating(pod)) {
      // Graceful deletion (if the server implements it): stop, then confirm with a zero-grace delete.
      if (existing && !existing.stopped) {
        const grace = pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
        void this.stopRunner(existing, grace * 1000).then(() =>
          this.o.core
            .deleteNamespacedPod({ namespace: existing.namespace, name: existing.name, gracePeriodSeconds: 0 })
            .catch(() => undefined),
        );
      }
      return;
    }
    if (existing) {
      this.statusQueue.add(keyOf(pod));
      return;
    }
    if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return;
    const runner = new PodRunner(uid, pod.metadata?.namespace ?? "default", pod.metadata?.name ?? "", new PodVolumes(join(this.o.podsDir, uid), this.volumeSources));
    this.runners.set(uid, runner);
    void this.startRunner(runner, pod).catch((err: unknown) =>
      this.o.log.error({ pod: keyOf(pod), err: String(err) }, "Failed to start pod"),
    );
  }

  /** Handles a deleted Pod: stops its processes (SIGTERM, SIGKILL after terminationGracePeriodSeconds). */
  remove(pod: V1Pod): void {
    const runner = this.runners.get(pod.metadata?.uid ?? "");
    if (!runner) return;
    // A delete with a grace period (`--grace-period=0 --force`) overrides the pod's own.
    const grace = pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    void this.stopRunner(runner, grace * 1000);
  }

  private async stopRunner(runner: PodRunner, graceMs: number): Promise<void> {
    if (runner.stopped) return;
    runner.stopped = true;
    this.o.log.info({ pod: `${runner.namespace}/${runner.name}`, graceMs }, "Stopping pod");
    await Promise.all(runner.containers.map((c) => c.stop(graceMs)));
    runner.volumes.tearDown();
    this.runners.delete(runner.uid);
    this.lastWritten.delete(`${runner.namespace}/${runner.name}`);
  }

  private async startRunner(runner: PodRunner, pod: V1Pod): Promise<void> {
    const key = keyOf(pod);
    const involved = { kind: "Pod", apiVersion: "v1", name: runner.name, namespace: runner.namespace, uid: runner.uid };
    const log = this.o.log.child({ pod: key });
    if ((pod.spec?.initContainers ?? []).length > 0) {
      this.o.events.record(involved, "Warning", "InitContainersIgnored", "The local kubelet does not run init containers");
    }
    const logPath = podLogPath(this.o.logsDir, runner.namespace, runner.name);
    const restartPolicy = pod.spec?.restartPolicy ?? "Always";
    this.o.events.record(involved, "Normal", "Scheduled", `Successfully assigned ${key} to ${LOCAL_NODE}`);
    this.statusQueue.add(key);
    if (!(await this.mountVolumes(runner, pod))) return;
    const containers: ContainerProcess[] = [];
    for (const container of pod.spec?.containers ?? []) {
      const probePort = isNetworkProbe(container.readinessProbe) ? await freePort() : undefined;
      const prepare = async (): Promise<StartPlan> => {
        const current = this.o.getPod(runner.namespace, runner.name) ?? pod;
        const base: Record<string, string> = { PATH: process.env.PATH ?? "", KUBECONFIG: this.o.kubeconfigPath };
        if (probePort !== undefined) base.PORT = String(probePort);
        let env: Record<string, string>;
        try {
          env = await resolveEnv(container, current, this.sources, base);
        } catch (err) {
          if (err instanceof ContainerConfigError) return { kind: "wait", reason: "CreateContainerConfigError", message: err.message };
          throw err;
        }
        if (probePort !== undefined) env.PORT = String(probePort);
        // Every (re)start sees the volumes' current content, as after the kubelet's pod sync.
        await this.refreshVolumes(runner, current);
        let mounts;
        try {
          // An emptyDir over an existing host directory (the worker template's /tmp) shares that directory:
          // host paths under it (tests' temp files) keep working, and the host's /tmp is scratch space anyway.
          mounts = containerMounts(container, runner.volumes.dirs, env, (mountPath, volume) => PodVolumes.isEmptyDir(current, volume) && isDirectory(mountPath));
        } catch (err) {
          if (err instanceof ContainerConfigError) return { kind: "wait", reason: "CreateContainerConfigError", message: err.message };
          throw err;
        }
        // The mount-namespace stand-in (mount-paths.ts): paths under a mountPath point at the host dirs.
        // The kubelet's own variables (PATH, KUBECONFIG, PORT) are host paths already and stay as they are.
        const own = Object.fromEntries(Object.entries(env).filter(([k, v]) => base[k] !== v));
        env = { ...env, ...rewriteEnv(own, mounts) };
        const expanded = {
          ...container,
          command: container.command?.map((s) => rewriteArg(expandVars(s, env), mounts)),
          args: container.args?.map((s) => rewriteArg(expandVars(s, env), mounts)),
        };
        const cmd = resolveContainerCommand(expanded, {
          nodePath: this.o.nodePath,
          celeriacBin: this.o.celeriacBin,
          imageCommands: this.o.imageCommands,
          isExecutable,
        });
        if (isNotRunnable(cmd)) return { kind: "wait", reason: "ImageNotRunnable", message: cmd.message };
        return { kind: "run", file: cmd.file, args: cmd.args, env, cwd: this.o.cwd };
      };
      containers.push(
        new ContainerProcess({
          container,
          logPath,
          terminationMessageFile: `${logPath.replace(/\.log$/, "")}_${container.name}.termination-log`,
          restartPolicy,
          backoffBaseMs: this.o.backoffBaseMs,
          ...(probePort !== undefined ? { probePort } : {}),
          prepare,
          onChange: () => this.statusQueue.add(key),
          onEvent: (type, reason, message) => this.o.events.record(involved, type, reason, message),
          log,
        }),
      );
    }
    if (runner.stopped) return;
    runner.containers = containers;
    for (const c of containers) c.start();
    this.statusQueue.add(key);
  }

  private async writeStatus(key: string): Promise<void> {
    const [namespace = "", name = ""] = key.split("/");
    const pod = this.o.getPod(namespace, name);
    if (!pod || isTerminating(pod)) return;
    const runner = this.runners.get(pod.metadata?.uid ?? "");
    if (!runner || runner.stopped) return;
    const rv = pod.metadata?.resourceVersion ?? "";
    const last = this.lastWritten.get(key);
    // Until our last write shows up in the cache, compute from what we wrote, not from the stale copy.
    const mine = last !== undefined && last.rvs.includes(rv);
    const base: V1Pod = mine ? { ...pod, status: last.status as V1Pod["status"] } : pod;
    const status = podStatus(base, runner.snapshot(pod), Date.now());
    const current = mine ? last.status : undefined;
    if (current && JSON.stringify(current) === JSON.stringify(status)) return;
    if (!current && JSON.stringify(normalise(pod.status)) === JSON.stringify(status)) return;
    const written = await this.o.core.patchNamespacedPodStatus(
      { namespace, name, body: { status } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    this.lastWritten.set(key, { rvs: [rv, written.metadata?.resourceVersion ?? ""], status });
  }

  /** Stops every Pod's processes (each with its own grace period) and the status writer. */
  async stopAll(): Promise<void> {
    this.statusQueue.stop();
    clearInterval(this.resyncTimer);
    await Promise.all(
      [...this.runners.values()].map((r) => {
        const pod = this.o.getPod(r.namespace, r.name);
        return this.stopRunner(r, (pod?.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
      }),
    );
  }
}

/** The cached status in wire form (typed lists hold `Date`s), for comparison. */
function normalise(status: unknown): unknown {
  return JSON.parse(JSON.stringify(status ?? {}, (_k, v: unknown) => (typeof v === "string" && /\.\d{3}Z$/.test(v) ? v.replace(/\.\d{3}Z$/, "Z") : v)));
}
