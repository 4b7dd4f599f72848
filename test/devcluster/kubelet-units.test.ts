// Table tests for the process kubelet's pure parts: victim order, back-off, the container → command
// rule, env expansion, template hashing and the Deployment status.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Container, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { chooseVictims, compareForDeletion, POD_DELETION_COST } from "../../devcluster/kubelet/victims.js";
import { restartDelayMs, resetsBackoff } from "../../devcluster/kubelet/backoff.js";
import { imageRepository, resolveContainerCommand } from "../../devcluster/kubelet/command.js";
import { expandVars, resolveEnv, ContainerConfigError } from "../../devcluster/kubelet/env.js";
import { desiredPod, templateHash } from "../../devcluster/kubelet/pod-template.js";
import { desiredDeploymentStatus, statusMergePatch } from "../../devcluster/kubelet/deployment-status.js";

const T0 = Date.parse("2026-11-22T10:00:00Z");

function pod(name: string, o: { cost?: number; ready?: boolean; createdS?: number; phase?: string; node?: string; restarts?: number; readySinceS?: number } = {}): V1Pod {
  return {
    metadata: {
      name,
      creationTimestamp: new Date(T0 + (o.createdS ?? 0) * 1000),
      ...(o.cost !== undefined ? { annotations: { [POD_DELETION_COST]: String(o.cost) } } : {}),
    },
    spec: { containers: [], nodeName: o.node ?? "local" },
    status: {
      phase: o.phase ?? "Running",
      conditions: [
        { type: "Ready", status: o.ready === false ? "False" : "True", lastTransitionTime: new Date(T0 + (o.readySinceS ?? 0) * 1000) },
      ],
      containerStatuses: [{ name: "c", image: "i", imageID: "", ready: o.ready !== false, restartCount: o.restarts ?? 0 }],
    },
  };
}

describe("when choosing scale-down victims", () => {
  const cases: { name: string; pods: V1Pod[]; count: number; want: string[] }[] = [
    { name: "newest first when all else is equal", pods: [pod("old", { createdS: 0 }), pod("new", { createdS: 10 }), pod("mid", { createdS: 5 })], count: 2, want: ["new", "mid"] },
    { name: "not-ready before ready", pods: [pod("r", { createdS: 10 }), pod("nr", { ready: false })], count: 1, want: ["nr"] },
    { name: "lower deletion cost first among ready pods", pods: [pod("a", { cost: 5, createdS: 10 }), pod("b", { cost: -1 }), pod("c", { createdS: 5 })], count: 2, want: ["b", "c"] },
    { name: "deletion cost beats age", pods: [pod("old-cheap", { cost: 1 }), pod("new-dear", { cost: 100, createdS: 50 })], count: 1, want: ["old-cheap"] },
    { name: "readiness beats deletion cost (upstream order)", pods: [pod("ready-cheap", { cost: -10 }), pod("unready-dear", { cost: 10, ready: false })], count: 1, want: ["unready-dear"] },
    { name: "pending before running", pods: [pod("run", { createdS: 9 }), pod("pend", { phase: "Pending", ready: false })], count: 1, want: ["pend"] },
    { name: "unassigned before assigned", pods: [pod("assigned", { phase: "Pending", ready: false, createdS: 9 }), pod("unassigned", { node: "", phase: "Pending", ready: false })], count: 1, want: ["unassigned"] },
    { name: "ready for less time first", pods: [pod("long", { readySinceS: 0 }), pod("short", { readySinceS: 30 })], count: 1, want: ["short"] },
    { name: "more restarts first", pods: [pod("calm", { createdS: 9 }), pod("flappy", { restarts: 4 })], count: 1, want: ["flappy"] },
    { name: "invalid cost counts as 0", pods: [pod("bad", { createdS: 0 }), pod("neg", { cost: -1, createdS: 0 })], count: 1, want: ["neg"] },
    { name: "nothing for count 0", pods: [pod("a")], count: 0, want: [] },
  ];
  cases[9]!.pods[0]!.metadata!.annotations = { [POD_DELETION_COST]: "lots" };
  for (const c of cases) {
    it(`orders ${c.name}`, () => {
      assert.deepEqual(chooseVictims(c.pods, c.count).map((p) => p.metadata?.name), c.want);
    });
  }
  it("is a strict order (antisymmetric)", () => {
    const a = pod("a");
    const b = pod("b", { createdS: 1 });
    assert.equal(Math.sign(compareForDeletion(a, b)), -Math.sign(compareForDeletion(b, a)));
  });
});

describe("when computing the restart back-off", () => {
  const cases: [number, number, number][] = [
    [0, 10_000, 0],
    [1, 10_000, 10_000],
    [2, 10_000, 20_000],
    [5, 10_000, 160_000],
    [6, 10_000, 300_000],
    [50, 10_000, 300_000],
    [3, 100, 400],
  ];
  for (const [n, base, want] of cases) {
    it(`waits ${want} ms after crash ${n} with base ${base}`, () => assert.equal(restartDelayMs(n, base), want));
  }
  it("resets after running ten minutes at the default base", () => {
    assert.equal(resetsBackoff(600_000), true);
    assert.equal(resetsBackoff(599_999), false);
  });
});

describe("when mapping a container to a local command", () => {
  const ctx = {
    nodePath: "/usr/bin/node",
    celeriacBin: "/repo/bin/celeriac.js",
    imageCommands: { "ghcr.io/acme/tool": ["/opt/tool", "--local"], "ghcr.io/acme/cel:1.0": ["celeriac", "worker"] },
    isExecutable: (p: string) => p === "/bin/true",
  };
  const c = (o: Partial<V1Container>): V1Container => ({ name: "w", ...o });
  const cases: { name: string; container: V1Container; want: unknown }[] = [
    { name: "celeriac command", container: c({ image: "x", command: ["celeriac"], args: ["worker", "--queue", "q"] }), want: { file: "/usr/bin/node", args: ["/repo/bin/celeriac.js", "worker", "--queue", "q"] } },
    { name: "celeriac as first arg", container: c({ image: "x", args: ["celeriac", "worker"] }), want: { file: "/usr/bin/node", args: ["/repo/bin/celeriac.js", "worker"] } },
    { name: "celeriac by absolute path", container: c({ image: "x", command: ["/usr/local/bin/celeriac", "operator"] }), want: { file: "/usr/bin/node", args: ["/repo/bin/celeriac.js", "operator"] } },
    { name: "image map by repository", container: c({ image: "ghcr.io/acme/tool:2.3", command: ["/ignored"], args: ["a"] }), want: { file: "/opt/tool", args: ["--local", "a"] } },
    { name: "image map to celeriac", container: c({ image: "ghcr.io/acme/cel:1.0", args: ["--queue", "q"] }), want: { file: "/usr/bin/node", args: ["/repo/bin/celeriac.js", "worker", "--queue", "q"] } },
    { name: "absolute executable", container: c({ image: "busybox", command: ["/bin/true"], args: ["x"] }), want: { file: "/bin/true", args: ["x"] } },
  ];
  for (const t of cases) it(`runs a ${t.name}`, () => assert.deepEqual(resolveContainerCommand(t.container, ctx), t.want));
  it("refuses a relative command", () => {
    const r = resolveContainerCommand(c({ image: "busybox", command: ["sh", "-c", "x"] }), ctx);
    assert.equal((r as { reason: string }).reason, "ImageNotRunnable");
  });
  it("refuses a missing absolute command, naming it", () => {
    const r = resolveContainerCommand(c({ image: "busybox", command: ["/nope"] }), ctx);
    assert.match((r as { message: string }).message, /\/nope/);
  });
  it("strips tags and digests but keeps registry ports", () => {
    assert.equal(imageRepository("host:5000/a/b:1.2"), "host:5000/a/b");
    assert.equal(imageRepository("a/b@sha256:abc"), "a/b");
    assert.equal(imageRepository("busybox"), "busybox");
  });
});

describe("when building a container's environment", () => {
  const p: V1Pod = { metadata: { name: "p1", namespace: "ns1", labels: { app: "w" } }, spec: { containers: [], nodeName: "local" } };
  const sources = {
    secret: async (_ns: string, name: string) => (name === "s" ? { token: "t0p" } : undefined),
    configMap: async (_ns: string, name: string) => (name === "cm" ? { LEVEL: "debug" } : undefined),
  };
  it("expands $(VAR) and keeps unknown references and $$ escapes as Kubernetes does", () => {
    assert.equal(expandVars("$(A)-$(B)-$$(A)", { A: "1" }), "1-$(B)-$(A)");
  });
  it("resolves literals, refs, fieldRefs and envFrom in order over the base", async () => {
    const env = await resolveEnv(
      {
        name: "w",
        envFrom: [{ configMapRef: { name: "cm" }, prefix: "CFG_" }],
        env: [
          { name: "TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "token" } } },
          { name: "NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: "URL", value: "http://$(IP):$(PORT)/$(NAME)" },
          { name: "OPT", valueFrom: { secretKeyRef: { name: "missing", key: "k", optional: true } } },
        ],
      },
      p,
      sources,
      { PATH: "/bin", PORT: "4000" },
    );
    assert.deepEqual(env, { PATH: "/bin", PORT: "4000", CFG_LEVEL: "debug", TOKEN: "t0p", NAME: "p1", IP: "127.0.0.1", APP: "w", URL: "http://127.0.0.1:4000/p1" });
  });
  it("fails with a config error naming a missing secret", async () => {
    await assert.rejects(
      resolveEnv({ name: "w", env: [{ name: "X", valueFrom: { secretKeyRef: { name: "gone", key: "k" } } }] }, p, sources, {}),
      (err: unknown) => err instanceof ContainerConfigError && /gone/.test(err.message),
    );
  });
});

describe("when hashing pod templates and building pods", () => {
  const d: V1Deployment = {
    metadata: { name: "web", namespace: "ns", uid: "u1" },
    spec: { replicas: 2, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "i" }] } } },
  };
  it("hashes typed and raw copies of one template alike, and different templates differently", () => {
    const raw = JSON.parse(JSON.stringify(d.spec!.template)) as Record<string, unknown>;
    (raw.metadata as Record<string, unknown>).creationTimestamp = null;
    assert.equal(templateHash(d.spec!.template), templateHash(raw));
    assert.notEqual(templateHash(d.spec!.template), templateHash({ ...d.spec!.template, metadata: { labels: { app: "other" } } }));
    assert.match(templateHash(d.spec!.template), /^[b-z2-9]+$/);
  });
  it("names, labels, owns and binds the pod", () => {
    const p = desiredPod(d, "h4sh", "abcde");
    assert.equal(p.metadata?.name, "web-h4sh-abcde");
    assert.deepEqual(p.metadata?.labels, { app: "web", "pod-template-hash": "h4sh" });
    assert.deepEqual(p.metadata?.ownerReferences, [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "u1", controller: true, blockOwnerDeletion: true }]);
    assert.equal(p.spec?.nodeName, "local");
  });
});

describe("when computing a Deployment's status", () => {
  const hash = "h";
  const dep = (status?: V1Deployment["status"]): V1Deployment => ({
    metadata: { name: "web", namespace: "ns", uid: "u", generation: 4 },
    spec: { replicas: 2, selector: {}, template: {} },
    ...(status ? { status } : {}),
  });
  const p = (ready: boolean, h = hash): V1Pod => {
    const x = pod(`p-${Math.random()}`, { ready });
    x.metadata!.labels = { "pod-template-hash": h };
    return x;
  };
  it("reports a complete rollout the way kubectl rollout status expects", () => {
    const { status } = desiredDeploymentStatus({ deployment: dep(), pods: [p(true), p(true)], hash, nowMs: T0 });
    assert.equal(status.observedGeneration, 4);
    assert.equal(status.replicas, 2);
    assert.equal(status.updatedReplicas, 2);
    assert.equal(status.readyReplicas, 2);
    assert.equal(status.availableReplicas, 2);
    assert.equal(status.unavailableReplicas, undefined);
    assert.deepEqual(status.conditions?.map((c) => [c.type, c.status, c.reason]), [
      ["Available", "True", "MinimumReplicasAvailable"],
      ["Progressing", "True", "NewReplicaSetAvailable"],
    ]);
  });
  it("reports progress and unavailability while pods are not ready", () => {
    const { status, recheckInMs } = desiredDeploymentStatus({ deployment: dep(), pods: [p(false), p(true, "old")], hash, nowMs: T0 });
    assert.equal(status.updatedReplicas, 1);
    assert.equal(status.readyReplicas, 1);
    assert.equal(status.unavailableReplicas, 1);
    assert.equal(status.conditions?.[1]?.reason, "NewReplicaSetCreated");
    assert.equal(recheckInMs, 600_000);
  });
  it("marks the progress deadline exceeded when nothing moved for progressDeadlineSeconds", () => {
    const first = desiredDeploymentStatus({ deployment: dep(), pods: [p(false), p(false)], hash, nowMs: T0 }).status;
    const later = desiredDeploymentStatus({ deployment: dep(first as V1Deployment["status"]), pods: [p(false), p(false)], hash, nowMs: T0 + 601_000 }).status;
    assert.deepEqual([later.conditions?.[1]?.status, later.conditions?.[1]?.reason], ["False", "ProgressDeadlineExceeded"]);
  });
  it("writes nothing when the status is unchanged, and nulls fields that disappear", () => {
    const { status } = desiredDeploymentStatus({ deployment: dep(), pods: [p(true), p(true)], hash, nowMs: T0 });
    const again = desiredDeploymentStatus({ deployment: dep(status as V1Deployment["status"]), pods: [p(true), p(true)], hash, nowMs: T0 + 5000 }).status;
    assert.equal(statusMergePatch(status, again), undefined);
    assert.deepEqual(statusMergePatch({ replicas: 2, readyReplicas: 2 }, { replicas: 2 }), { status: { replicas: 2, readyReplicas: null } });
  });
});
