/**
 * List paging of the in-memory API server (`limit`/`continue`) as kube-apiserver pages lists: pages in
 * key order, an opaque continue token, every page at the first page's resourceVersion (a consistent
 * snapshot even while objects change), remainingItemCount without selectors, 400 for a malformed
 * token or a token with a resourceVersion, 410 Expired once the token's resourceVersion is compacted;
 * and the clients that page (kubectl's `--chunk-size`, the operator's `listObjects`) see every object.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { COMPACT_PATH } from "../../devcluster/server/http.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { listObjects } from "../../kube/k8s-client.js";
import { loadKubeConfig } from "../../kube/kubeconfig.js";
import { K8S_FIXTURES, k8sTools, runTool } from "../helpers/k8s-tools.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are arbitrary JSON
type J = any;

const TASKS = "/apis/example.com/v1/namespaces/default/tasks";

describe("when a client lists with limit and continue", () => {
  let api: ApiServer;
  let dir: string;
  const call = async (method: string, path: string, body?: unknown, ct = "application/json"): Promise<{ status: number; body: J }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": ct }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const task = (name: string, labels: Record<string, string> = {}): J => ({ apiVersion: "example.com/v1", kind: "Task", metadata: { name, labels }, spec: { image: "busybox" } });
  const names = (list: J): string[] => list.items.map((i: J) => i.metadata.name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-paging-"));
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    const crd = parse(readFileSync(join(K8S_FIXTURES, "manifests", "crd.yaml"), "utf8"));
    assert.equal((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status, 201);
    for (const n of ["p1", "p2", "p3", "p4", "p5"]) assert.equal((await call("POST", TASKS, task(n, { odd: String(Number(n[1]) % 2 === 1) }))).status, 201);
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("pages in key order with an opaque token and remainingItemCount, each page at the first page's resourceVersion", async () => {
    const p1 = (await call("GET", `${TASKS}?limit=2`)).body;
    assert.deepEqual(names(p1), ["p1", "p2"]);
    assert.equal(typeof p1.metadata.continue, "string");
    assert.equal(p1.metadata.remainingItemCount, 3);
    const p2 = (await call("GET", `${TASKS}?limit=2&continue=${encodeURIComponent(p1.metadata.continue)}`)).body;
    assert.deepEqual(names(p2), ["p3", "p4"]);
    assert.equal(p2.metadata.remainingItemCount, 1);
    const p3 = (await call("GET", `${TASKS}?limit=2&continue=${encodeURIComponent(p2.metadata.continue)}`)).body;
    assert.deepEqual(names(p3), ["p5"]);
    assert.equal(p3.metadata.continue, undefined, "no token on the last page");
    assert.equal(p3.metadata.remainingItemCount, undefined);
    assert.equal(p2.metadata.resourceVersion, p1.metadata.resourceVersion);
    assert.equal(p3.metadata.resourceVersion, p1.metadata.resourceVersion);
    const whole = (await call("GET", TASKS)).body;
    assert.equal(whole.metadata.continue, undefined, "no limit, no paging");
    assert.deepEqual(names(whole), ["p1", "p2", "p3", "p4", "p5"]);
  });

  it("shows the snapshot of the first page while objects are deleted, added and changed", async () => {
    const p1 = (await call("GET", `${TASKS}?limit=2`)).body;
    assert.equal((await call("DELETE", `${TASKS}/p4`)).status, 200);
    assert.equal((await call("POST", TASKS, task("p35"))).status, 201);
    assert.equal((await call("PATCH", `${TASKS}/p3`, { metadata: { labels: { changed: "yes" } } }, "application/merge-patch+json")).status, 200);
    const rest = (await call("GET", `${TASKS}?limit=10&continue=${encodeURIComponent(p1.metadata.continue)}`)).body;
    assert.deepEqual(names(rest), ["p3", "p4", "p5"], "p4 still there, p35 not yet");
    assert.equal(rest.items[0].metadata.labels.changed, undefined, "p3 as it was");
    assert.equal(rest.metadata.resourceVersion, p1.metadata.resourceVersion);
    const now = (await call("GET", TASKS)).body;
    assert.deepEqual(names(now), ["p1", "p2", "p3", "p35", "p5"]);
    assert.equal((await call("DELETE", `${TASKS}/p35`)).status, 200);
    assert.equal((await call("POST", TASKS, task("p4", { odd: "false" }))).status, 201);
  });

  it("counts only matching items against the limit with a selector, and gives no remainingItemCount", async () => {
    const p1 = (await call("GET", `${TASKS}?limit=2&labelSelector=odd%3Dtrue`)).body;
    assert.deepEqual(names(p1), ["p1", "p3"]);
    assert.equal(p1.metadata.remainingItemCount, undefined);
    const p2 = (await call("GET", `${TASKS}?limit=2&labelSelector=odd%3Dtrue&continue=${encodeURIComponent(p1.metadata.continue)}`)).body;
    assert.deepEqual(names(p2), ["p5"]);
  });

  it("answers 400 to a malformed token, a token with a resourceVersion or a malformed limit", async () => {
    const bad = await call("GET", `${TASKS}?limit=2&continue=not-a-token`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /^invalid continue token: continue key is not valid/);
    const p1 = (await call("GET", `${TASKS}?limit=2`)).body;
    const withRv = await call("GET", `${TASKS}?limit=2&resourceVersion=${p1.metadata.resourceVersion}&continue=${encodeURIComponent(p1.metadata.continue)}`);
    assert.equal(withRv.status, 400);
    assert.equal(withRv.body.message, "specifying resource version is not allowed when using continue");
    assert.equal((await call("GET", `${TASKS}?limit=two`)).status, 400);
  });

  it("answers 410 Expired once the token's resourceVersion is compacted away", async () => {
    const p1 = (await call("GET", `${TASKS}?limit=2`)).body;
    assert.equal((await call("POST", TASKS, task("p6"))).status, 201);
    assert.equal((await call("POST", COMPACT_PATH)).status, 200);
    const gone = await call("GET", `${TASKS}?limit=2&continue=${encodeURIComponent(p1.metadata.continue)}`);
    assert.equal(gone.status, 410);
    assert.equal(gone.body.reason, "Expired");
    assert.match(gone.body.message, /continue parameter is too old/);
  });

  it("gives the operator's listObjects every object over pages, and again in full after an expired token", async () => {
    const kc = loadKubeConfig({ kubeconfig: join(dir, "kubeconfig"), env: {} });
    const type = { group: "example.com", version: "v1", plural: "tasks", kind: "Task", namespaced: true };
    const all = await listObjects(kc, type, { namespace: "default", pageSize: 2 });
    assert.deepEqual(all.items.map((i) => i.metadata?.name), ["p1", "p2", "p3", "p4", "p5", "p6"]);
    const stripped = await listObjects(kc, type, { namespace: "default", pageSize: 4, transform: (o) => ({ ...o, metadata: { ...o.metadata, managedFields: undefined } }) });
    assert.ok(stripped.items.every((i) => i.metadata?.managedFields === undefined));
  });

  const kubectl = k8sTools().kubectl132 ?? k8sTools().kubectl134;
  it("lets kubectl get every object in chunks", { skip: kubectl ? false : "kubectl not available" }, async () => {
    const r = await runTool(kubectl as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", join(dir, "cache"), "get", "tasks.example.com", "--chunk-size=2", "-o", "name"], {}, 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["p1", "p2", "p3", "p4", "p5", "p6"].map((n) => `task.example.com/${n}`));
  });
});
