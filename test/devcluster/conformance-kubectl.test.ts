/**
 * Conformance: the kubectl scenarios of the captured traces, on kubectl 1.32 and 1.34, against the in-memory
 * API server. Each test gets its own discovery/HTTP cache directory.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { K8S_FIXTURES, k8sTools, runTool, waitFor, type ToolRun } from "../helpers/k8s-tools.js";

const tools = k8sTools();
const M = join(K8S_FIXTURES, "manifests");

for (const [label, bin] of [["1.32", tools.kubectl132], ["1.34", tools.kubectl134]] as const) {
  describe(`when kubectl ${label} drives the server`, { skip: bin ? false : `kubectl ${label} not available` }, () => {
    let api: ApiServer;
    let dir: string;
    let cache: string;
    const k = (...args: string[]): Promise<ToolRun> => runTool(bin as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", cache, ...args], {}, 30_000);
    const ok = async (...args: string[]): Promise<string> => {
      const r = await k(...args);
      assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed: ${r.stderr}`);
      return r.stdout;
    };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "celeriac-kubectl-"));
      api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    });
    after(async () => {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    });
    let n = 0;
    const freshCache = (): void => {
      cache = join(dir, `cache-${n++}`);
    };

    it("applies the CRD and waits for Established", async () => {
      freshCache();
      assert.match(await ok("apply", "-f", join(M, "crd.yaml")), /tasks.example.com created/);
      assert.match(await ok("wait", "--for=condition=Established", "crd/tasks.example.com", "--timeout=10s"), /condition met/);
      assert.match(await ok("get", "crd"), /tasks\.example\.com\s+\d{4}-\d\d-\d\dT/);
    });

    it("creates, configures and prints a custom resource with its printer columns", async () => {
      freshCache();
      assert.match(await ok("apply", "-f", join(M, "task.yaml")), /task.example.com\/x created/);
      assert.match(await ok("apply", "-f", join(M, "task2.yaml")), /configured/);
      const out = await ok("get", "tasks");
      assert.match(out, /NAME\s+QUEUE\s+PHASE\s+RETRIES\s+SUCCEEDED\s+AGE/);
      assert.match(out, /x\s+fast\s+5\s+/);
      assert.match(await ok("get", "tk", "-o", "wide"), /busybox:1\.37/);
      const y = await ok("get", "task", "x", "-o", "yaml");
      assert.match(y, /tier: two/);
      assert.doesNotMatch(y, /args:/, "a field removed from the manifest is removed");
      assert.doesNotMatch(y, /managedFields/);
    });

    it("rejects unknown fields with fieldValidation=Strict", async () => {
      freshCache();
      const r = await k("apply", "-f", join(M, "task3.yaml"));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /BadRequest.*unknown field "spec.bogus"/);
    });

    it("patches status, waits for a condition and a jsonpath, and times out cleanly", async () => {
      freshCache();
      const patch = JSON.stringify({ status: { phase: "Succeeded", conditions: [{ type: "Succeeded", status: "True" }] }, spec: { image: "ignored" } });
      await ok("patch", "task", "x", "--subresource=status", "--type=merge", "-p", patch);
      assert.match(await ok("wait", "--for=condition=Succeeded", "task/x", "--timeout=5s"), /condition met/);
      assert.match(await ok("wait", "--for=jsonpath={.status.phase}=Succeeded", "task/x", "--timeout=5s"), /condition met/);
      assert.match(await ok("get", "task", "x"), /x\s+fast\s+Succeeded\s+5\s+True/);
      assert.match(await ok("get", "task", "x", "-o", "jsonpath={.spec.image}"), /busybox:1\.37/);
      const r = await k("wait", "--for=condition=Failed", "task/x", "--timeout=1s");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /timed out waiting for the condition/);
    });

    it("streams changes to get -w", async () => {
      freshCache();
      const child = spawn(bin as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", cache, "get", "tasks", "-w"]);
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      try {
        await waitFor("initial row", () => /x\s+fast/.test(out), 10_000);
        await ok("label", "task", "x", "color=blue");
        await ok("apply", "-f", join(M, "task.yaml"));
        await waitFor("second row", () => (out.match(/^x\s/gm) ?? []).length >= 2, 10_000);
      } finally {
        child.kill("SIGTERM");
      }
    });

    it("labels, server-side applies, dry-runs and diffs", async () => {
      freshCache();
      assert.match(await ok("get", "tasks", "-l", "color=blue"), /^x\s/m);
      const ssa = await k("apply", "--server-side", "-f", join(M, "task2.yaml"));
      assert.match(ssa.stderr, /conflict with "kubectl-client-side-apply"/, "fields owned by client-side apply conflict");
      assert.match(await ok("apply", "--server-side", "--force-conflicts", "-f", join(M, "task2.yaml")), /serverside-applied/);
      const dry = await ok("apply", "--dry-run=server", "-f", join(M, "task.yaml"));
      assert.match(dry, /server dry run/);
      assert.match(await ok("get", "task", "x", "-o", "jsonpath={.spec.image}"), /busybox:1\.37/);
      const diff = await k("diff", "-f", join(M, "task.yaml"));
      assert.equal(diff.code, 1, diff.stderr);
      assert.match(diff.stdout, /busybox:1\.36/);
      const bad = await k("get", "tasks", "--field-selector", "status.phase=Running");
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /not a known field selector/);
    });

    it("replaces, creates and reports duplicates", async () => {
      freshCache();
      writeFileSync(join(dir, "t4.yaml"), "apiVersion: example.com/v1\nkind: Task\nmetadata:\n  name: t4\nspec:\n  image: alpine\n");
      assert.match(await ok("create", "-f", join(dir, "t4.yaml")), /created/);
      const dup = await k("create", "-f", join(dir, "t4.yaml"));
      assert.notEqual(dup.code, 0);
      assert.match(dup.stderr, /AlreadyExists.*"t4" already exists/);
      writeFileSync(join(dir, "t4.yaml"), "apiVersion: example.com/v1\nkind: Task\nmetadata:\n  name: t4\nspec:\n  image: alpine:3\n");
      assert.match(await ok("replace", "-f", join(dir, "t4.yaml")), /replaced/);
      assert.match(await ok("get", "task", "t4", "-o", "jsonpath={.spec.image}"), /alpine:3/);
    });

    it("scales a Deployment and a custom resource, and follows a rollout", async () => {
      freshCache();
      await ok("apply", "-f", join(M, "deploy.yaml"));
      await ok("apply", "-f", join(M, "deploy2.yaml"));
      assert.match(await ok("scale", "deployment", "worker", "--replicas=3"), /scaled/);
      assert.match(await ok("rollout", "status", "deployment/worker", "--timeout=10s"), /successfully rolled out/);
      assert.match(await ok("get", "deploy"), /worker\s+3\/3\s+3\s+3\s/);
      assert.match(await ok("get", "deploy", "-o", "wide"), /busybox:1\.36\s+app=worker/);
      assert.match(await ok("scale", "task", "x", "--replicas=4"), /scaled/);
      assert.match(await ok("get", "task", "x", "-o", "jsonpath={.spec.parallelism}"), /^4$/);
    });

    it("deletes with and without finalizers", async () => {
      freshCache();
      assert.match(await ok("delete", "task", "t4"), /deleted/);
      await ok("patch", "task", "x", "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}');
      const del = spawn(bin as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", cache, "delete", "task", "x", "--timeout=20s"]);
      const done = new Promise<number>((r) => del.on("close", (c) => r(c ?? -1)));
      await waitFor("deletionTimestamp", async () => (await k("get", "task", "x", "-o", "jsonpath={.metadata.deletionTimestamp}")).stdout.length > 0, 10_000);
      await ok("patch", "task", "x", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]');
      assert.equal(await done, 0);
      const gone = await k("get", "task", "x");
      assert.match(gone.stderr, /NotFound/);
    });

    it("creates typed objects with protobuf bodies", async () => {
      freshCache();
      assert.match(await ok("create", "namespace", `ns-${label.replace(".", "")}`), /created/);
      assert.match(await ok("create", "secret", "generic", "s1", "--from-literal=a=b"), /created/);
      assert.match(await ok("create", "configmap", "c1", "--from-literal=x=y"), /created/);
      assert.match(await ok("get", "secret", "s1", "-o", "jsonpath={.data.a}"), /^Yg==$/);
      assert.match(await ok("get", "ns"), /default\s+Active/);
    });

    it("explains custom resources and lists API resources", async () => {
      freshCache();
      assert.match(await ok("explain", "task.spec.retries"), /retries\s+<integer>/);
      const res = await ok("api-resources");
      assert.match(res, /tasks\s+tk\s+example\.com\/v1\s+true\s+Task/);
      assert.match(res, /deployments\s+deploy\s+apps\/v1\s+true\s+Deployment/);
    });
  });
}
