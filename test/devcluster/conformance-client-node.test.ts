/**
 * Conformance: @kubernetes/client-node 1.4 — informers (including a 410 relist), typed and generic patches
 * with the right 415/400 answers, status and scale subresources, Leases with optimistic concurrency.
 */
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { K8S_FIXTURES, waitFor } from "../helpers/k8s-tools.js";

type Obj = k8s.KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

const G = { group: "example.com", version: "v1", namespace: "default", plural: "tasks" };

function codeOf(e: unknown): number | undefined {
  return (e as { code?: number; statusCode?: number }).code ?? (e as { statusCode?: number }).statusCode;
}

describe("when client-node talks to the server", () => {
  let api: ApiServer;
  let dir: string;
  let kc: k8s.KubeConfig;
  let co: k8s.CustomObjectsApi;
  let objs: k8s.KubernetesObjectApi;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-cn-"));
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(join(dir, "kubeconfig"));
    co = kc.makeApiClient(k8s.CustomObjectsApi);
    objs = k8s.KubernetesObjectApi.makeApiClient(kc);
    // Plain JSON POST: the typed CRD model of client-node round-trips x-kubernetes-* keys badly.
    const crd = parse(readFileSync(join(K8S_FIXTURES, "manifests", "crd.yaml"), "utf8"));
    const res = await fetch(`${api.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(crd) });
    assert.equal(res.status, 201);
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const task = (name: string, extra: Record<string, unknown> = {}): Obj => ({ apiVersion: "example.com/v1", kind: "Task", metadata: { name, namespace: "default" }, spec: { image: "busybox", ...extra } });

  it("feeds an informer with adds, updates and deletes", async () => {
    const path = "/apis/example.com/v1/namespaces/default/tasks";
    const informer = k8s.makeInformer<Obj>(kc, path, () => co.listNamespacedCustomObject(G) as never);
    const seen: string[] = [];
    informer.on("add", (o) => seen.push(`add:${o.metadata?.name}`));
    informer.on("update", (o) => seen.push(`update:${o.metadata?.name}`));
    informer.on("delete", (o) => seen.push(`delete:${o.metadata?.name}`));
    informer.on("error", () => undefined);
    await informer.start();
    try {
      await objs.create(task("inf1"));
      await waitFor("add", () => seen.includes("add:inf1"));
      await objs.patch({ ...task("inf1"), spec: { image: "alpine" } } as Obj, undefined, undefined, "test", undefined, k8s.PatchStrategy.MergePatch);
      await waitFor("update", () => seen.includes("update:inf1"));
      await objs.delete(task("inf1"));
      await waitFor("delete", () => seen.includes("delete:inf1"));
    } finally {
      await informer.stop();
    }
  });

  it("keeps delivering adds while the watch history is tiny", async () => {
    const path = "/apis/example.com/v1/namespaces/default/tasks";
    let lists = 0;
    const informer = k8s.makeInformer<Obj>(kc, path, () => {
      lists++;
      return co.listNamespacedCustomObject(G) as never;
    });
    informer.on("error", () => undefined);
    const added = new Set<string>();
    informer.on("add", (o) => added.add(o.metadata?.name ?? ""));
    await informer.start();
    try {
      await objs.create(task("relist0"));
      await waitFor("first add", () => added.has("relist0"));
      // Stop the informer's watch from seeing events, then let history move past its RV.
      api.setWatchHistory(3);
      for (let i = 1; i <= 6; i++) await objs.create(task(`relist${i}`));
      await waitFor("all adds", () => added.has("relist6"), 10_000);
      assert.ok(lists >= 1);
    } finally {
      await informer.stop();
      api.setWatchHistory(10000);
    }
  });

  it("answers 410 to a watch from an expired resourceVersion", async () => {
    api.setWatchHistory(3);
    try {
      const first = await co.listNamespacedCustomObject(G);
      const rv = (first as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
      for (let i = 0; i < 5; i++) await objs.create(task(`exp${i}`));
      const events: { type: string; code?: number }[] = [];
      const watch = new k8s.Watch(kc);
      await new Promise<void>((resolve) => {
        void watch.watch("/apis/example.com/v1/namespaces/default/tasks", { resourceVersion: rv }, (type, o: { code?: number }) => events.push({ type, code: o.code }), () => resolve());
      });
      assert.deepEqual(events, [{ type: "ERROR", code: 410 }]);
    } finally {
      api.setWatchHistory(10000);
    }
  });

  it("rejects the wrong patch types exactly like upstream", async () => {
    await objs.create(task("pt"));
    await assert.rejects(objs.patch(task("pt", { image: "x" })), (e: unknown) => codeOf(e) === 415);
    await assert.rejects(co.patchNamespacedCustomObject({ ...G, name: "pt", body: { spec: { image: "x" } } }), (e: unknown) => codeOf(e) === 400);
    const ok = await co.patchNamespacedCustomObject({ ...G, name: "pt", body: [{ op: "replace", path: "/spec/image", value: "y" }] });
    assert.equal((ok as Obj).spec?.image, "y");
  });

  it("keeps spec on merge-patched status and replaces status with a stale RV → 409", async () => {
    await objs.create(task("st"));
    const opts = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
    const after1 = (await co.patchNamespacedCustomObjectStatus({ ...G, name: "st", body: { spec: { image: "nope" }, status: { phase: "Running" } } }, opts)) as Obj;
    assert.equal(after1.spec?.image, "busybox");
    assert.equal(after1.status?.phase, "Running");
    assert.equal(after1.metadata?.generation, 1);
    const stale = { ...after1, metadata: { ...after1.metadata, resourceVersion: "1" } };
    await assert.rejects(co.replaceNamespacedCustomObjectStatus({ ...G, name: "st", body: stale }), (e: unknown) => codeOf(e) === 409);
  });

  it("scales a Deployment through the typed client", async () => {
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const d = parse(readFileSync(join(K8S_FIXTURES, "manifests", "deploy.yaml"), "utf8")) as k8s.V1Deployment;
    await apps.createNamespacedDeployment({ namespace: "default", body: d });
    const sc = await apps.readNamespacedDeploymentScale({ namespace: "default", name: "worker" });
    assert.equal(sc.spec?.replicas, 1);
    await apps.replaceNamespacedDeploymentScale({ namespace: "default", name: "worker", body: { metadata: { name: "worker", namespace: "default" }, spec: { replicas: 3 } } });
    await waitFor("ready 3", async () => (await apps.readNamespacedDeployment({ namespace: "default", name: "worker" })).status?.readyReplicas === 3);
    const list = await apps.listNamespacedDeployment({ namespace: "default", labelSelector: "app=worker" });
    assert.equal(list.items.length, 1);
    assert.ok(list.items[0]?.metadata?.creationTimestamp instanceof Date);
  });

  it("creates, reads and replaces Leases with optimistic concurrency", async () => {
    const co1 = kc.makeApiClient(k8s.CoordinationV1Api);
    const body: k8s.V1Lease = { metadata: { name: "leader", namespace: "default" }, spec: { holderIdentity: "a", leaseDurationSeconds: 15 } };
    await co1.createNamespacedLease({ namespace: "default", body });
    await assert.rejects(co1.createNamespacedLease({ namespace: "default", body }), (e: unknown) => codeOf(e) === 409);
    const cur = await co1.readNamespacedLease({ namespace: "default", name: "leader" });
    const renewed = await co1.replaceNamespacedLease({ namespace: "default", name: "leader", body: { ...cur, spec: { ...cur.spec, holderIdentity: "b", renewTime: new k8s.V1MicroTime() } } });
    assert.equal(renewed.spec?.holderIdentity, "b");
    await assert.rejects(co1.replaceNamespacedLease({ namespace: "default", name: "leader", body: cur }), (e: unknown) => codeOf(e) === 409);
  });

  it("server-side applies with a field manager and creates with 201", async () => {
    const applied = await objs.patch(task("ssa", { queue: "q1" }), undefined, undefined, "celeriac-operator", true, k8s.PatchStrategy.ServerSideApply);
    assert.equal((applied as Obj).spec?.queue, "q1");
    const mf = applied.metadata?.managedFields ?? [];
    assert.ok(mf.some((e) => e.manager === "celeriac-operator" && e.operation === "Apply"));
    const again = await objs.patch(task("ssa", { queue: "q1" }), undefined, undefined, "celeriac-operator", true, k8s.PatchStrategy.ServerSideApply);
    assert.equal(again.metadata?.resourceVersion, applied.metadata?.resourceVersion, "a no-op apply keeps the resourceVersion");
  });
});
