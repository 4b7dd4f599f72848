/**
 * The worker's light Kubernetes transport (kube/light-client.ts): the k8s-client helpers work over it
 * against the in-memory API server exactly as over client-node (reads, creates, merge patches,
 * server-side apply of status, typed 404/409 errors); kubeconfig and in-cluster configs are read
 * as client-go reads them; a user that needs exec credentials is left to client-node.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { join } from "node:path";
import { stringify } from "yaml";
import { CELERIAC_TYPES, type Task } from "../../api/objects.js";
import { BUILTIN_TYPES, applyStatus, createObject, getObject, isAlreadyExists, isNotFound, mergePatch, type KubeObject } from "../../kube/k8s-client.js";
import { inClusterConfig, kubeconfigFileConfig, LightKubeClient, lightKubeClient } from "../../kube/light-client.js";
import { startCluster, taskObject, type TestCluster } from "../operator/runtime/cluster.js";

describe("when the worker talks to the API server through the light client", () => {
  let c: TestCluster;
  let light: LightKubeClient;
  before(async () => {
    c = await startCluster(["tasks"]);
    const l = await lightKubeClient({ KUBECONFIG: join(c.dir, "kubeconfig") });
    assert.ok(l, "the dev kubeconfig (token user) is served without client-node");
    light = l;
  });
  after(async () => {
    light?.close();
    await c?.close();
  });

  it("creates, reads, merge-patches and applies status like the client-node transport", async () => {
    await createObject(light, BUILTIN_TYPES.Namespace, { metadata: { name: "lite" } }, "test");
    const created = await createObject<Task & KubeObject>(light, CELERIAC_TYPES.Task, taskObject("lite", "t1") as Task & KubeObject, "test");
    assert.ok(created.metadata.uid);
    const read = await getObject<Task & KubeObject>(c.kc, { ...CELERIAC_TYPES.Task, namespace: "lite", name: "t1" });
    assert.equal(read.metadata.uid, created.metadata.uid, "client-node sees what the light client wrote");
    await mergePatch(light, { ...CELERIAC_TYPES.Task, namespace: "lite", name: "t1" }, { metadata: { labels: { via: "light" } } }, "test");
    const applied = await applyStatus<Task & KubeObject>(light, CELERIAC_TYPES.Task, { metadata: { name: "t1", namespace: "lite" }, status: { phase: "Running" } }, "celeriac-worker", { force: true });
    assert.equal(applied.status?.phase, "Running");
    const again = await getObject<Task & KubeObject>(light, { ...CELERIAC_TYPES.Task, namespace: "lite", name: "t1" });
    assert.equal(again.metadata.labels?.via, "light");
    assert.equal(again.status?.phase, "Running");
  });

  it("throws the same typed API errors (404, 409 AlreadyExists)", async () => {
    await assert.rejects(getObject(light, { ...CELERIAC_TYPES.Task, namespace: "lite", name: "nope" }), (err: unknown) => isNotFound(err));
    await assert.rejects(createObject(light, CELERIAC_TYPES.Task, taskObject("lite", "t1"), "test"), (err: unknown) => isAlreadyExists(err));
  });
});

describe("when the light client reads its configuration", () => {
  let dir: string;
  let srv: Server;
  let port = 0;
  const seen: IncomingHttpHeaders[] = [];
  before(async () => {
    dir = join((await import("node:os")).tmpdir(), `celeriac-light-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    srv = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ kind: "Status", path: req.url }));
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    port = (srv.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((r) => srv.close(() => r()));
    (await import("node:fs")).rmSync(dir, { recursive: true, force: true });
  });

  const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) => {
    const file = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, stringify({
      apiVersion: "v1", kind: "Config", "current-context": "c",
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
      clusters: [{ name: "k", cluster: { server: `http://127.0.0.1:${port}`, ...cluster } }],
      users: [{ name: "u", user }],
    }));
    return file;
  };

  it("sends the kubeconfig's token, or the token file's current content, as the bearer token", async () => {
    const fixed = new LightKubeClient((await kubeconfigFileConfig(kubeconfig({ token: "abc" })))!);
    assert.deepEqual(await fixed.request({ method: "GET", path: "/api", query: { limit: 5, x: undefined } }), { kind: "Status", path: "/api?limit=5" });
    assert.equal(seen.at(-1)?.authorization, "Bearer abc");
    writeFileSync(join(dir, "token"), "from-file\n");
    const viaFile = new LightKubeClient((await kubeconfigFileConfig(kubeconfig({ tokenFile: "token" })))!);
    await viaFile.request({ method: "GET", path: "/api" });
    assert.equal(seen.at(-1)?.authorization, "Bearer from-file", "tokenFile relative to the kubeconfig's directory");
    fixed.close();
    viaFile.close();
  });

  it("leaves exec, auth-provider and basic-auth users to client-node (undefined)", async () => {
    assert.equal(await kubeconfigFileConfig(kubeconfig({ exec: { apiVersion: "client.authentication.k8s.io/v1", command: "aws" } })), undefined);
    assert.equal(await kubeconfigFileConfig(kubeconfig({ "auth-provider": { name: "oidc" } })), undefined);
    assert.equal(await kubeconfigFileConfig(kubeconfig({ username: "u", password: "p" })), undefined);
    assert.equal(await lightKubeClient({ KUBECONFIG: kubeconfig({ exec: { command: "x" } }) }), undefined);
  });

  it("names the field when the kubeconfig has no current context or server", async () => {
    const noCtx = join(dir, "no-ctx");
    writeFileSync(noCtx, stringify({ apiVersion: "v1", kind: "Config", clusters: [], users: [], contexts: [] }));
    await assert.rejects(kubeconfigFileConfig(noCtx), /no current context .*kubectl config use-context/);
    const noServer = join(dir, "no-server");
    writeFileSync(noServer, stringify({ "current-context": "c", contexts: [{ name: "c", context: { cluster: "k", user: "u" } }], clusters: [{ name: "k", cluster: {} }] }));
    await assert.rejects(kubeconfigFileConfig(noServer), /names cluster k, which has no server/);
  });

  it("builds the in-cluster config as client-go does: https host:port (IPv6 bracketed), the ServiceAccount CA and token file", () => {
    const sa = join(dir, "sa");
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, "ca.crt"), "-----BEGIN CERTIFICATE-----\n");
    const v4 = inClusterConfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, sa);
    assert.equal(v4.server, "https://10.96.0.1:443");
    assert.equal(v4.tokenFile, join(sa, "token"));
    assert.equal(String(v4.ca), "-----BEGIN CERTIFICATE-----\n");
    assert.equal(inClusterConfig({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, sa).server, "https://[fd00::1]:443");
    assert.throws(() => inClusterConfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1" }, sa), /KUBERNETES_SERVICE_PORT must be set/);
    assert.throws(() => inClusterConfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, join(dir, "missing")), /cannot read .*ca\.crt .*automountServiceAccountToken/);
  });
});
