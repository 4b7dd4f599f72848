// Integration tests for the process kubelet against the in-memory API server, through client-node and
// real kubectl. Each test uses its own namespace; the suite shares one server and one kubelet.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Deployment, type V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool } from "../helpers/k8s-tools.js";
import { startKubelet, POD_DELETION_COST, type Kubelet } from "../../devcluster/kubelet/index.js";

const FIXTURE = fileURLToPath(new URL("../../../test/fixtures/kubelet/replica.mjs", import.meta.url));

/** Polls `fn` every 50 ms until it returns a truthy value or `ms` pass. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("when the process kubelet runs Deployments against the dev API server", () => {
  let dir: string;
  let server: ApiServer;
  let kubelet: Kubelet;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let kubeconfig: string;
  let records: string;
  let nsCounter = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-kubelet-"));
    kubeconfig = join(dir, "kubeconfig");
    records = join(dir, "records");
    server = await startApiServer({ port: 0, kubeconfigPath: kubeconfig, controllers: { deploymentStatus: false }, podLogsDir: join(dir, "logs") });
    kubelet = await startKubelet({
      kubeconfigPath: kubeconfig,
      logsDir: join(dir, "logs"),
      restartBackoffBaseMs: 200,
      log: pino({ level: process.env.KUBELET_TEST_LOG ?? "silent" }),
    });
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    const { mkdirSync } = await import("node:fs");
    mkdirSync(records);
  });

  after(async () => {
    await kubelet?.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function namespace(): Promise<string> {
    const ns = `kl-${process.pid}-${++nsCounter}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    return ns;
  }

  function deployment(ns: string, name: string, replicas: number, env: Record<string, string> = {}, extra: Partial<{ probe: boolean; grace: number }> = {}): V1Deployment {
    return {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: ns },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            terminationGracePeriodSeconds: extra.grace ?? 5,
            containers: [
              {
                name: "main",
                image: "node:20",
                command: [process.execPath, FIXTURE],
                env: [
                  { name: "RECORD_DIR", value: records },
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  ...Object.entries(env).map(([k, v]) => ({ name: k, value: v })),
                ],
                ...(extra.probe === false
                  ? {}
                  : { readinessProbe: { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 1, failureThreshold: 3 } }),
              },
            ],
          },
        },
      },
    };
  }

  const podsOf = async (ns: string, app: string): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
  const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  const events = (ns: string, pod: string): string[] => {
    const f = join(records, `${pod}.events`);
    void ns;
    return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
  };

  it("runs every replica as a ready local process and reports the Deployment's status", async () => {
    const ns = await namespace();
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "s" }, stringData: { v: "from-secret" } } });
    const d = deployment(ns, "web", 3);
    d.spec!.template.spec!.containers[0]!.env!.push({ name: "SECRET_VALUE", valueFrom: { secretKeyRef: { name: "s", key: "v" } } });
    await apps.createNamespacedDeployment({ namespace: ns, body: d });

    const pods = await waitFor("3 ready pods", async () => {
      const ps = await podsOf(ns, "web");
      return ps.length === 3 && ps.every((p) => p.status?.phase === "Running" && ready(p)) && ps;
    });
    for (const p of pods) {
      const name = p.metadata!.name!;
      assert.match(name, /^web-[b-z2-9]+-[b-z2-9]{5}$/);
      assert.equal(p.spec?.nodeName, "local");
      assert.ok(p.metadata?.labels?.["pod-template-hash"]);
      assert.equal(p.metadata?.ownerReferences?.[0]?.kind, "Deployment");
      assert.equal(p.metadata?.ownerReferences?.[0]?.controller, true);
      const start = events(ns, name)[0] ?? "";
      assert.match(start, /secret=from-secret/);
      assert.match(start, new RegExp(`kubeconfig=${kubeconfig}`));
      assert.doesNotMatch(start, /port=8080/, "replicas share the host network, so PORT is a free port, not the probe's");
      assert.match(readFileSync(join(dir, "logs", `${ns}_${name}.log`), "utf8"), new RegExp(`hello from ${name}`));
    }
    const status = await waitFor("deployment status", async () => {
      const got = await apps.readNamespacedDeployment({ namespace: ns, name: "web" });
      const s = got.status;
      return s?.readyReplicas === 3 && s.availableReplicas === 3 && s.observedGeneration === got.metadata?.generation && s;
    });
    assert.equal(status.replicas, 3);
    assert.equal(status.updatedReplicas, 3);
    assert.equal(status.conditions?.find((c) => c.type === "Available")?.status, "True");
    assert.equal(status.conditions?.find((c) => c.type === "Progressing")?.reason, "NewReplicaSetAvailable");
  });

  it("makes kubectl rollout status succeed", async (t) => {
    const tools = k8sTools();
    const kubectl = tools.kubectl132 ?? tools.kubectl134 ?? "/usr/bin/kubectl";
    if (!existsSync(kubectl)) return t.skip("no kubectl here");
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, "roll", 2) });
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        kubectl,
        ["--kubeconfig", kubeconfig, "-n", ns, "rollout", "status", "deployment/roll", "--timeout=20s"],
        { env: { ...process.env, KUBECACHEDIR: join(dir, `kube-cache-${ns}`) } },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    assert.match(out, /successfully rolled out/);
  });

  it("scales down by deletion cost, readiness and age, sending SIGTERM to the victims", async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, "scale", 3) });
    const pods = await waitFor("3 ready pods", async () => {
      const ps = await podsOf(ns, "scale");
      return ps.length === 3 && ps.every(ready) && ps;
    });
    const [keep, ...others] = pods.map((p) => p.metadata!.name!) as [string, ...string[]];
    await core.patchNamespacedPod(
      { namespace: ns, name: keep, body: { metadata: { annotations: { [POD_DELETION_COST]: "100" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await apps.replaceNamespacedDeploymentScale({
      namespace: ns,
      name: "scale",
      body: { apiVersion: "autoscaling/v1", kind: "Scale", metadata: { name: "scale", namespace: ns }, spec: { replicas: 1 } },
    });
    await waitFor("one pod left", async () => {
      const ps = await podsOf(ns, "scale");
      return ps.length === 1 && ps[0]?.metadata?.name === keep;
    });
    for (const victim of others) await waitFor(`SIGTERM to ${victim}`, () => events(ns, victim).includes("sigterm"));
    assert.ok(!events(ns, keep).includes("sigterm"));
    await waitFor("status of 1 replica", async () => {
      const got = await apps.readNamespacedDeployment({ namespace: ns, name: "scale" });
      return got.status?.replicas === 1 && got.status.readyReplicas === 1 && got.status.observedGeneration === got.metadata?.generation;
    });
  });

  it("kills a process that ignores SIGTERM after the grace period and replaces a deleted pod", async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, "stubborn", 1, { IGNORE_SIGTERM: "1" }, { grace: 1 }) });
    const [pod] = await waitFor("a ready pod", async () => {
      const ps = await podsOf(ns, "stubborn");
      return ps.length === 1 && ready(ps[0]!) && ps;
    });
    const name = pod!.metadata!.name!;
    const pid = Number(/pid=(\d+)/.exec(events(ns, name)[0] ?? "")?.[1]);
    assert.ok(pidAlive(pid));
    const deletedAt = Date.now();
    await core.deleteNamespacedPod({ namespace: ns, name });
    await waitFor("SIGTERM recorded", () => events(ns, name).includes("sigterm"));
    await waitFor("process killed", () => !pidAlive(pid), 5000);
    assert.ok(Date.now() - deletedAt >= 900, "SIGKILL came only after terminationGracePeriodSeconds");
    await waitFor("a replacement pod", async () => {
      const ps = await podsOf(ns, "stubborn");
      return ps.length === 1 && ps[0]!.metadata!.name !== name && ready(ps[0]!);
    });
  });

  it("kills at once, without SIGTERM, on kubectl delete pod --grace-period=0 --force", { skip: k8sTools().kubectl134 ? false : "kubectl 1.34 not available" }, async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, "forced", 1, { IGNORE_SIGTERM: "1" }, { grace: 90 }) });
    const [pod] = await waitFor("a ready pod", async () => {
      const ps = await podsOf(ns, "forced");
      return ps.length === 1 && ready(ps[0]!) && ps;
    });
    const name = pod!.metadata!.name!;
    const pid = Number(/pid=(\d+)/.exec(events(ns, name)[0] ?? "")?.[1]);
    assert.ok(pidAlive(pid));
    const r = await runTool(k8sTools().kubectl134 as string, ["--kubeconfig", kubeconfig, "-n", ns, "delete", "pod", name, "--grace-period=0", "--force"], {}, 30_000);
    assert.equal(r.code, 0, r.stderr);
    await waitFor("process killed", () => !pidAlive(pid), 3000);
    assert.ok(!events(ns, name).includes("sigterm"), "no SIGTERM: a forced delete is an immediate SIGKILL");
  });

  it("restarts a crashing process with back-off and counts restarts", async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, "crash", 1, { CRASH_AFTER_MS: "50" }, { probe: false }) });
    const pod = await waitFor("restartCount >= 2", async () => {
      const [p] = await podsOf(ns, "crash");
      return p && (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2 && p;
    });
    const cs = pod.status!.containerStatuses![0]!;
    assert.equal(cs.lastState?.terminated?.exitCode, 3);
    await waitFor("3 recorded starts", () => events(ns, pod.metadata!.name!).filter((l) => l.startsWith("start")).length >= 3);
    assert.match(readFileSync(join(dir, "logs", `${ns}_${pod.metadata!.name}.log`), "utf8"), /crashing on purpose/);
    const previous = await fetch(`${server.url}/api/v1/namespaces/${ns}/pods/${pod.metadata!.name}/log?previous=true`);
    assert.equal(previous.status, 200);
    const text = await previous.text();
    assert.match(text, /crashing on purpose/, "pods/log?previous=true serves the last terminated run");
    assert.equal(text.match(/crashing on purpose/g)?.length, 1, "only that one run");
  });

  it("rolls pods over to a new template", async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, "roll2", 2, { V: "1" }, { probe: false }) });
    const first = await waitFor("2 ready pods", async () => {
      const ps = await podsOf(ns, "roll2");
      return ps.length === 2 && ps.every(ready) && ps;
    });
    const oldHash = first[0]!.metadata!.labels!["pod-template-hash"];
    await apps.patchNamespacedDeployment(
      { namespace: ns, name: "roll2", body: { spec: { template: { metadata: { annotations: { rev: "2" } } } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await waitFor("2 new ready pods", async () => {
      const ps = await podsOf(ns, "roll2");
      return ps.length === 2 && ps.every((p) => ready(p) && p.metadata?.labels?.["pod-template-hash"] !== oldHash);
    });
    await waitFor("observedGeneration 2", async () => {
      const got = await apps.readNamespacedDeployment({ namespace: ns, name: "roll2" });
      return got.metadata?.generation === 2 && got.status?.observedGeneration === 2 && got.status.updatedReplicas === 2 && got.status.replicas === 2;
    });
  });

  it("keeps a pod it cannot run Pending with an ImageNotRunnable event", async () => {
    const ns = await namespace();
    const d = deployment(ns, "busy", 1, {}, { probe: false });
    d.spec!.template.spec!.containers[0] = { name: "main", image: "busybox:1.36", command: ["sh", "-c", "sleep 1"] };
    await apps.createNamespacedDeployment({ namespace: ns, body: d });
    const pod = await waitFor("a pending pod with a reason", async () => {
      const [p] = await podsOf(ns, "busy");
      return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === "ImageNotRunnable" && p;
    });
    assert.equal(pod.status?.phase, "Pending");
    await waitFor("the ImageNotRunnable event", async () => {
      const evs = await core.listNamespacedEvent({ namespace: ns });
      return evs.items.some((e) => e.reason === "ImageNotRunnable" && e.involvedObject.name === pod.metadata?.name);
    });
  });
});
