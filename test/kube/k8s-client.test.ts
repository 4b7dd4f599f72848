import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import {
  BUILTIN_TYPES, KubeApiError, applyChild, applyStatus, apiErrorCode, controllerRef, createObject, deleteObject, getObject,
  isAlreadyExists, isConflict, isGone, isNotFound, isSubset, listObjects, mergePatch, patchStatus,
  resourcePath,
} from "../../kube/k8s-client.js";
import { loadKubeConfig } from "../../kube/kubeconfig.js";
import type { KubeObject } from "../../kube/k8s-client.js";
import { QUEUES, TASKS, queueObject, startCluster, taskObject, type TestCluster } from "../operator/runtime/cluster.js";

describe("when resource paths are built", () => {
  const table: Array<[string, string]> = [
    [resourcePath(BUILTIN_TYPES.Pod, "ns", "p"), "/api/v1/namespaces/ns/pods/p"],
    [resourcePath(BUILTIN_TYPES.Deployment, "ns"), "/apis/apps/v1/namespaces/ns/deployments"],
    [resourcePath(TASKS, "default", "x", "status"), "/apis/celeriac.io/v1alpha1/namespaces/default/tasks/x/status"],
    [resourcePath(TASKS), "/apis/celeriac.io/v1alpha1/tasks"],
    [resourcePath(BUILTIN_TYPES.Namespace, undefined, "default"), "/api/v1/namespaces/default"],
  ];
  for (const [got, want] of table) it(`builds ${want}`, () => assert.equal(got, want));
});

describe("when API errors are classified", () => {
  const wrap = (e: unknown): Error => new Error("get tasks default/x", { cause: e });
  const notFound = new KubeApiError(404, { reason: "NotFound", code: 404, message: "nope" });
  const conflict = new KubeApiError(409, { reason: "Conflict", code: 409 });
  const exists = new KubeApiError(409, { reason: "AlreadyExists", code: 409 });
  const gone = Object.assign(new Error("Gone"), { statusCode: 410 });
  const apiException = { code: 404, body: { reason: "NotFound" } };
  const table: Array<[string, unknown, { nf: boolean; cf: boolean; ae: boolean; g: boolean }]> = [
    ["404 KubeApiError", notFound, { nf: true, cf: false, ae: false, g: false }],
    ["wrapped 404", wrap(notFound), { nf: true, cf: false, ae: false, g: false }],
    ["409 Conflict", wrap(conflict), { nf: false, cf: true, ae: false, g: false }],
    ["409 AlreadyExists", wrap(exists), { nf: false, cf: false, ae: true, g: false }],
    ["watch 410", gone, { nf: false, cf: false, ae: false, g: true }],
    ["client-node ApiException", apiException, { nf: true, cf: false, ae: false, g: false }],
    ["transport error", Object.assign(new Error("x"), { code: "ECONNREFUSED" }), { nf: false, cf: false, ae: false, g: false }],
    ["a message that says not found", new Error("404 not found"), { nf: false, cf: false, ae: false, g: false }],
  ];
  for (const [name, err, want] of table) {
    it(`classifies ${name}`, () => {
      assert.deepEqual(
        { nf: isNotFound(err), cf: isConflict(err), ae: isAlreadyExists(err), g: isGone(err) },
        want,
      );
    });
  }
  it("reads the code through the cause chain", () => assert.equal(apiErrorCode(wrap(wrap(conflict))), 409));
});

describe("when desired fields are compared with a live object", () => {
  const live = { a: 1, b: { c: [1, 2], d: "x" }, extra: true };
  const table: Array<[unknown, boolean]> = [
    [{ a: 1 }, true],
    [{ b: { c: [1, 2] } }, true],
    [{ b: { c: [1] } }, false],
    [{ a: 2 }, false],
    [{ missing: 1 }, false],
    [{ a: undefined }, true],
  ];
  for (const [desired, want] of table) it(`says ${JSON.stringify(desired)} ⊆ live is ${want}`, () => assert.equal(isSubset(desired, live), want));
});

describe("when a patch is sent", () => {
  it("uses application/merge-patch+json on /status and the main resource", async () => {
    const seen: Array<{ method?: string; url?: string; type?: string; body: string }> = [];
    const srv = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, type: req.headers["content-type"], body });
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "x" } }));
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const port = (srv.address() as AddressInfo).port;
      const kc = new KubeConfig();
      kc.loadFromClusterAndUser({ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }, { name: "u", token: "t" });
      const ref = { group: "celeriac.io", version: "v1alpha1", plural: "tasks", namespace: "default", name: "x" };
      await patchStatus(kc, ref, { phase: "Running" }, "celeriac-operator");
      await mergePatch(kc, ref, { metadata: { labels: { a: "b" } } }, "celeriac-operator");
      assert.equal(seen.length, 2);
      assert.equal(seen[0]?.method, "PATCH");
      assert.equal(seen[0]?.type, "application/merge-patch+json");
      assert.equal(seen[0]?.url, "/apis/celeriac.io/v1alpha1/namespaces/default/tasks/x/status?fieldManager=celeriac-operator");
      assert.deepEqual(JSON.parse(seen[0]?.body ?? ""), { status: { phase: "Running" } });
      assert.equal(seen[1]?.type, "application/merge-patch+json");
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});

describe("when the kubeconfig is loaded", () => {
  it("wraps a missing file with the verb and path", () => {
    assert.throws(() => loadKubeConfig({ kubeconfig: "/nonexistent/kubeconfig", env: {} }), /load kubeconfig \/nonexistent\/kubeconfig/);
  });
});

describe("when talking to the in-memory API server", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks", "queues"]);
  });
  after(async () => {
    await c.close();
  });

  it("writes status with a merge patch without bumping generation or touching spec", async () => {
    const created = await createObject(c.kc, TASKS, taskObject("default", "status-1"), "test");
    assert.equal(created.metadata?.generation, 1);
    const ref = { ...TASKS, namespace: "default", name: "status-1" };
    const patched = await patchStatus(c.kc, ref, { phase: "Running", attempts: 1 }, "celeriac-worker");
    const live = await getObject<KubeObject & { status?: Record<string, unknown>; spec?: Record<string, unknown> }>(c.kc, ref);
    assert.equal(live.metadata?.generation, 1);
    assert.equal(live.status?.phase, "Running");
    assert.equal(live.status?.attempts, 1);
    assert.equal(live.spec?.task, "demo.add");
    assert.notEqual(patched.metadata?.resourceVersion, created.metadata?.resourceVersion);
    await patchStatus(c.kc, ref, { attempts: null }, "celeriac-worker");
    const after1 = await getObject<KubeObject & { status?: Record<string, unknown> }>(c.kc, ref);
    assert.deepEqual(after1.status?.attempts, undefined, "null deletes the key (merge patch, not JSON patch)");
    assert.equal(after1.status?.phase, "Running");
  });

  it("merge-patches the main resource and bumps generation only for spec changes", async () => {
    // A Task's spec is immutable after creation; a Queue's is not.
    await createObject(c.kc, QUEUES, queueObject("default", "patch-1"), "test");
    const ref = { ...QUEUES, namespace: "default", name: "patch-1" };
    const labelled = await mergePatch(c.kc, ref, { metadata: { labels: { x: "y" } } }, "test");
    assert.equal(labelled.metadata?.generation, 1);
    const changed = await mergePatch(c.kc, ref, { spec: { concurrency: 7 } }, "test");
    assert.equal(changed.metadata?.generation, 2);
  });

  it("classifies NotFound, AlreadyExists and Conflict from the server", async () => {
    const ref = { ...TASKS, namespace: "default", name: "absent" };
    await assert.rejects(getObject(c.kc, ref), (err: unknown) => isNotFound(err) && /get tasks default\/absent/.test(String(err)));
    await createObject(c.kc, TASKS, taskObject("default", "dup"), "test");
    await assert.rejects(createObject(c.kc, TASKS, taskObject("default", "dup"), "test"), (err: unknown) => isAlreadyExists(err) && !isConflict(err));
    const stale = { metadata: { resourceVersion: "1" }, spec: { task: "demo.x" } };
    await assert.rejects(mergePatch(c.kc, { ...TASKS, namespace: "default", name: "dup" }, stale, "test"), (err: unknown) => isConflict(err));
  });

  it("creates, leaves alone and patches a child with applyChild", async () => {
    const owner = await createObject(c.kc, TASKS, taskObject("default", "owner-1"), "test");
    const desired: KubeObject = {
      metadata: { name: "owner-1-workers", namespace: "default", labels: { app: "w" }, ownerReferences: [controllerRef(owner)] },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "w" } },
        template: { metadata: { labels: { app: "w" } }, spec: { containers: [{ name: "w", image: "busybox:1" }] } },
      },
    };
    const first = await applyChild(c.kc, BUILTIN_TYPES.Deployment, desired, "celeriac-operator");
    assert.equal(first.action, "created");
    const second = await applyChild(c.kc, BUILTIN_TYPES.Deployment, desired, "celeriac-operator");
    assert.equal(second.action, "unchanged");
    assert.equal(second.object.metadata?.generation, first.object.metadata?.generation, "no spec write");
    const scaled = { ...desired, spec: { ...(desired.spec as object), replicas: 3 } };
    const third = await applyChild(c.kc, BUILTIN_TYPES.Deployment, scaled, "celeriac-operator");
    assert.equal(third.action, "patched");
    assert.equal((third.object.spec as { replicas: number }).replicas, 3);
    // with what the caller knows of the live object: a matching one sends nothing, a stale one is read again
    const known = await applyChild(c.kc, BUILTIN_TYPES.Deployment, scaled, "celeriac-operator", { live: third.object });
    assert.equal(known.action, "unchanged");
    const stale = await applyChild(c.kc, BUILTIN_TYPES.Deployment, desired, "celeriac-operator", { live: third.object });
    assert.equal(stale.action, "patched");
    assert.equal((stale.object.spec as { replicas: number }).replicas, 1);
    // known absent: created without a read, and an existing one is still patched after AlreadyExists
    const again = await applyChild(c.kc, BUILTIN_TYPES.Deployment, scaled, "celeriac-operator", { live: null });
    assert.equal(again.action, "patched");
    const list = await listObjects(c.kc, BUILTIN_TYPES.Deployment, { namespace: "default" });
    const item = list.items.find((d) => d.metadata?.name === "owner-1-workers");
    assert.equal(item?.kind, "Deployment", "built-in list items get their kind filled in");
    assert.ok(list.resourceVersion.length > 0);
    assert.equal(await deleteObject(c.kc, { ...BUILTIN_TYPES.Deployment, namespace: "default", name: "owner-1-workers" }), true);
    assert.equal(await deleteObject(c.kc, { ...BUILTIN_TYPES.Deployment, namespace: "default", name: "owner-1-workers" }), false);
  });
});

describe("when status is written with server-side apply", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks"]);
  });
  after(async () => {
    await c.close();
  });
  const cond = (type: string, reason: string) => ({ type, status: "True", reason, message: reason, lastTransitionTime: "2026-01-01T00:00:00Z" });

  it("merges each manager's conditions by type and keeps the other's", async () => {
    const t = await createObject(c.kc, TASKS, taskObject("default", "ssa-merge"), "test");
    const meta = { name: "ssa-merge", namespace: "default" };
    await applyStatus(c.kc, TASKS, { metadata: meta, status: { phase: "Queued", conditions: [cond("Accepted", "Queued")] } }, "operator");
    const after = await applyStatus(c.kc, TASKS, { metadata: meta, status: { phase: "Running", conditions: [cond("Running", "Started")] } }, "worker", { force: true });
    const status = after.status as { phase: string; conditions: Array<{ type: string }> };
    assert.equal(status.phase, "Running");
    assert.deepEqual(status.conditions.map((x) => x.type).sort(), ["Accepted", "Running"]);
    assert.equal(after.metadata?.generation, t.metadata?.generation, "generation unchanged");
    assert.deepEqual(after.spec, t.spec, "spec untouched");
  });

  it("refuses a field another manager owns without force, and a stale resourceVersion always", async () => {
    await createObject(c.kc, TASKS, taskObject("default", "ssa-lock"), "test");
    const meta = { name: "ssa-lock", namespace: "default" };
    const first = await applyStatus(c.kc, TASKS, { metadata: meta, status: { phase: "Queued" } }, "operator");
    await assert.rejects(applyStatus(c.kc, TASKS, { metadata: meta, status: { phase: "Running" } }, "worker"), (err: unknown) => isConflict(err));
    await applyStatus(c.kc, TASKS, { metadata: meta, status: { phase: "Running" } }, "worker", { force: true });
    const stale = { ...meta, resourceVersion: first.metadata?.resourceVersion };
    await assert.rejects(applyStatus(c.kc, TASKS, { metadata: stale, status: { phase: "Queued" } }, "operator", { force: true }), (err: unknown) => isConflict(err));
    const live = await getObject(c.kc, { ...TASKS, ...meta });
    assert.equal((live.status as { phase: string }).phase, "Running");
  });
});
