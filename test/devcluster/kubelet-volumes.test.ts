// Volumes in the process kubelet: the pure payload / mount-path rules as table tests, the atomic writer
// on a temp dir, and Pods with secret, configMap, downwardAPI and emptyDir volumes run against the dev
// API server (one server and one kubelet for the suite, a namespace per test).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig, type CoreV1Event, type V1Pod, type V1Volume } from "@kubernetes/client-node";
import { pino } from "pino";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { startKubelet, type Kubelet } from "../../devcluster/kubelet/index.js";
import { DATA_DIR, timestampPrefix, writeAtomic } from "../../devcluster/kubelet/atomic-writer.js";
import { containerMounts, rewriteArg, rewriteEnv, toHostPath } from "../../devcluster/kubelet/mount-paths.js";
import { configMapPayload, downwardApiPayload, projectedPayload, secretPayload, validateVolumePath, VolumeSetupError, type Payload } from "../../devcluster/kubelet/volume-payload.js";
import { ContainerConfigError } from "../../devcluster/kubelet/env.js";
import { waitFor as pollFor } from "../helpers/nats-server.js";

const FIXTURE = fileURLToPath(new URL("../../../test/fixtures/kubelet/volume-reader.mjs", import.meta.url));
const b = (s: string): Buffer => Buffer.from(s);
const files = (p: Payload): Record<string, [string, string]> =>
  Object.fromEntries([...p].map(([k, v]) => [k, [v.data.toString(), v.mode.toString(8)]]));

/** Polls `fn` every 50 ms until it returns a truthy value or `ms` (default 15 s) pass. */
const waitFor = <T>(what: string, fn: () => Promise<T> | T, ms = 15_000): Promise<NonNullable<T>> => pollFor(what, fn, ms, 50);

describe("when volume payloads are computed", () => {
  const secret = { user: b("alice"), "nats.creds": b("JWT-1") };

  it("projects every key with mode 0644 when there are no items", () => {
    assert.deepEqual(files(secretPayload("v", { secretName: "s" }, secret)), { user: ["alice", "644"], "nats.creds": ["JWT-1", "644"] });
  });

  it("projects only the listed items, at their paths, with item mode over defaultMode", () => {
    const p = secretPayload("v", { secretName: "s", defaultMode: 0o400, items: [{ key: "nats.creds", path: "dir/creds" }, { key: "user", path: "u", mode: 0o440 }] }, secret);
    assert.deepEqual(files(p), { "dir/creds": ["JWT-1", "400"], u: ["alice", "440"] });
  });

  it("fails a missing Secret or key unless optional, with the kubelet's wording", () => {
    assert.throws(() => secretPayload("creds", { secretName: "nope" }, undefined), (e: unknown) =>
      e instanceof VolumeSetupError && e.eventMessage() === 'MountVolume.SetUp failed for volume "creds" : secret "nope" not found');
    assert.equal(secretPayload("creds", { secretName: "nope", optional: true }, undefined).size, 0);
    assert.throws(() => secretPayload("v", { secretName: "s", items: [{ key: "gone", path: "g" }] }, secret), /references non-existent secret key: gone/);
    assert.deepEqual(files(secretPayload("v", { secretName: "s", optional: true, items: [{ key: "gone", path: "g" }, { key: "user", path: "u" }] }, secret)), { u: ["alice", "644"] });
    assert.throws(() => configMapPayload("v", { name: "cm", items: [{ key: "gone", path: "g" }] }, {}), /configmap references non-existent config key: gone/);
    assert.throws(() => configMapPayload("v", { name: "cm" }, undefined), /configmap "cm" not found/);
  });

  it("refuses bad modes and paths, naming the field", () => {
    assert.throws(() => secretPayload("v", { secretName: "s", defaultMode: 0o1777 }, secret), /secret\.defaultMode 1023 is not a file mode/);
    assert.throws(() => secretPayload("v", { secretName: "s", items: [{ key: "user", path: "u", mode: -1 }] }, secret), /items\[0\]\.mode -1/);
    for (const bad of ["", "/abs", "a/../b", "..data", "..x/y"]) assert.throws(() => validateVolumePath("v", bad), VolumeSetupError, bad);
    assert.equal(validateVolumePath("v", "./a//b"), "a/b");
  });

  it("writes downward-API fields, labels as sorted key=\"value\" lines", () => {
    const pod: V1Pod = { metadata: { name: "p", namespace: "ns", labels: { b: "2", a: 'x"y' } } };
    const p = downwardApiPayload("v", { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }, { path: "name", fieldRef: { fieldPath: "metadata.name" } }, { path: "a", fieldRef: { fieldPath: "metadata.labels['a']" } }] }, pod);
    assert.deepEqual(files(p), { labels: ['a="x\\"y"\nb="2"', "644"], name: ["p", "644"], a: ['x"y', "644"] });
    assert.throws(() => downwardApiPayload("v", { items: [{ path: "cpu", resourceFieldRef: { resource: "limits.cpu" } }] }, pod), /only fieldRef is supported/);
  });

  it("merges projected sources in order and refuses a service account token", () => {
    const p = projectedPayload("v", { defaultMode: 0o440, sources: [{ secret: { name: "s", items: [{ key: "user", path: "x" }] } }, { configMap: { name: "c" } }] }, { secrets: { s: secret }, configMaps: { c: { x: b("from-cm") } }, pod: {} });
    assert.deepEqual(files(p), { x: ["from-cm", "440"] });
    assert.throws(() => projectedPayload("v", { sources: [{ serviceAccountToken: { path: "token" } }] }, { secrets: {}, configMaps: {}, pod: {} }), /only secret, configMap and downwardAPI/);
  });
});

describe("when container paths are mapped to volume directories", () => {
  const container = {
    name: "c",
    volumeMounts: [
      { name: "creds", mountPath: "/var/run/secrets/celeriac.io/nats-creds", readOnly: true },
      { name: "scratch", mountPath: "/var/run/secrets/" },
      { name: "one", mountPath: "/etc/app.conf", subPath: "conf/app.conf" },
    ],
  };
  const mounts = containerMounts(container, { creds: "/h/creds", scratch: "/h/scratch", one: "/h/one" });

  it("rewrites values under a mountPath, longest mountPath first, on element boundaries only", () => {
    assert.equal(toHostPath("/var/run/secrets/celeriac.io/nats-creds/nats.creds", mounts), "/h/creds/nats.creds");
    assert.equal(toHostPath("/var/run/secrets/celeriac.io/nats-creds", mounts), "/h/creds");
    assert.equal(toHostPath("/var/run/secrets/other", mounts), "/h/scratch/other");
    assert.equal(toHostPath("/var/run/secretsX", mounts), "/var/run/secretsX");
    assert.equal(toHostPath("/etc/app.conf", mounts), "/h/one/conf/app.conf");
    assert.equal(toHostPath("relative/var/run/secrets/x", mounts), "relative/var/run/secrets/x");
  });

  it("rewrites whole arguments and --flag=<path> values, and env values", () => {
    assert.equal(rewriteArg("--creds=/var/run/secrets/celeriac.io/nats-creds/nats.creds", mounts), "--creds=/h/creds/nats.creds");
    assert.equal(rewriteArg("x=/var/run/secrets/a", mounts), "x=/var/run/secrets/a");
    assert.deepEqual(rewriteEnv({ A: "/etc/app.conf", B: "plain" }, mounts), { A: "/h/one/conf/app.conf", B: "plain" });
  });

  it("leaves out a mount the caller shares with the host (an emptyDir over /tmp)", () => {
    const shared = containerMounts({ name: "c", volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, { name: "creds", mountPath: "/etc/creds" }] }, { tmp: "/h/tmp", creds: "/h/creds" }, {}, (mp) => mp === "/tmp");
    assert.equal(toHostPath("/tmp/celeriac-e2e/events.log", shared), "/tmp/celeriac-e2e/events.log");
    assert.equal(toHostPath("/etc/creds/x", shared), "/h/creds/x");
  });

  it("refuses a mount of a volume the Pod does not have, or a subPath leaving the volume", () => {
    assert.throws(() => containerMounts({ name: "c", volumeMounts: [{ name: "nope", mountPath: "/x" }] }, {}), (e: unknown) => e instanceof ContainerConfigError && /"nope", which is not in spec\.volumes/.test(e.message));
    assert.throws(() => containerMounts({ name: "c", volumeMounts: [{ name: "v", mountPath: "/x", subPath: "../up" }] }, { v: "/h" }), /must be a relative path inside the volume/);
  });
});

describe("when the atomic writer projects a payload", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "celeriac-atomic-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a timestamped dir, a ..data link and visible links; rewrites only on change; prunes old names", () => {
    const target = join(dir, "vol");
    const at = new Date(Date.UTC(2026, 11, 2, 0, 45, 10));
    assert.equal(timestampPrefix(at), "..2026_12_02_00_45_10.");
    assert.equal(writeAtomic(target, new Map([["a", { data: b("one"), mode: 0o400 }], ["d/b", { data: b("two"), mode: 0o644 }]]), at), true);
    const ts1 = readlinkSync(join(target, DATA_DIR));
    assert.match(ts1, /^\.\.2026_12_02_00_45_10\./);
    assert.equal(readlinkSync(join(target, "a")), `${DATA_DIR}/a`);
    assert.equal(readFileSync(join(target, "d/b"), "utf8"), "two");
    assert.equal(statSync(join(target, "a")).mode & 0o777, 0o400);
    assert.equal(writeAtomic(target, new Map([["a", { data: b("one"), mode: 0o400 }], ["d/b", { data: b("two"), mode: 0o644 }]])), false, "unchanged payload is not rewritten");
    assert.equal(writeAtomic(target, new Map([["a", { data: b("ONE"), mode: 0o400 }]])), true);
    const ts2 = readlinkSync(join(target, DATA_DIR));
    assert.notEqual(ts2, ts1);
    assert.equal(readFileSync(join(target, "a"), "utf8"), "ONE");
    assert.equal(existsSync(join(target, ts1)), false, "the old timestamped dir is removed");
    assert.equal(existsSync(join(target, "d")), false, "a name no longer in the payload is removed");
    assert.deepEqual(readdirSync(target).sort(), [DATA_DIR, ts2, "a"].sort());
  });
});

describe("when the process kubelet runs Pods with volumes", () => {
  let dir: string;
  let podsDir: string;
  let records: string;
  let server: ApiServer;
  let kubelet: Kubelet | undefined;
  let core: CoreV1Api;
  let nsCounter = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-kubelet-vol-"));
    const kubeconfig = join(dir, "kubeconfig");
    podsDir = join(dir, "pods");
    records = join(dir, "records");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(records);
    server = await startApiServer({ port: 0, kubeconfigPath: kubeconfig, controllers: { deploymentStatus: false }, podLogsDir: join(dir, "logs") });
    kubelet = await startKubelet({
      kubeconfigPath: kubeconfig,
      logsDir: join(dir, "logs"),
      podsDir,
      restartBackoffBaseMs: 200,
      volumeResyncMs: 500,
      log: pino({ level: process.env.KUBELET_TEST_LOG ?? "silent" }),
    });
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
  });

  after(async () => {
    await kubelet?.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function namespace(): Promise<string> {
    const ns = `kv-${process.pid}-${++nsCounter}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    return ns;
  }

  const secretBody = (ns: string, name: string, data: Record<string, string>) => ({
    metadata: { name, namespace: ns },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  });

  /** A Pod running the volume-reader fixture; it reads READ_FILE and counts starts in SCRATCH_DIR. */
  function podBody(ns: string, name: string, o: { volumes?: V1Volume[]; readFile: string; crashAfterMs?: number }): V1Pod {
    return {
      metadata: { name, namespace: ns, labels: { app: name, tier: "test" } },
      spec: {
        nodeName: "local",
        terminationGracePeriodSeconds: 2,
        volumes: o.volumes ?? [
          { name: "creds", secret: { secretName: "worker-nats", defaultMode: 0o400, items: [{ key: "nats.creds", path: "nats.creds" }] } },
          { name: "scratch", emptyDir: {} },
          { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
          { name: "config", configMap: { name: "app", optional: true } },
        ],
        containers: [
          {
            name: "main",
            image: "node:20",
            command: [process.execPath, FIXTURE],
            args: ["--info=/etc/podinfo/labels", "/etc/podinfo"],
            env: [
              { name: "RECORD_DIR", value: records },
              { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
              { name: "READ_FILE", value: o.readFile },
              { name: "SCRATCH_DIR", value: "/scratch" },
              ...(o.crashAfterMs ? [{ name: "CRASH_AFTER_MS", value: String(o.crashAfterMs) }] : []),
            ],
            volumeMounts: [
              { name: "creds", mountPath: "/var/run/secrets/celeriac.io/nats-creds", readOnly: true },
              { name: "scratch", mountPath: "/scratch" },
              { name: "info", mountPath: "/etc/podinfo" },
              ...((o.volumes ?? []).some((v) => v.name === "config") || !o.volumes ? [{ name: "config", mountPath: "/etc/app" }] : []),
            ],
          },
        ],
      },
    };
  }

  type Read = { pid: number; read?: string; argv?: string[]; env?: Record<string, string>; starts?: number };
  const reads = (pod: string): Read[] => {
    const f = join(records, `${pod}.reads`);
    return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Read) : [];
  };
  const uidOf = async (ns: string, name: string): Promise<string> => (await core.readNamespacedPod({ namespace: ns, name })).metadata?.uid ?? "";
  const events = async (ns: string, pod: string): Promise<CoreV1Event[]> =>
    (await core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.involvedObject.name === pod);

  it("materialises the volumes under the pod's dir and hands the process the host paths", async () => {
    const ns = await namespace();
    await core.createNamespacedSecret({ namespace: ns, body: secretBody(ns, "worker-nats", { "nats.creds": "CREDS-v1", other: "not projected" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody(ns, "reader", { readFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds" }) });
    const start = await waitFor("the process to read the creds", () => reads("reader").find((r) => r.read === "CREDS-v1") && reads("reader")[0]);
    const uid = await uidOf(ns, "reader");
    const vol = join(podsDir, uid, "volumes", "kubernetes.io~secret", "creds");
    assert.equal(start.env?.READ_FILE, join(vol, "nats.creds"));
    assert.equal(start.env?.SCRATCH_DIR, join(podsDir, uid, "volumes", "kubernetes.io~empty-dir", "scratch"));
    const info = join(podsDir, uid, "volumes", "kubernetes.io~downward-api", "info");
    assert.deepEqual(start.argv, [`--info=${info}/labels`, info]);
    assert.equal(readFileSync(join(info, "labels"), "utf8"), 'app="reader"\ntier="test"');
    assert.deepEqual(readdirSync(vol).filter((f) => !f.startsWith("..")), ["nats.creds"], "only the listed item is projected");
    assert.equal(lstatSync(join(vol, "nats.creds")).isSymbolicLink(), true);
    assert.match(readlinkSync(join(vol, DATA_DIR)), /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\./);
    assert.equal(statSync(join(vol, "nats.creds")).mode & 0o777, 0o400);
    assert.deepEqual(readdirSync(join(podsDir, uid, "volumes", "kubernetes.io~configmap", "config")).filter((f) => !f.startsWith("..")), [], "an optional missing ConfigMap is an empty volume");
  });

  it("delivers a changed Secret to the running process without a restart", async (t) => {
    const ns = await namespace();
    await core.createNamespacedSecret({ namespace: ns, body: secretBody(ns, "worker-nats", { "nats.creds": "CREDS-v1" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody(ns, "rotate", { readFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds" }) });
    const first = await waitFor("the first read", () => reads("rotate").find((r) => r.read === "CREDS-v1"));
    const t0 = Date.now();
    await core.replaceNamespacedSecret({ namespace: ns, name: "worker-nats", body: secretBody(ns, "worker-nats", { "nats.creds": "CREDS-v2" }) });
    const second = await waitFor("the rotated read", () => reads("rotate").find((r) => r.read === "CREDS-v2"), 5000);
    const ms = Date.now() - t0;
    assert.equal(second.pid, first.pid, "same process: no restart");
    assert.ok(!reads("rotate").some((r) => r.read?.startsWith("ERROR")), "the reader never saw a missing or partial file");
    assert.ok(ms < 2500, `rotation took ${ms} ms (resync period 500 ms)`);
    t.diagnostic(`the rotated Secret reached the running process in ${ms} ms`);
    const pod = await core.readNamespacedPod({ namespace: ns, name: "rotate" });
    assert.equal(pod.status?.containerStatuses?.[0]?.restartCount, 0);
  });

  it("keeps a pod with a missing Secret in ContainerCreating with a FailedMount event, then starts it once the Secret exists", async () => {
    const ns = await namespace();
    await core.createNamespacedPod({ namespace: ns, body: podBody(ns, "waiting", { readFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds" }) });
    const ev = await waitFor("a FailedMount event", async () => (await events(ns, "waiting")).find((e) => e.reason === "FailedMount"));
    assert.equal(ev.type, "Warning");
    assert.equal(ev.message, 'MountVolume.SetUp failed for volume "creds" : secret "worker-nats" not found');
    const pod = await waitFor("the waiting status", async () => {
      const p = await core.readNamespacedPod({ namespace: ns, name: "waiting" });
      return p.status?.containerStatuses?.[0]?.state?.waiting ? p : undefined;
    });
    assert.equal(pod.status?.phase, "Pending");
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.waiting?.reason, "ContainerCreating");
    assert.equal(reads("waiting").length, 0, "no process started");
    await new Promise((r) => setTimeout(r, 1500)); // two retry periods: the event is not repeated
    assert.equal((await events(ns, "waiting")).filter((e) => e.reason === "FailedMount").length, 1);
    await core.createNamespacedSecret({ namespace: ns, body: secretBody(ns, "worker-nats", { "nats.creds": "LATE" }) });
    await waitFor("the process to start with the Secret", () => reads("waiting").find((r) => r.read === "LATE"));
    await waitFor("phase Running", async () => (await core.readNamespacedPod({ namespace: ns, name: "waiting" })).status?.phase === "Running");
  });

  it("keeps emptyDir and refreshes the Secret across a container restart; a deleted pod's dir is removed", async () => {
    const ns = await namespace();
    await core.createNamespacedSecret({ namespace: ns, body: secretBody(ns, "worker-nats", { "nats.creds": "R1" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody(ns, "crasher", { readFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds", crashAfterMs: 800 }) });
    await waitFor("the first start", () => reads("crasher").find((r) => r.starts === 1));
    await core.replaceNamespacedSecret({ namespace: ns, name: "worker-nats", body: secretBody(ns, "worker-nats", { "nats.creds": "R2" }) });
    const restarted = await waitFor("a second start", () => reads("crasher").find((r) => r.starts === 2));
    const firstPid = reads("crasher")[0]?.pid;
    assert.notEqual(restarted.pid, firstPid, "a new process");
    await waitFor("the restarted process to read R2", () => reads("crasher").find((r) => r.pid === restarted.pid && r.read === "R2"));
    const uid = await uidOf(ns, "crasher");
    assert.equal(existsSync(join(podsDir, uid)), true);
    await core.deleteNamespacedPod({ namespace: ns, name: "crasher" });
    await waitFor("the pod dir to be removed", () => !existsSync(join(podsDir, uid)));
  });

  it("gives a recreated pod a fresh dir with the current content, and removes every dir on stop", async () => {
    const ns = await namespace();
    await core.createNamespacedSecret({ namespace: ns, body: secretBody(ns, "worker-nats", { "nats.creds": "A" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody(ns, "again", { readFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds" }) });
    await waitFor("read A", () => reads("again").find((r) => r.read === "A"));
    const uid1 = await uidOf(ns, "again");
    await core.deleteNamespacedPod({ namespace: ns, name: "again", gracePeriodSeconds: 0 });
    await waitFor("the first pod's dir to go", () => !existsSync(join(podsDir, uid1)));
    await core.replaceNamespacedSecret({ namespace: ns, name: "worker-nats", body: secretBody(ns, "worker-nats", { "nats.creds": "B" }) });
    await core.createNamespacedPod({ namespace: ns, body: podBody(ns, "again", { readFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds" }) });
    const uid2 = await waitFor("the second pod", async () => {
      const u = await uidOf(ns, "again");
      return u !== uid1 ? u : undefined;
    });
    const second = await waitFor("read B", () => reads("again").find((r) => r.read === "B"));
    const starts = reads("again").filter((r) => r.pid === second.pid && r.starts !== undefined);
    assert.equal(starts[0]?.starts, 1, "the new pod's emptyDir starts empty");
    assert.equal(existsSync(join(podsDir, uid2)), true);
    await kubelet?.stop();
    kubelet = undefined;
    assert.deepEqual(readdirSync(podsDir), [], "stop removes every pod dir");
  });
});
