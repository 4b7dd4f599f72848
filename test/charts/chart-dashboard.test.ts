/**
 * The chart's `dashboard.*` values, rendered with the real helm 4: nothing by default; with
 * `dashboard.enabled` a Deployment of the operator image running `celeriac dashboard` (bound to
 * 127.0.0.1, restricted pod security), its own ServiceAccount, and a Role in the shown namespace with
 * get/list/watch on exactly Queues, Tasks, Schedules, Workflows, Pods and Events (no Secrets, no
 * writes) bound to it; NATS credentials reused from the operator's or the dashboard's own; the
 * action token from a Secret; refusals of unsafe or unworkable combinations. Then the rendered
 * container's args and env run the built `celeriac` against a real nats-server and the in-memory API
 * server, and its Kubernetes route answers.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Deployment, V1EnvVar } from "@kubernetes/client-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { API_VERSION } from "../../api/constants.js";
import { queueNames } from "../../api/naming.js";
import { CELERIAC_TYPES } from "../../api/objects.js";
import { createObject, patchStatus } from "../../kube/k8s-client.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { freePort, startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { startCluster, type TestCluster } from "../operator/runtime/cluster.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool } from "../helpers/k8s-tools.js";
import { assertRestricted, CHART_DIR, HELM, makeHelm, type Helm, type K8sObject } from "./chart-helpers.js";

const skip = HELM ? false : "helm 4 not available";
const RELEASE_NS = "celeriac";
const NAME = "celeriac-dashboard";
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

const dashboardObjects = (objs: readonly K8sObject[]) => objs.filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "dashboard");
const deploymentOf = (objs: readonly K8sObject[]): V1Deployment => {
  const d = objs.find((o) => o.kind === "Deployment" && o.metadata.name === NAME);
  assert.ok(d, `Deployment ${NAME} rendered`);
  return d as unknown as V1Deployment;
};
const envOf = (d: V1Deployment): Map<string, V1EnvVar> => new Map((d.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e]));

describe("when the chart renders the dashboard", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm("celeriac-chart-dashboard-");
  });
  after(() => helm?.close());

  it("renders no dashboard object by default", async () => {
    const objs = await helm.render();
    assert.deepEqual(dashboardObjects(objs).map((o) => `${o.kind}/${o.metadata.name}`), []);
  });

  it("with dashboard.enabled: a Deployment of the operator image, its ServiceAccount, a read-only Role and its RoleBinding; lint passes", async () => {
    const objs = await helm.render([], ["dashboard.enabled=true"]);
    assert.deepEqual(dashboardObjects(objs).map((o) => `${o.kind}/${o.metadata.name}`).sort(), ["Deployment", "Role", "RoleBinding", "ServiceAccount"].map((k) => `${k}/${NAME}`).sort());
    const d = deploymentOf(objs);
    const c = d.spec!.template.spec!.containers[0]!;
    const operator = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "celeriac") as unknown as V1Deployment;
    assert.equal(c.image, operator.spec!.template.spec!.containers[0]!.image, "same image as the operator");
    assert.deepEqual(c.args, ["dashboard", "--address", "127.0.0.1", "--port", "8090"]);
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8090, protocol: "TCP" }]);
    assert.equal(c.readinessProbe, undefined, "no HTTP probe on a loopback-bound dashboard (the kubelet probes the pod IP)");
    assert.equal(d.spec!.template.spec!.serviceAccountName, NAME);
    assertRestricted(d.spec!.template.spec, `Deployment ${NAME}`);
    const env = envOf(d);
    assert.equal(env.get("CELERIAC_NAMESPACE")?.value, RELEASE_NS);
    assert.equal(env.get("CELERIAC_NATS_URL")?.value, operator.spec!.template.spec!.containers[0]!.env!.find((e) => e.name === "CELERIAC_NATS_URL")!.value);
    assert.equal(env.get("CELERIAC_DASHBOARD_TOKEN"), undefined);
    // the dashboard's pods are not selected by the operator's Deployment or Service
    assert.notDeepEqual(d.spec!.selector.matchLabels, operator.spec!.selector.matchLabels);
    const opSel = operator.spec!.selector.matchLabels!;
    assert.ok(!Object.entries(opSel).every(([k, v]) => d.spec!.template.metadata!.labels![k] === v), "the operator's selector does not match dashboard pods");

    const role = objs.find((o) => o.kind === "Role" && o.metadata.name === NAME)!;
    assert.equal(role.metadata.namespace, RELEASE_NS);
    const triples = new Set<string>();
    for (const r of role.rules ?? []) {
      assert.equal(r.resourceNames, undefined);
      for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) triples.add(`${g}|${res}|${v}`);
    }
    const want = new Set<string>();
    for (const [g, rs] of [["celeriac.io", ["queues", "tasks", "schedules", "workflows"]], ["", ["pods", "events"]]] as const) for (const res of rs) for (const v of ["get", "list", "watch"]) want.add(`${g}|${res}|${v}`);
    assert.deepEqual([...triples].sort(), [...want].sort(), "exactly get/list/watch on what the dashboard reads");
    assert.ok(![...triples].some((t) => t.includes("secrets") || t.includes("*")), "no Secrets, no wildcards");
    const rb = objs.find((o) => o.kind === "RoleBinding" && o.metadata.name === NAME)!;
    assert.deepEqual(rb.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: NAME });
    assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: NAME, namespace: RELEASE_NS }]);
    assert.ok(!objs.some((o) => (o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding") && o.metadata.name !== NAME && (o.subjects as Array<{ name: string }> | undefined)?.some((s) => s.name === NAME)), "nothing else is bound to the dashboard's ServiceAccount");

    const lint = await helm.run("lint", "--strict", CHART_DIR, "--set", "dashboard.enabled=true");
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  });

  it("shows another namespace, reuses the operator's NATS credential or takes its own, and takes the action token from a Secret", async () => {
    const objs = await helm.render([], ["dashboard.enabled=true", "dashboard.namespace=team-a", "nats.credentials.existingSecret=nats-op", "nats.tls.caSecret=nats-ca", "dashboard.allowActions=true", "dashboard.actionToken.existingSecret=dash-token"]);
    const d = deploymentOf(objs);
    const env = envOf(d);
    assert.equal(env.get("CELERIAC_NAMESPACE")?.value, "team-a");
    assert.equal(objs.find((o) => o.kind === "Role" && o.metadata.name === NAME)!.metadata.namespace, "team-a");
    assert.equal(objs.find((o) => o.kind === "RoleBinding" && o.metadata.name === NAME)!.metadata.namespace, "team-a");
    assert.equal(d.metadata!.namespace, RELEASE_NS);
    assert.equal(env.get("CELERIAC_NATS_CREDS")?.value, "/var/run/secrets/celeriac.io/nats-creds/nats.creds");
    assert.equal(env.get("CELERIAC_NATS_TLS_CA")?.value, "/var/run/secrets/celeriac.io/nats-tls-ca/ca.crt");
    assert.deepEqual(env.get("CELERIAC_DASHBOARD_TOKEN")?.valueFrom?.secretKeyRef, { name: "dash-token", key: "token" });
    assert.ok(d.spec!.template.spec!.containers[0]!.args!.includes("--allow-actions"));
    const vols = new Map((d.spec!.template.spec!.volumes ?? []).map((v) => [v.name, v.secret?.secretName]));
    assert.equal(vols.get("nats-creds"), "nats-op");
    assert.equal(vols.get("nats-tls-ca"), "nats-ca");

    const own = deploymentOf(await helm.render([], ["dashboard.enabled=true", "nats.credentials.existingSecret=nats-op", "dashboard.nats.credentials.existingSecret=dash-nats", "dashboard.nats.credentials.key=creds"]));
    const ownVol = own.spec!.template.spec!.volumes!.find((v) => v.name === "nats-creds")!;
    assert.deepEqual([ownVol.secret?.secretName, ownVol.secret?.items], ["dash-nats", [{ key: "creds", path: "nats.creds" }]]);

    const userPass = envOf(deploymentOf(await helm.render([], ["dashboard.enabled=true", "nats.auth.existingSecret=nats-user"])));
    assert.deepEqual(userPass.get("CELERIAC_NATS_USER")?.valueFrom?.secretKeyRef, { name: "nats-user", key: "user" });
    assert.deepEqual(userPass.get("CELERIAC_NATS_PASSWORD")?.valueFrom?.secretKeyRef, { name: "nats-user", key: "password" });

    const wide = await helm.render([], ["dashboard.enabled=true", "dashboard.address=0.0.0.0", "dashboard.service.enabled=true"]);
    const svc = wide.find((o) => o.kind === "Service" && o.metadata.name === NAME)!;
    assert.deepEqual((svc.spec as { type: string; ports: unknown[] }).type, "ClusterIP");
    assert.deepEqual((svc.spec as { selector: unknown }).selector, deploymentOf(wide).spec!.selector.matchLabels);
    assert.deepEqual(deploymentOf(wide).spec!.template.spec!.containers[0]!.readinessProbe?.httpGet, { path: "/api/session", port: "http" });
  });

  it("with dashboard.auth kubernetes: --auth kubernetes, no action token, and a ClusterRole that may create exactly TokenReviews and SubjectAccessReviews, bound to its ServiceAccount", async () => {
    const objs = await helm.render([], ["dashboard.enabled=true", "dashboard.allowActions=true", "dashboard.auth=kubernetes"]);
    const d = deploymentOf(objs);
    const args = d.spec!.template.spec!.containers[0]!.args!;
    assert.deepEqual(args.slice(args.indexOf("--auth"), args.indexOf("--auth") + 2), ["--auth", "kubernetes"]);
    assert.ok(args.includes("--allow-actions"));
    assert.equal(envOf(d).get("CELERIAC_DASHBOARD_TOKEN"), undefined);
    const cr = objs.find((o) => o.kind === "ClusterRole" && o.metadata.labels?.["app.kubernetes.io/component"] === "dashboard");
    assert.ok(cr, "ClusterRole rendered");
    assert.deepEqual((cr as unknown as { rules: unknown[] }).rules, [
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
    ]);
    const crb = objs.find((o) => o.kind === "ClusterRoleBinding" && o.metadata.labels?.["app.kubernetes.io/component"] === "dashboard") as unknown as { roleRef: { kind: string; name: string }; subjects: unknown[] };
    assert.deepEqual(crb.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: cr.metadata.name });
    assert.deepEqual(crb.subjects, [{ kind: "ServiceAccount", name: NAME, namespace: RELEASE_NS }]);
    // token mode (the default) renders no ClusterRole
    const tokenMode = await helm.render([], ["dashboard.enabled=true", "dashboard.allowActions=true", "dashboard.actionToken.existingSecret=t"]);
    assert.equal(tokenMode.find((o) => o.kind === "ClusterRole" && o.metadata.labels?.["app.kubernetes.io/component"] === "dashboard"), undefined);
    assert.ok(!deploymentOf(tokenMode).spec!.template.spec!.containers[0]!.args!.includes("--auth"));
    const lint = await helm.run("lint", "--strict", CHART_DIR, "--set", "dashboard.enabled=true", "--set", "dashboard.allowActions=true", "--set", "dashboard.auth=kubernetes");
    assert.equal(lint.code, 0, `${lint.stdout}${lint.stderr}`);
  });

  it("refuses actions without a token Secret, a Service on a loopback-bound dashboard, accounts mode without its own credential, and typos", async () => {
    const refused = async (sets: string[], why: RegExp) => {
      const r = await helm.run("template", "celeriac", CHART_DIR, "--namespace", RELEASE_NS, ...sets.flatMap((s) => ["--set", s]));
      assert.notEqual(r.code, 0, sets.join(" "));
      assert.match(r.stderr, why, sets.join(" "));
    };
    await refused(["dashboard.enabled=true", "dashboard.allowActions=true"], /dashboard\.actionToken\.existingSecret/);
    await refused(["dashboard.enabled=true", "dashboard.service.enabled=true"], /dashboard\.address 0\.0\.0\.0/);
    await refused(["dashboard.enabled=true", "natsAuth.accounts.enabled=true", "natsAuth.accounts.operatorSigningKeySecret.name=op", "natsAuth.accounts.systemCredsSecret.name=sys"], /dashboard\.nats\.credentials\.existingSecret/);
    await refused(["dashboard.enabled=true", "natsAuth.mint.enabled=true", "natsAuth.mint.accountSigningKeySecret.name=acc"], /dashboard\.nats\.credentials\.existingSecret/);
    await refused(["dashboard.enabeld=true"], /dashboard|additional/i);
    await refused(["dashboard.enabled=true", "dashboard.auth=oidc"], /dashboard\.auth|token|kubernetes/);
  });
});

describe("when the rendered dashboard container runs", { skip }, () => {
  let helm: Helm;
  let cluster: TestCluster;
  let srv: NatsServer;
  let child: ChildProcess | undefined;
  const cwd = mkdtempSync(join(tmpdir(), "celeriac-chart-dashboard-cwd-"));
  const queue = uniqueQueue("chd");
  after(async () => {
    child?.kill("SIGTERM");
    if (child && child.exitCode === null) await new Promise((r) => child!.once("exit", r));
    await srv?.cleanup();
    await cluster?.close();
    helm?.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  it("serves the namespace's queues from NATS and its Queue resources from the Kubernetes API with the chart's args and env", async () => {
    helm = makeHelm("celeriac-chart-dashboard-run-");
    const port = await freePort();
    const d = deploymentOf(await helm.render([], ["dashboard.enabled=true", "dashboard.namespace=default", `dashboard.port=${port}`]));
    const c = d.spec!.template.spec!.containers[0]!;
    cluster = await startCluster(["queues"]);
    await createObject(cluster.kc, CELERIAC_TYPES.Queue, { apiVersion: API_VERSION, kind: "Queue", metadata: { name: queue, namespace: "default" }, spec: {} }, "test");
    await patchStatus(cluster.kc, { ...CELERIAC_TYPES.Queue, namespace: "default", name: queue }, { readyReplicas: 1, desiredReplicas: 2 }, "test");
    srv = await startNatsServer();
    const nc = await natsConnect({ servers: srv.url });
    await ensureQueueResources(await jetstreamManager(nc), queueNames("default", queue), queueSettings(), { updateOnDrift: true });
    await nc.close();
    // the pod's env, with the test's NATS for the cluster's and the in-memory API server's kubeconfig for the service account
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG" && k !== "KUBERNETES_SERVICE_HOST"));
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.name === "CELERIAC_NATS_URL" ? srv.url : e.value;
    env.KUBECONFIG = join(cluster.dir, "kubeconfig");
    child = spawn(process.execPath, [BIN, ...c.args!], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    const url = await waitFor("the dashboard's URL", () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 20_000).catch((err: Error) => assert.fail(`${err.message}: ${out}`));
    assert.equal(url, `http://127.0.0.1:${port}/`);
    assert.match(out, /namespace "default"/);
    assert.match(out, /Read-only/);
    const q = await waitFor("the Queue resource", async () => {
      const r = (await (await fetch(`${url}api/kube/queues`)).json()) as { items: Array<{ name: string; workersReady: number; workersDesired?: number }> };
      return r.items.find((x) => x.name === queue);
    }, 10_000);
    assert.deepEqual([q.workersReady, q.workersDesired], [1, 2]);
    const nats = (await (await fetch(`${url}api/queues`)).json()) as { items: Array<{ queue: string }> };
    assert.deepEqual(nats.items.map((x) => x.queue), [queue]);
  });
});

const tools = k8sTools();
const KUBECTL = tools.kubectl134 ?? tools.kubectl132;

describe("when the chart is installed with the dashboard", { skip: HELM && KUBECTL ? false : "helm 4 or kubectl not available" }, () => {
  let api: ApiServer;
  let helm: Helm;
  after(async () => {
    await api?.close();
    helm?.close();
  });

  it("the API server takes its objects, and its Role and RoleBinding land in the shown namespace", async () => {
    helm = makeHelm("celeriac-chart-dashboard-install-");
    const kubeconfig = join(helm.dir, "kubeconfig");
    api = await startApiServer({ port: 0, kubeconfigPath: kubeconfig });
    const kubectl = (...args: string[]) => runTool(KUBECTL as string, ["--kubeconfig", kubeconfig, "--cache-dir", helm.env.KUBECACHEDIR as string, ...args], helm.env);
    assert.equal((await kubectl("create", "namespace", "team-a")).code, 0);
    const r = await helm.run("--kubeconfig", kubeconfig, "install", "celeriac", CHART_DIR, "--namespace", RELEASE_NS, "--create-namespace", "--set", "dashboard.enabled=true", "--set", "dashboard.namespace=team-a");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /port-forward deploy\/celeriac-dashboard 8090/, "NOTES say how to open it");
    const names = async (kind: string, ns: string) => (JSON.parse((await kubectl("get", kind, "-n", ns, "-o", "json")).stdout) as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name);
    assert.ok((await names("deployments", RELEASE_NS)).includes(NAME));
    assert.ok((await names("serviceaccounts", RELEASE_NS)).includes(NAME));
    assert.deepEqual(await names("roles", "team-a"), [NAME]);
    assert.deepEqual(await names("rolebindings", "team-a"), [NAME]);
  });
});
