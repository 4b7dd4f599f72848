/**
 * `helm install`, `helm upgrade` and `helm uninstall` of `charts/celeriac` with the real helm 4 against
 * the in-memory API server, checked with the real kubectl: the objects exist, the CRDs are established
 * and serve Queues and Tasks, an upgrade changes what it should, an uninstall removes the release but
 * keeps the CRDs (and so the users' Queues and Tasks), a namespaced install, and a schema refusal.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";
import { CHART_DIR, HELM, makeHelm, VALUES_DIR, type Helm } from "./chart-helpers.js";

const tools = k8sTools();
const KUBECTL = tools.kubectl134 ?? tools.kubectl132;

describe("when the chart is installed on a cluster", { skip: HELM && KUBECTL ? false : "helm 4 or kubectl not available" }, () => {
  let api: ApiServer;
  let helm: Helm;
  let kubeconfig: string;
  const h = (...args: string[]): Promise<ToolRun> => helm.run("--kubeconfig", kubeconfig, ...args);
  const kubectl = (...args: string[]): Promise<ToolRun> =>
    runTool(KUBECTL as string, ["--kubeconfig", kubeconfig, "--cache-dir", helm.env.KUBECACHEDIR as string, ...args], helm.env);
  const ok = async (r: Promise<ToolRun>): Promise<string> => {
    const x = await r;
    assert.equal(x.code, 0, `${x.stderr}${x.stdout}`);
    return x.stdout;
  };
  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await ok(kubectl(...args, "-o", "json"))) as T;
  const names = async (kind: string, ns?: string): Promise<string[]> =>
    (await json<{ items: Array<{ metadata: { name: string } }> }>("get", kind, ...(ns ? ["-n", ns] : []))).items.map((i) => i.metadata.name).sort();

  before(async () => {
    helm = makeHelm("celeriac-chart-install-");
    kubeconfig = join(helm.dir, "kubeconfig");
    api = await startApiServer({ port: 0, kubeconfigPath: kubeconfig });
  });
  after(async () => {
    await api?.close();
    helm?.close();
  });

  it("installs the operator, its RBAC, the CRDs and a JetStream NATS (nats.deploy)", async () => {
    const out = await ok(h("install", "celeriac", CHART_DIR, "--namespace", "celeriac", "--create-namespace", "-f", join(VALUES_DIR, "nats-deploy.yaml")));
    assert.match(out, /STATUS: deployed/);
    assert.match(out, /kubectl apply -n default -f queue\.yaml/, "NOTES tell the user what to apply next");
    assert.deepEqual(await names("deployments", "celeriac"), ["celeriac"]);
    assert.deepEqual(await names("statefulsets", "celeriac"), ["celeriac-nats"]);
    assert.deepEqual(await names("services", "celeriac"), ["celeriac-metrics", "celeriac-nats", "celeriac-nats-headless"]);
    assert.ok((await names("serviceaccounts", "celeriac")).includes("celeriac"));
    assert.deepEqual(await names("roles", "celeriac"), ["celeriac-leader-election"]);
    const clusterRoles = await names("clusterroles");
    for (const n of ["celeriac", "celeriac-edit", "celeriac-view"]) assert.ok(clusterRoles.includes(n), `ClusterRole ${n}`);
    assert.ok((await names("clusterrolebindings")).includes("celeriac"));
    const d = await json<{ spec: { replicas: number; template: { spec: { containers: Array<{ args: string[] }> } } } }>("get", "deployment", "celeriac", "-n", "celeriac");
    assert.equal(d.spec.replicas, 1);
    assert.deepEqual(d.spec.template.spec.containers[0]?.args, ["operator", "--leader-elect"]);
    for (const crd of ["queues.celeriac.io", "tasks.celeriac.io", "schedules.celeriac.io", "workflows.celeriac.io"]) {
      assert.equal(await ok(kubectl("get", "crd", crd, "-o", "jsonpath={.status.conditions[?(@.type==\"Established\")].status}")), "True", `${crd} established`);
    }
  });

  it("serves the Queue and Task the NOTES suggest", async () => {
    const file = join(helm.dir, "first.yaml");
    writeFileSync(file, [
      "apiVersion: celeriac.io/v1alpha1\nkind: Queue\nmetadata: {name: default}\nspec:\n  worker:\n    image: registry.example.com/my-tasks:1.0.0\n    env: [{name: CELERIAC_TASKS, value: /tasks/dist/tasks.js}]\n",
      "apiVersion: celeriac.io/v1alpha1\nkind: Task\nmetadata: {name: monthly-report}\nspec: {queue: default, task: reports.generate, args: [\"2026-11\"]}\n",
    ].join("---\n"));
    await ok(kubectl("apply", "-n", "default", "-f", file));
    assert.deepEqual(await names("tasks", "default"), ["monthly-report"]);
  });

  it("upgrades to two replicas with a PodDisruptionBudget", async () => {
    assert.match(await ok(h("upgrade", "celeriac", CHART_DIR, "--namespace", "celeriac", "-f", join(VALUES_DIR, "nats-deploy.yaml"), "--set", "replicas=2")), /REVISION: 2/);
    const d = await json<{ spec: { replicas: number } }>("get", "deployment", "celeriac", "-n", "celeriac");
    assert.equal(d.spec.replicas, 2);
    assert.deepEqual(await names("poddisruptionbudgets", "celeriac"), ["celeriac"]);
    assert.match(await ok(h("list", "--namespace", "celeriac")), /celeriac\s+celeriac\s+2\s.*deployed/);
  });

  it("refuses an upgrade with a wrong value type, naming the field, and keeps the release as it was", async () => {
    const r = await h("upgrade", "celeriac", CHART_DIR, "--namespace", "celeriac", "-f", join(VALUES_DIR, "invalid-replicas-type.yaml"));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /at '\/replicas': got string, want integer/);
    assert.match(await ok(h("list", "--namespace", "celeriac")), /celeriac\s+celeriac\s+2\s.*deployed/);
  });

  it("uninstalls the release but keeps the CRDs and the users' Tasks", async () => {
    assert.match(await ok(h("uninstall", "celeriac", "--namespace", "celeriac")), /uninstalled/);
    assert.deepEqual(await names("deployments", "celeriac"), []);
    assert.deepEqual(await names("statefulsets", "celeriac"), []);
    assert.ok(!(await names("clusterroles")).some((n) => n.startsWith("celeriac")));
    assert.ok(!(await names("clusterrolebindings")).includes("celeriac"));
    assert.deepEqual((await names("crd")).filter((n) => n.endsWith(".celeriac.io")), ["queues.celeriac.io", "schedules.celeriac.io", "tasks.celeriac.io", "workflows.celeriac.io"]);
    assert.deepEqual(await names("tasks", "default"), ["monthly-report"]);
  });

  it("installs in namespaced mode with Roles in the watched namespaces only", async () => {
    for (const ns of ["team-a", "team-b"]) await ok(kubectl("create", "namespace", ns));
    await ok(h("install", "celeriac", CHART_DIR, "--namespace", "celeriac", "-f", join(VALUES_DIR, "namespaced.yaml")));
    assert.deepEqual(await names("roles", "team-a"), ["celeriac"]);
    assert.deepEqual(await names("rolebindings", "team-b"), ["celeriac"]);
    assert.ok(!(await names("clusterroles")).some((n) => n.startsWith("celeriac")));
    const env = await ok(kubectl("get", "deployment", "celeriac", "-n", "celeriac", "-o", "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"CELERIAC_WATCH_NAMESPACES\")].value}"));
    assert.equal(env, "team-a,team-b");
    await ok(h("uninstall", "celeriac", "--namespace", "celeriac"));
    assert.deepEqual(await names("roles", "team-a"), []);
  });
});
