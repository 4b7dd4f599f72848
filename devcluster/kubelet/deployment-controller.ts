/**
 * The ReplicaSet-controller half: keeps each Deployment's Pods at `spec.replicas` for the current
 * template, rolls old-template Pods over, and writes `deployments/status`.
 *
 * Simplifications (docs/dev-kubelet.md): no ReplicaSet objects (Pods are owned by the Deployment);
 * a rolling update creates all new Pods at once and deletes old ones as new ones become ready
 * (`Recreate` deletes old ones first); no adoption of orphan Pods; `paused` is ignored.
 */
import { PatchStrategy, setHeaderOptions, type AppsV1Api, type CoreV1Api, type V1Deployment, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { isConflict, isNotFound } from "./api-errors.js";
import { currentDeploymentStatus, desiredDeploymentStatus, statusMergePatch } from "./deployment-status.js";
import type { EventRecorder } from "./events.js";
import { isPodReady, isTerminating } from "./pod-facts.js";
import { POD_TEMPLATE_HASH, desiredPod, isOwnedBy, randomSuffix, templateHash } from "./pod-template.js";
import { chooseVictims } from "./victims.js";
import type { HandlerResult } from "./work-queue.js";

/** How long an unconfirmed create/delete is trusted before the cache is believed again, in ms. */
const EXPECTATION_TTL_MS = 30_000;

/** Dependencies of {@link DeploymentController}. */
export interface DeploymentControllerOptions {
  core: CoreV1Api;
  apps: AppsV1Api;
  events: EventRecorder;
  log: Logger;
  getDeployment: (namespace: string, name: string) => V1Deployment | undefined;
  listPods: (namespace: string) => readonly V1Pod[];
}

interface Expectations {
  /** Pods created but not yet seen in the cache, by name → time. */
  creates: Map<string, { at: number; pod: V1Pod }>;
  /** Pods deleted but still in the cache, by name → time. */
  deletes: Map<string, number>;
}

/** Reconciles one Deployment per call; keys are `namespace/name`. */
export class DeploymentController {
  private readonly expectations = new Map<string, Expectations>();
  private readonly lastWritten = new Map<string, { rvs: string[]; status: ReturnType<typeof currentDeploymentStatus> }>();

  constructor(private readonly o: DeploymentControllerOptions) {}

  /**
   * Brings the Deployment's Pods and status in line with its spec.
   * @param key `namespace/name`
   * @returns a requeue delay when a timer (minReadySeconds, progress deadline, unconfirmed writes) matters
   * @throws on API failures other than 404/409 (the queue retries)
   */
  async reconcile(key: string): Promise<HandlerResult> {
    const [namespace = "", name = ""] = key.split("/");
    const d = this.o.getDeployment(namespace, name);
    if (!d || isTerminating(d)) {
      this.expectations.delete(key);
      this.lastWritten.delete(key);
      return;
    }
    const uid = d.metadata?.uid ?? "";
    const hash = templateHash(d.spec?.template);
    const now = Date.now();
    const exp = this.expectationsOf(key);
    const cached = this.o.listPods(namespace).filter((p) => isOwnedBy(p, uid));
    for (const n of exp.creates.keys()) {
      const e = exp.creates.get(n);
      if (cached.some((p) => p.metadata?.name === n) || (e && now - e.at > EXPECTATION_TTL_MS)) exp.creates.delete(n);
    }
    for (const [n, at] of exp.deletes) {
      if (!cached.some((p) => p.metadata?.name === n) || now - at > EXPECTATION_TTL_MS) exp.deletes.delete(n);
    }
    const active = cached.filter(
      (p) => !isTerminating(p) && !exp.deletes.has(p.metadata?.name ?? "") && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed",
    );
    const pending = [...exp.creates.values()].map((e) => e.pod);
    const current = [...active.filter((p) => p.metadata?.labels?.[POD_TEMPLATE_HASH] === hash), ...pending];
    const old = active.filter((p) => p.metadata?.labels?.[POD_TEMPLATE_HASH] !== hash);
    const want = d.spec?.replicas ?? 1;
    const recreate = d.spec?.strategy?.type === "Recreate";

    const victims: V1Pod[] = [];
    if (current.length > want) victims.push(...chooseVictims(current.filter((p) => !pending.includes(p)), current.length - want));
    const readyCurrent = current.filter((p) => isPodReady(p)).length;
    const keepOld = recreate ? 0 : Math.max(0, want - readyCurrent);
    if (old.length > keepOld) victims.push(...chooseVictims(old, old.length - keepOld));
    const toCreate = recreate && old.length > 0 ? 0 : Math.max(0, want - current.length);

    for (const victim of victims) await this.deletePod(d, victim, exp);
    for (let i = 0; i < toCreate; i++) await this.createPod(d, hash, exp);

    const statusPods = active.filter((p) => !victims.includes(p));
    const { status, recheckInMs } = desiredDeploymentStatus({ deployment: this.withLastWritten(key, d), pods: statusPods, hash, nowMs: now });
    await this.writeStatus(key, d, status);
    const unconfirmed = exp.creates.size + exp.deletes.size > 0 ? 1000 : undefined;
    const next = [recheckInMs, unconfirmed].filter((x): x is number => x !== undefined);
    return next.length > 0 ? { requeueAfterMs: Math.min(...next) } : undefined;
  }

  /** Forgets a deleted Deployment's bookkeeping. */
  forget(key: string): void {
    this.expectations.delete(key);
    this.lastWritten.delete(key);
  }

  private expectationsOf(key: string): Expectations {
    let e = this.expectations.get(key);
    if (!e) {
      e = { creates: new Map(), deletes: new Map() };
      this.expectations.set(key, e);
    }
    return e;
  }

  /** Until our last status write reaches the cache, compute from what we wrote. */
  private withLastWritten(key: string, d: V1Deployment): V1Deployment {
    const last = this.lastWritten.get(key);
    if (!last || !last.rvs.includes(d.metadata?.resourceVersion ?? "")) return d;
    return { ...d, status: last.status as V1Deployment["status"] };
  }

  private async createPod(d: V1Deployment, hash: string, exp: Expectations): Promise<void> {
    const pod = desiredPod(d, hash, randomSuffix());
    const namespace = pod.metadata?.namespace ?? "default";
    const name = pod.metadata?.name ?? "";
    exp.creates.set(name, { at: Date.now(), pod });
    try {
      await this.o.core.createNamespacedPod({ namespace, body: pod });
    } catch (err) {
      exp.creates.delete(name);
      if (isConflict(err)) return; // name collision: the next pass picks another suffix
      throw new Error(`create pod ${namespace}/${name}`, { cause: err });
    }
    this.o.log.info({ deployment: `${namespace}/${d.metadata?.name}`, pod: name }, "Created pod");
    this.o.events.record(this.ref(d), "Normal", "SuccessfulCreate", `Created pod: ${name}`);
  }

  private async deletePod(d: V1Deployment, pod: V1Pod, exp: Expectations): Promise<void> {
    const namespace = pod.metadata?.namespace ?? "default";
    const name = pod.metadata?.name ?? "";
    exp.deletes.set(name, Date.now());
    try {
      await this.o.core.deleteNamespacedPod({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return;
      exp.deletes.delete(name);
      throw new Error(`delete pod ${namespace}/${name}`, { cause: err });
    }
    this.o.log.info({ deployment: `${namespace}/${d.metadata?.name}`, pod: name }, "Deleted pod");
    this.o.events.record(this.ref(d), "Normal", "SuccessfulDelete", `Deleted pod: ${name}`);
  }

  private async writeStatus(key: string, d: V1Deployment, desired: ReturnType<typeof currentDeploymentStatus>): Promise<void> {
    const last = this.lastWritten.get(key);
    const rv = d.metadata?.resourceVersion ?? "";
    const current = last && last.rvs.includes(rv) ? last.status : currentDeploymentStatus(d);
    const patch = statusMergePatch(current, desired);
    if (!patch) return;
    const [namespace = "", name = ""] = key.split("/");
    try {
      const written = await this.o.apps.patchNamespacedDeploymentStatus(
        { namespace, name, body: patch },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      this.lastWritten.set(key, { rvs: [rv, written.metadata?.resourceVersion ?? ""], status: desired });
    } catch (err) {
      if (isNotFound(err)) return;
      throw new Error(`patch deployment status ${key}`, { cause: err });
    }
  }

  private ref(d: V1Deployment): { kind: string; apiVersion: string; name: string; namespace: string; uid: string } {
    return {
      kind: "Deployment",
      apiVersion: "apps/v1",
      name: d.metadata?.name ?? "",
      namespace: d.metadata?.namespace ?? "default",
      uid: d.metadata?.uid ?? "",
    };
  }
}
