/**
 * Admission of Celeriac objects by the in-memory API server, as strict as kube-apiserver: DNS-1123 names,
 * the CRDs' CEL rules with their messages, Task spec immutability, nulls kept in args/kwargs/result,
 * and kubectl showing those messages.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ALL_CRDS } from "../../api/crd.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool } from "../helpers/k8s-tools.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are arbitrary JSON
type J = any;

const TASKS = "/apis/celeriac.io/v1alpha1/namespaces/default/tasks";
const QUEUES = "/apis/celeriac.io/v1alpha1/namespaces/default/queues";

describe("when Celeriac objects are written to the in-memory API server", () => {
  let api: ApiServer;
  let dir: string;
  const call = async (method: string, path: string, body?: unknown, ct = "application/json"): Promise<{ status: number; body: J }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": ct }, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const task = (name: string, spec: J = {}): J => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name }, spec: { queue: "default", task: "reports.generate", ...spec } });
  const queue = (name: string, spec: J = {}): J => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name }, spec });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-admission-"));
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    for (const { crd } of ALL_CRDS) assert.equal((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status, 201);
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("when a name is not a DNS-1123 subdomain", () => {
    for (const name of ["Nightly", "my_task", "a".repeat(254)]) {
      it(`refuses ${name.length > 20 ? "a 254-character name" : `"${name}"`} with kube-apiserver's message`, async () => {
        const r = await call("POST", TASKS, task(name));
        assert.equal(r.status, 422);
        assert.equal(r.body.details.causes[0].field, "metadata.name");
        assert.match(r.body.message, new RegExp(`^Task\\.celeriac\\.io "${name}" is invalid: `));
        assert.ok(r.body.message.includes(name.length > 253 ? "must be no more than 253 characters" : `metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`), r.body.message);
      });
    }
  });

  describe("when a CEL rule of the CRD fails", () => {
    it("refuses countdownSeconds with eta with the rule's message", async () => {
      const r = await call("POST", TASKS, task("both", { countdownSeconds: 5, eta: "2026-11-23T10:00:00Z" }));
      assert.equal(r.status, 422);
      assert.equal(r.body.message, 'Task.celeriac.io "both" is invalid: spec: Invalid value: "object": countdownSeconds and eta are mutually exclusive');
    });
    it("refuses a countdown longer than the expiry", async () => {
      const r = await call("POST", TASKS, task("late", { countdownSeconds: 600, expiresSeconds: 60 }));
      assert.equal(r.status, 422);
      assert.match(r.body.message, /spec: Invalid value: "object": countdownSeconds must not exceed expiresSeconds/);
    });
    it("refuses minReplicas above maxReplicas", async () => {
      const r = await call("POST", QUEUES, queue("scaled", { autoscaling: { minReplicas: 5, maxReplicas: 2 } }));
      assert.equal(r.status, 422);
      assert.equal(r.body.message, 'Queue.celeriac.io "scaled" is invalid: spec.autoscaling: Invalid value: "object": minReplicas must not exceed maxReplicas');
    });
    it("refuses a Queue name that is not a DNS-1123 label, by the root rule on self.metadata.name", async () => {
      const r = await call("POST", QUEUES, queue("orders.eu"));
      assert.equal(r.status, 422);
      assert.match(r.body.message, /^Queue\.celeriac\.io "orders\.eu" is invalid: <nil>: Invalid value: "object": Queue name must be a DNS-1123 label/);
      assert.equal((await call("POST", QUEUES, queue("orders-eu"))).status, 201);
    });
  });

  it("refuses a CRD whose CEL rule does not compile", async () => {
    const crd = JSON.parse(JSON.stringify(ALL_CRDS[0]!.crd));
    crd.metadata.name = "widgets.example.org";
    crd.spec.group = "example.org";
    crd.spec.names = { kind: "Widget", plural: "widgets", singular: "widget", listKind: "WidgetList" };
    crd.spec.versions[0].schema.openAPIV3Schema["x-kubernetes-validations"] = [{ rule: "self.spec.(", message: "x" }];
    const r = await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    assert.equal(r.status, 422);
    assert.match(r.body.message, /openAPIV3Schema\.x-kubernetes-validations\[0\]\.rule: Invalid value: "self\.spec\.\(": compilation failed/);
  });

  describe("when a Task's spec is changed after creation", () => {
    it("refuses the change with a message saying the spec is immutable, and still takes status and label writes", async () => {
      assert.equal((await call("POST", TASKS, task("frozen", { args: [1] }))).status, 201);
      const r = await call("PATCH", `${TASKS}/frozen`, { spec: { args: [2] } }, "application/merge-patch+json");
      assert.equal(r.status, 422);
      assert.equal(r.body.message, 'Task.celeriac.io "frozen" is invalid: spec: Invalid value: "object": spec is immutable after creation: delete and recreate the Task');
      assert.equal((await call("PATCH", `${TASKS}/frozen/status`, { status: { phase: "Succeeded" } }, "application/merge-patch+json")).status, 200);
      assert.equal((await call("PATCH", `${TASKS}/frozen`, { metadata: { labels: { seen: "yes" } } }, "application/merge-patch+json")).status, 200);
    });
    it("lets a Schedule's task template change (only Task.spec is immutable)", async () => {
      const path = "/apis/celeriac.io/v1alpha1/namespaces/default/schedules";
      const s = { apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: { name: "nightly" }, spec: { schedule: "@daily", taskTemplate: { spec: { queue: "default", task: "a.b" } } } };
      assert.equal((await call("POST", path, s)).status, 201);
      const r = await call("PATCH", `${path}/nightly`, { spec: { taskTemplate: { spec: { task: "a.c" } } } }, "application/merge-patch+json");
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });
  });

  describe("when args, kwargs or result hold nulls", () => {
    it("keeps them on create and on server-side apply", async () => {
      const spec = { args: [null, { callback: null }], kwargs: { callback: null, nested: { x: null } } };
      const created = await call("POST", TASKS, task("nulls", spec));
      assert.equal(created.status, 201);
      assert.deepEqual({ args: created.body.spec.args, kwargs: created.body.spec.kwargs }, spec);
      const applied = await call("PATCH", `${TASKS}/nulls-ssa?fieldManager=test`, JSON.stringify(task("nulls-ssa", spec)), "application/apply-patch+yaml");
      assert.equal(applied.status, 201);
      assert.deepEqual({ args: applied.body.spec.args, kwargs: applied.body.spec.kwargs }, spec);
    });
    it("keeps a null status.result", async () => {
      const got = (await call("GET", `${TASKS}/nulls`)).body;
      const r = await call("PUT", `${TASKS}/nulls/status`, { ...got, status: { phase: "Succeeded", result: null } });
      assert.equal(r.status, 200);
      assert.ok("result" in r.body.status && r.body.status.result === null, JSON.stringify(r.body.status));
    });
  });

  const tools = k8sTools();
  for (const [label, kubectl] of [["1.32", tools.kubectl132], ["1.34", tools.kubectl134]] as const) {
    describe(`when kubectl ${label} applies an invalid manifest`, { skip: kubectl ? false : `kubectl ${label} not available` }, () => {
      const apply = async (name: string, yaml: string) => {
        const file = join(dir, `${name}.yaml`);
        writeFileSync(file, yaml);
        return runTool(kubectl as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", join(dir, `cache-${label}`), "apply", "-f", file], {}, 30_000);
      };
      it("prints the CEL rule's message as kube-apiserver's Invalid error", async () => {
        const r = await apply("both", "apiVersion: celeriac.io/v1alpha1\nkind: Task\nmetadata: {name: both-kubectl}\nspec: {queue: default, task: a.b, countdownSeconds: 5, eta: '2026-11-23T10:00:00Z'}\n");
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.includes('spec: Invalid value: "object": countdownSeconds and eta are mutually exclusive'), r.stderr);
      });
      it("says spec.args must be an array when it is an object", async () => {
        const r = await apply("args", "apiVersion: celeriac.io/v1alpha1\nkind: Task\nmetadata: {name: args-object}\nspec: {queue: default, task: a.b, args: {image: x}}\n");
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.includes('spec.args: Invalid value: "object": spec.args in body must be of type array: "object"'), r.stderr);
        assert.ok(!r.stderr.includes("unknown field"), r.stderr);
      });
      it("prints kubectl's usual no matches for kind for an unknown kind", async () => {
        const r = await apply("tusk", "apiVersion: celeriac.io/v1alpha1\nkind: Tusk\nmetadata: {name: t}\nspec: {queue: default}\n");
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.includes('no matches for kind "Tusk" in version "celeriac.io/v1alpha1"'), r.stderr);
        assert.ok(!r.stderr.includes("failed to download openapi"), r.stderr);
      });
    });
  }
});
