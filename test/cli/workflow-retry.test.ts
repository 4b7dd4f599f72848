/**
 * `celeriac workflow retry` as a user runs it (the built bin) against the in-memory API server: it sets
 * the celeriac.io/retry annotation to the current RFC 3339 time on a Failed or Cancelled Workflow, leaves
 * spec and generation alone, and refuses — exit 1, nothing written — a Workflow that is running, has no
 * status, succeeded, or does not exist (listing those that do).
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ANNOTATIONS } from "../../api/constants.js";
import { ALL_CRDS } from "../../api/crd.js";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are arbitrary JSON
type J = any;

const WORKFLOWS = (ns: string) => `/apis/celeriac.io/v1alpha1/namespaces/${ns}/workflows`;
const stepStatus = (name: string, phase: string) => ({ name, phase, tasks: { total: 1, succeeded: phase === "Succeeded" ? 1 : 0, failed: phase === "Failed" ? 1 : 0, running: 0 } });
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe("when celeriac workflow retry is run", () => {
  let api: ApiServer;
  let dir: string;
  let kubeconfig: string;
  const call = async (method: string, path: string, body?: unknown, ct = "application/json"): Promise<{ status: number; body: J }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": ct }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const celeriac = (...args: string[]): Promise<ToolRun> => runTool(process.execPath, [join(REPO_ROOT, "bin", "celeriac.js"), ...args], {}, 30_000);
  const retry = (name: string, ...flags: string[]): Promise<ToolRun> => celeriac("workflow", "retry", name, "--kubeconfig", kubeconfig, ...flags);
  /** Creates a Workflow a → b → c and, unless `phase` is undefined, writes its status through /status. */
  const workflow = async (name: string, phase?: string, ns = "default", steps: Array<[string, string]> = []): Promise<J> => {
    const spec = { queue: "default", steps: [{ name: "a", task: "demo.a" }, { name: "b", task: "demo.b", dependsOn: ["a"] }, { name: "c", task: "demo.c", dependsOn: ["b"] }] };
    const created = await call("POST", WORKFLOWS(ns), { apiVersion: "celeriac.io/v1alpha1", kind: "Workflow", metadata: { name }, spec });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    if (phase === undefined) return created.body;
    const status = { phase, message: phase === "Failed" ? 'step "b" failed: ValueError: boom' : undefined, steps: steps.map(([s, p]) => stepStatus(s, p)) };
    const r = await call("PATCH", `${WORKFLOWS(ns)}/${name}/status`, { status }, "application/merge-patch+json");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const get = async (name: string, ns = "default"): Promise<J> => (await call("GET", `${WORKFLOWS(ns)}/${name}`)).body;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-wf-retry-"));
    kubeconfig = join(dir, "kubeconfig");
    api = await startApiServer({ kubeconfigPath: kubeconfig });
    for (const { crd } of ALL_CRDS) assert.equal((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status, 201);
    for (const ns of ["team-a", "empty"]) assert.equal((await call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } })).status, 201);
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("on a Failed Workflow", () => {
    let before_: J;
    let run: ToolRun;
    let t0: number;
    let t1: number;
    before(async () => {
      before_ = await workflow("nightly", "Failed", "default", [["a", "Succeeded"], ["b", "Failed"], ["c", "Cancelled"]]);
      t0 = Date.now();
      run = await retry("nightly");
      t1 = Date.now();
    });
    it("sets celeriac.io/retry to the current RFC 3339 time and says which steps run again", async () => {
      assert.equal(run.code, 0, run.stderr);
      const value = (await get("nightly")).metadata.annotations?.[ANNOTATIONS.retry];
      assert.match(value, RFC3339);
      const at = Date.parse(value);
      assert.ok(at >= t0 - 1 && at <= t1 + 1, `${value} not between the run's start and end`);
      assert.equal(run.stdout.trim(), `workflow.celeriac.io/nightly retry requested (celeriac.io/retry=${value}; was Failed); steps to run again: b, c`);
    });
    it("leaves the spec, the generation and the status alone", async () => {
      const after_ = await get("nightly");
      assert.deepEqual(after_.spec, before_.spec);
      assert.equal(after_.metadata.generation, before_.metadata.generation);
      assert.deepEqual(after_.status, before_.status);
    });
    it("writes a new value when run again (the operator acts on every new value)", async () => {
      const first = (await get("nightly")).metadata.annotations[ANNOTATIONS.retry];
      const again = await retry("nightly", "-n", "default");
      assert.equal(again.code, 0, again.stderr);
      const second = (await get("nightly")).metadata.annotations[ANNOTATIONS.retry];
      assert.ok(Date.parse(second) > Date.parse(first), `${second} not after ${first}`);
    });
  });

  it("retries a Cancelled Workflow too", async () => {
    await workflow("revoked", "Cancelled", "default", [["a", "Cancelled"]]);
    const r = await retry("revoked");
    assert.equal(r.code, 0, r.stderr);
    assert.match((await get("revoked")).metadata.annotations[ANNOTATIONS.retry], RFC3339);
  });

  describe("when the Workflow cannot be retried", () => {
    const refusals: Array<[string, string | undefined, RegExp]> = [
      ["running", "Running", /^workflow "running" in namespace "default" is Running: only a Failed or Cancelled Workflow can be retried; wait until it ends \(kubectl wait --for=condition=Failed workflow\/running\)$/],
      ["fresh", undefined, /^workflow "fresh" in namespace "default" has no status yet \(the operator has not started it\): only a Failed or Cancelled Workflow can be retried/],
      ["done", "Succeeded", /^workflow "done" in namespace "default" is Succeeded: only a Failed or Cancelled Workflow can be retried; there is nothing to retry$/],
    ];
    for (const [name, phase, message] of refusals) {
      it(`refuses a Workflow ${phase ? `that is ${phase}` : "with no status"}, saying its phase, and writes nothing`, async () => {
        await workflow(name, phase);
        const r = await retry(name);
        assert.equal(r.code, 1);
        assert.match(r.stderr.trim(), message);
        assert.equal((await get(name)).metadata.annotations?.[ANNOTATIONS.retry], undefined);
      });
    }
    it("refuses a Workflow the operator failed for an invalid spec (a retry runs the same spec), and writes nothing", async () => {
      await workflow("cyclic", "Failed");
      const cond = { type: "Failed", status: "True", reason: "InvalidSpec", message: "steps form a dependency cycle a → c → b → a", lastTransitionTime: "2026-12-03T10:00:00Z" };
      assert.equal((await call("PATCH", `${WORKFLOWS("default")}/cyclic/status`, { status: { conditions: [cond] } }, "application/merge-patch+json")).status, 200);
      const r = await retry("cyclic");
      assert.equal(r.code, 1);
      assert.match(r.stderr.trim(), /^workflow "cyclic" in namespace "default" failed because its spec is invalid \(steps form a dependency cycle a → c → b → a\): a retry runs the same spec, which cannot change; delete it and apply a fixed one/);
      assert.equal((await get("cyclic")).metadata.annotations?.[ANNOTATIONS.retry], undefined);
    });
    it("refuses a name that does not exist, listing the Workflows of the namespace with their phases", async () => {
      const r = await retry("nightlly");
      assert.equal(r.code, 1);
      assert.match(r.stderr.trim(), /^workflow "nightlly" not found in namespace "default": Workflows in namespace "default": cyclic \(Failed\), done \(Succeeded\), fresh \(no status\), nightly \(Failed\), revoked \(Cancelled\), running \(Running\)$/);
    });
    it("says so when the namespace has no Workflows", async () => {
      const r = await retry("nightly", "--namespace", "empty");
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), 'workflow "nightly" not found in namespace "empty": there are no Workflows in namespace "empty"');
    });
  });

  const kubectl = k8sTools().kubectl134 ?? k8sTools().kubectl132 ?? "/usr/bin/kubectl";
  it("uses the kubeconfig context's namespace when -n is not given (set with real kubectl)", async () => {
    await workflow("etl", "Failed", "team-a", [["a", "Failed"]]);
    const scoped = join(dir, "kubeconfig-team-a");
    copyFileSync(kubeconfig, scoped);
    const set = await runTool(kubectl, ["--kubeconfig", scoped, "config", "set-context", "--current", "--namespace=team-a"]);
    assert.equal(set.code, 0, set.stderr);
    const r = await celeriac("workflow", "retry", "etl", "--kubeconfig", scoped);
    assert.equal(r.code, 0, r.stderr);
    assert.match((await get("etl", "team-a")).metadata.annotations[ANNOTATIONS.retry], RFC3339);
    const seen = await runTool(kubectl, ["--kubeconfig", scoped, "get", "workflow", "etl", "-o", `jsonpath={.metadata.annotations.celeriac\\.io/retry}`]);
    assert.match(seen.stdout, RFC3339);
  });
});
