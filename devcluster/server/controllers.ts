/**
 * The controllers that run inside the server: ownerReference garbage collection (background, foreground,
 * orphan), the namespace controller (Terminating → delete contents → delete namespace), and the Deployment
 * status stub (status mirrors spec.replicas so `rollout status` and `helm --wait` finish). Each runs
 * asynchronously (next tick) like upstream, and each can be switched off.
 */
import type { Core } from "./core.js";
import type { StoreEvent } from "./store.js";
import type { KObject, ResourceType } from "./types.js";
import { storageKey } from "./types.js";
import { clone, nowRfc3339 } from "./util.js";

/** Which controllers run. */
export interface ControllerSwitches {
  /** ownerReference GC (default on). */
  garbageCollector: boolean;
  /** Namespace deletion (default on). */
  namespaces: boolean;
  /** Deployment status stub (default on); turn off when a kubelet reports real status. */
  deploymentStatus: boolean;
}

const GC_MANAGER = "generic-garbage-collector";

/** Runs the in-process controllers off the store's event stream. */
export class Controllers {
  private scheduled = false;
  /**
   * A deletion happened since the last garbage-collection pass. The full pass copies every stored
   * object, so it runs only then (new dependents of missing owners are caught by collectDangling):
   * with it on every write, 300 Queues took 128 s to be Ready instead of 18 s (bench/queues-at-scale).
   */
  private gcPending = true;
  private readonly pendingOwnerChecks = new Map<string, string>();
  private readonly pendingDeployments = new Set<string>();
  private unsubscribe: () => void = () => undefined;

  /**
   * @param core the verbs to act through
   * @param switches which controllers run (mutable at runtime by tests)
   */
  constructor(
    private readonly core: Core,
    readonly switches: ControllerSwitches,
  ) {}

  /** Starts listening to store events. */
  start(): void {
    this.unsubscribe = this.core.store.subscribe((e) => this.onEvent(e));
  }

  /** Stops listening. */
  stop(): void {
    this.unsubscribe();
  }

  private onEvent(e: StoreEvent): void {
    if (e.gr === "apps/deployments" && e.type !== "DELETED" && this.switches.deploymentStatus) {
      const o = e.obj;
      if (o.status?.observedGeneration !== o.metadata.generation || (o.status?.readyReplicas ?? 0) !== (o.spec?.replicas ?? 1)) {
        this.pendingDeployments.add(`${o.metadata.namespace}/${o.metadata.name}`);
        this.schedule();
      }
    }
    if (e.type === "DELETED" || (e.obj.metadata.deletionTimestamp && e.type === "MODIFIED")) {
      this.gcPending = true;
      this.schedule();
    }
    // A dependent written with an ownerReference to an owner that no longer exists (a controller racing
    // its owner's deletion) is garbage too, as the real GC's attemptToDelete finds.
    else if (e.type === "ADDED" && (e.obj.metadata.ownerReferences?.length ?? 0) > 0 && this.switches.garbageCollector) {
      this.pendingOwnerChecks.set(`${e.gr}|${e.obj.metadata.namespace ?? ""}|${e.obj.metadata.name}`, e.gr);
      this.schedule();
    }
  }

  /** True when an object of `kind` in `apiVersion` named `name` with this uid exists in `namespace`. */
  private ownerExists(ref: KObject, namespace: string): boolean {
    const [group, version] = String(ref.apiVersion).includes("/") ? String(ref.apiVersion).split("/") : ["", String(ref.apiVersion)];
    const rt = this.core.reg.all().find((t) => t.group === group && t.version === version && t.kind === ref.kind);
    if (!rt) return false;
    const owner = this.core.raw(rt, rt.namespaced ? namespace : "", ref.name);
    return owner !== undefined && owner.metadata.uid === ref.uid;
  }

  /** Deletes newly written dependents all of whose owners are absent. */
  private collectDangling(): void {
    const types = this.types();
    for (const [key, gr] of this.pendingOwnerChecks) {
      this.pendingOwnerChecks.delete(key);
      const [, ns, name] = key.split("|") as [string, string, string];
      const rt = types.get(gr);
      if (!rt) continue;
      const o = this.core.raw(rt, ns, name);
      if (!o || o.metadata.deletionTimestamp) continue;
      const refs: KObject[] = o.metadata.ownerReferences ?? [];
      if (refs.length > 0 && refs.every((r) => !this.ownerExists(r, ns))) {
        this.core.delete({ rt, namespace: ns, name }, { propagationPolicy: "Background" }, false);
      }
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.run();
      } catch (err) {
        console.error("in-memory apiserver controller failed", err);
      }
    });
  }

  private types(): Map<string, ResourceType> {
    const m = new Map<string, ResourceType>();
    for (const t of this.core.reg.all()) {
      const k = storageKey(t.group, t.resource);
      if (!m.has(k) || t.version === t.storageVersion) m.set(k, t);
    }
    return m;
  }

  /** One pass of every controller. */
  run(): void {
    if (this.switches.deploymentStatus) this.syncDeployments();
    if (this.switches.namespaces) this.syncNamespaces();
    if (this.switches.garbageCollector) {
      this.collectDangling();
      if (this.gcPending) {
        this.gcPending = false;
        this.collectGarbage();
      }
    }
  }

  private syncDeployments(): void {
    const rt = this.core.reg.lookup("apps", "v1", "deployments") as ResourceType;
    for (const key of this.pendingDeployments) {
      this.pendingDeployments.delete(key);
      const [ns, name] = key.split("/") as [string, string];
      const o = this.core.raw(rt, ns, name);
      if (!o || o.metadata.deletionTimestamp) continue;
      const replicas = o.spec?.replicas ?? 1;
      const next = clone(o);
      const prev = (o.status?.conditions ?? []) as KObject[];
      const now = nowRfc3339();
      const cond = (type: string, reason: string, message: string): KObject => {
        const p = prev.find((c) => c.type === type);
        return { type, status: "True", lastUpdateTime: p?.status === "True" ? p.lastUpdateTime : now, lastTransitionTime: p?.status === "True" ? p.lastTransitionTime : now, reason, message };
      };
      next.status = {
        observedGeneration: o.metadata.generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          cond("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
          cond("Progressing", "NewReplicaSetAvailable", `ReplicaSet "${name}" has successfully progressed.`),
        ],
      };
      if (replicas === 0) {
        delete next.status.readyReplicas;
        delete next.status.availableReplicas;
      }
      this.core.controllerUpdate(rt, next, "kube-controller-manager", "status");
    }
  }

  private syncNamespaces(): void {
    const nsType = this.core.reg.lookup("", "v1", "namespaces") as ResourceType;
    for (const ns of this.core.store.list("/namespaces")) {
      if (!ns.metadata.deletionTimestamp) continue;
      const name = ns.metadata.name;
      let remaining = 0;
      for (const [gr, rt] of this.types()) {
        if (!rt.namespaced) continue;
        for (const o of this.core.store.list(gr, name)) {
          remaining++;
          if (!o.metadata.deletionTimestamp) this.core.delete({ rt, namespace: name, name: o.metadata.name }, { propagationPolicy: "Background" }, false);
        }
      }
      if (remaining === 0) {
        const gone = this.core.raw(nsType, "", name);
        if (gone && !(gone.metadata.finalizers?.length > 0)) this.core.store.delete("/namespaces", "", name);
      }
    }
  }

  private collectGarbage(): void {
    const types = this.types();
    const all: { gr: string; rt: ResourceType; o: KObject }[] = [];
    const live = new Map<string, KObject>();
    for (const [gr, rt] of types) {
      for (const o of this.core.store.list(gr)) {
        all.push({ gr, rt, o });
        live.set(o.metadata.uid, o);
      }
    }
    // Owners being deleted in the foreground or with orphaning.
    for (const { rt, o } of all) {
      const fins: string[] = o.metadata.finalizers ?? [];
      if (!o.metadata.deletionTimestamp) continue;
      const uid = o.metadata.uid;
      const dependents = all.filter((d) => (d.o.metadata.ownerReferences ?? []).some((r: KObject) => r.uid === uid));
      if (fins.includes("orphan")) {
        for (const d of dependents) {
          const next = clone(d.o);
          next.metadata.ownerReferences = (next.metadata.ownerReferences as KObject[]).filter((r) => r.uid !== uid);
          if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
          this.core.controllerUpdate(d.rt, next, GC_MANAGER);
        }
        this.removeFinalizer(rt, o, "orphan");
      } else if (fins.includes("foregroundDeletion")) {
        const blocking = dependents.filter((d) => (d.o.metadata.ownerReferences as KObject[]).some((r) => r.uid === uid && r.blockOwnerDeletion === true));
        for (const d of dependents) {
          if (!d.o.metadata.deletionTimestamp) this.core.delete({ rt: d.rt, namespace: d.o.metadata.namespace ?? "", name: d.o.metadata.name }, { propagationPolicy: "Foreground" }, false);
        }
        if (blocking.length === 0 || blocking.every((d) => !this.core.raw(d.rt, d.o.metadata.namespace ?? "", d.o.metadata.name))) {
          this.removeFinalizer(rt, o, "foregroundDeletion");
        }
      }
    }
    // Background: dependents whose owners are all gone.
    for (const { rt, o } of all) {
      const refs: KObject[] = o.metadata.ownerReferences ?? [];
      if (refs.length === 0 || o.metadata.deletionTimestamp) continue;
      const alive = refs.filter((r) => {
        const owner = live.get(r.uid);
        if (!owner) return false;
        if (rt.namespaced && owner.metadata.namespace && owner.metadata.namespace !== o.metadata.namespace) return false;
        return true;
      });
      if (alive.length === refs.length) continue;
      if (!this.core.raw(rt, o.metadata.namespace ?? "", o.metadata.name)) continue;
      if (alive.length === 0) this.core.delete({ rt, namespace: o.metadata.namespace ?? "", name: o.metadata.name }, { propagationPolicy: "Background" }, false);
      else {
        const next = clone(o);
        next.metadata.ownerReferences = alive;
        this.core.controllerUpdate(rt, next, GC_MANAGER);
      }
    }
  }

  private removeFinalizer(rt: ResourceType, o: KObject, f: string): void {
    const cur = this.core.raw(rt, o.metadata.namespace ?? "", o.metadata.name);
    if (!cur) return;
    cur.metadata.finalizers = (cur.metadata.finalizers ?? []).filter((x: string) => x !== f);
    this.core.controllerUpdate(rt, cur, GC_MANAGER);
  }
}
