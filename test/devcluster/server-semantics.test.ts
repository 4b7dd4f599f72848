/**
 * Semantics of the in-memory API server over plain HTTP: no-op writes, generation rules, status isolation,
 * optimistic concurrency, validation, garbage collection and watch replay.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { K8S_FIXTURES, waitFor } from "../helpers/k8s-tools.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are arbitrary JSON
type J = any;

const TASKS = "/apis/example.com/v1/namespaces/default/tasks";

describe("when the server applies Kubernetes semantics", () => {
  let api: ApiServer;
  const call = async (method: string, path: string, body?: unknown, ct = "application/json"): Promise<{ status: number; body: J; headers: Headers }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": ct }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const task = (name: string, spec: J = {}): J => ({ apiVersion: "example.com/v1", kind: "Task", metadata: { name }, spec: { image: "busybox", ...spec } });

  before(async () => {
    api = await startApiServer({});
    const crd = parse(readFileSync(join(K8S_FIXTURES, "manifests", "crd.yaml"), "utf8"));
    assert.equal((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status, 201);
  });
  after(async () => {
    await api.close();
  });

  it("keeps the resourceVersion and emits no event on a no-op write", async () => {
    const created = (await call("POST", TASKS, task("noop"))).body;
    const rv = created.metadata.resourceVersion;
    const same = await call("PATCH", `${TASKS}/noop`, { spec: { image: "busybox" } }, "application/merge-patch+json");
    assert.equal(same.body.metadata.resourceVersion, rv);
    const put = await call("PUT", `${TASKS}/noop`, same.body);
    assert.equal(put.body.metadata.resourceVersion, rv);
    const ctrl = new AbortController();
    const res = await fetch(`${api.url}${TASKS}?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dnoop&timeoutSeconds=1`, { signal: ctrl.signal });
    assert.equal((await res.text()).trim(), "", "no events after the no-op writes");
  });

  it("bumps generation for spec changes only, never for status or labels", async () => {
    await call("POST", TASKS, task("gen"));
    const l = await call("PATCH", `${TASKS}/gen`, { metadata: { labels: { a: "b" } } }, "application/merge-patch+json");
    assert.equal(l.body.metadata.generation, 1);
    const s = await call("PATCH", `${TASKS}/gen/status`, { status: { phase: "Running" }, spec: { image: "ignored" } }, "application/merge-patch+json");
    assert.equal(s.body.metadata.generation, 1);
    assert.equal(s.body.spec.image, "busybox", "status writes ignore spec");
    const m = await call("PATCH", `${TASKS}/gen`, { spec: { image: "alpine" }, status: { phase: "Failed" } }, "application/merge-patch+json");
    assert.equal(m.body.metadata.generation, 2);
    assert.equal(m.body.status.phase, "Running", "main-resource writes keep status");
  });

  it("answers 409 to a stale update and 422 to an update without resourceVersion", async () => {
    const c = (await call("POST", TASKS, task("rv"))).body;
    await call("PATCH", `${TASKS}/rv`, { spec: { image: "x" } }, "application/merge-patch+json");
    const stale = await call("PUT", `${TASKS}/rv`, c);
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, "Conflict");
    const norv = task("rv");
    assert.equal((await call("PUT", `${TASKS}/rv`, norv)).status, 422);
    assert.equal((await call("POST", TASKS, { ...task("rv2"), metadata: { name: "rv2", resourceVersion: "5" } })).status, 400);
  });

  it("rejects an invalid custom resource with 422 naming the field", async () => {
    const r = await call("POST", TASKS, task("bad", { retries: 11 }));
    assert.equal(r.status, 422);
    assert.equal(r.body.reason, "Invalid");
    assert.equal(r.body.details.kind, "Task");
    assert.ok(r.body.details.causes.some((c: J) => c.field === "spec.retries"));
    const missing = await call("POST", TASKS, { apiVersion: "example.com/v1", kind: "Task", metadata: { name: "bad2" }, spec: {} });
    assert.match(missing.body.message, /spec.image: Required value/);
  });

  it("defaults, prunes and warns on unknown fields by default", async () => {
    const r = await call("POST", TASKS, task("warn", { bogus: 1 }));
    assert.equal(r.status, 201);
    assert.match(r.headers.get("warning") ?? "", /unknown field \\"spec.bogus\\"/);
    assert.equal(r.body.spec.bogus, undefined);
    assert.equal(r.body.spec.retries, 3);
    const strict = await call("POST", `${TASKS}?fieldValidation=Strict`, task("strict", { bogus: 1 }));
    assert.equal(strict.status, 400);
  });

  it("rejects strategic merge patch on custom resources with 415 and object JSON patches with 400", async () => {
    await call("POST", TASKS, task("smp"));
    assert.equal((await call("PATCH", `${TASKS}/smp`, { spec: {} }, "application/strategic-merge-patch+json")).status, 415);
    assert.equal((await call("PATCH", `${TASKS}/smp`, { spec: {} }, "application/json-patch+json")).status, 400);
    assert.equal((await call("PATCH", `${TASKS}/smp`, [{ op: "test", path: "/spec/image", value: "nope" }], "application/json-patch+json")).status, 422);
  });

  it("removes dependents when their owner is deleted, in the background and the foreground", async () => {
    for (const policy of ["Background", "Foreground"]) {
      const owner = (await call("POST", TASKS, task(`owner-${policy.toLowerCase()}`))).body;
      const ref = { apiVersion: "example.com/v1", kind: "Task", name: owner.metadata.name, uid: owner.metadata.uid, blockOwnerDeletion: true };
      const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `dep-${policy.toLowerCase()}`, ownerReferences: [ref] } };
      assert.equal((await call("POST", "/api/v1/namespaces/default/configmaps", cm)).status, 201);
      const del = await call("DELETE", `${TASKS}/${owner.metadata.name}`, { propagationPolicy: policy });
      assert.equal(del.status, 200);
      await waitFor("dependent gone", async () => (await call("GET", `/api/v1/namespaces/default/configmaps/${cm.metadata.name}`)).status === 404);
      await waitFor("owner gone", async () => (await call("GET", `${TASKS}/${owner.metadata.name}`)).status === 404);
    }
  });

  it("keeps an object with finalizers until the last one is removed", async () => {
    await call("POST", TASKS, { ...task("fin"), metadata: { name: "fin", finalizers: ["x/y"] } });
    const d = await call("DELETE", `${TASKS}/fin`);
    assert.equal(d.body.kind, "Task");
    assert.ok(d.body.metadata.deletionTimestamp);
    assert.equal(d.body.metadata.generation, 2);
    const add = await call("PATCH", `${TASKS}/fin`, { metadata: { finalizers: ["x/y", "x/z"] } }, "application/merge-patch+json");
    assert.equal(add.status, 422);
    const rv = d.body.metadata.resourceVersion;
    await call("PATCH", `${TASKS}/fin`, { metadata: { finalizers: null } }, "application/merge-patch+json");
    assert.equal((await call("GET", `${TASKS}/fin`)).status, 404);
    const res = await fetch(`${api.url}${TASKS}?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dfin&timeoutSeconds=1`);
    const types = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).type);
    assert.deepEqual(types, ["DELETED"]);
  });

  it("replays the exact event sequence from an old resourceVersion and ends watch-lists with a bookmark", async () => {
    const c = (await call("POST", TASKS, task("replay"))).body;
    await call("PATCH", `${TASKS}/replay`, { spec: { image: "a" } }, "application/merge-patch+json");
    await call("DELETE", `${TASKS}/replay`);
    const res = await fetch(`${api.url}${TASKS}?watch=true&resourceVersion=${Number(c.metadata.resourceVersion) - 1}&fieldSelector=metadata.name%3Dreplay&timeoutSeconds=1`);
    const types = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).type);
    assert.deepEqual(types, ["ADDED", "MODIFIED", "DELETED"]);
    const bad = await fetch(`${api.url}${TASKS}?watch=true&sendInitialEvents=true`);
    assert.equal(bad.status, 422);
    const wl = await fetch(`${api.url}${TASKS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1`);
    const lines = (await wl.text()).trim().split("\n").map((l) => JSON.parse(l));
    const last = lines[lines.length - 1];
    assert.equal(last.type, "BOOKMARK");
    assert.equal(last.object.metadata.annotations["k8s.io/initial-events-end"], "true");
  });

  it("serves discovery and OpenAPI for a new CRD with a content hash", async () => {
    const agg = await fetch(`${api.url}/apis`, { headers: { Accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json" } });
    assert.match(agg.headers.get("content-type") ?? "", /as=APIGroupDiscoveryList/);
    const body = (await agg.json()) as J;
    assert.ok(body.items.some((g: J) => g.metadata.name === "example.com"));
    const idx = (await call("GET", "/openapi/v3")).body;
    const url = idx.paths["apis/example.com/v1"].serverRelativeURL as string;
    assert.match(url, /hash=[0-9A-F]{16}/);
    const doc = (await call("GET", url)).body;
    assert.ok(doc.components.schemas["com.example.v1.Task"]);
    // An empty v2 document, not a 404: kubectl falls back to it for kinds missing from v3 and says "no matches for kind".
    const v2 = await call("GET", "/openapi/v2");
    assert.equal(v2.status, 200);
    assert.deepEqual(v2.body.definitions, {});
  });
});
