/**
 * `kubectl logs` against the in-memory API server: the pods/log subresource served from the process
 * kubelet's log file and its run index, with --previous, -f, -c and --tail.
 */
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { podLogPath, readContainerRuns, recordContainerRun } from "../../devcluster/kubelet/log-path.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool } from "../helpers/k8s-tools.js";

const kubectl = k8sTools().kubectl134;

describe("when kubectl asks for a pod's logs", { skip: kubectl ? false : "kubectl 1.34 not available" }, () => {
  let api: ApiServer;
  let dir: string;
  let logs: string;
  const k = (...args: string[]) => runTool(kubectl as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", join(dir, "cache"), ...args], {}, 30_000);
  const pod = async (name: string, containers: string[]): Promise<void> => {
    const res = await fetch(`${api.url}/api/v1/namespaces/default/pods`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: containers.map((c) => ({ name: c, image: "worker" })) } }),
    });
    assert.equal(res.status, 201);
  };
  /** Simulates the kubelet: one run of `container` writing `text`, ended unless `running`. */
  const run = (name: string, container: string, restart: number, text: string, running = false): void => {
    const file = podLogPath(logs, "default", name);
    const start = readContainerRuns(file).reduce((n, r) => Math.max(n, r.end ?? 0), 0);
    recordContainerRun(file, { container, restart, start });
    appendFileSync(file, text);
    if (!running) recordContainerRun(file, { container, restart, end: start + Buffer.byteLength(text) });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-podlogs-"));
    logs = join(dir, "logs");
    mkdirSync(logs);
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig"), podLogsDir: logs });
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the current run, and the previous one with --previous, for a crash-looping pod", async () => {
    await pod("crashy", ["worker"]);
    run("crashy", "worker", 0, "boot 1\nError: cannot connect to NATS\n");
    run("crashy", "worker", 1, "boot 2\n", true);
    const now = await k("logs", "crashy");
    assert.equal(now.code, 0, now.stderr);
    assert.equal(now.stdout, "boot 2\n");
    const prev = await k("logs", "crashy", "--previous");
    assert.equal(prev.code, 0, prev.stderr);
    assert.equal(prev.stdout, "boot 1\nError: cannot connect to NATS\n");
    const tail = await k("logs", "crashy", "--previous", "--tail=1");
    assert.equal(tail.stdout, "Error: cannot connect to NATS\n");
  });

  it("follows the output with -f until the run ends", async () => {
    await pod("follow", ["worker"]);
    run("follow", "worker", 0, "first\n", true);
    const file = podLogPath(logs, "default", "follow");
    const done = k("logs", "-f", "follow");
    await new Promise((r) => setTimeout(r, 700));
    appendFileSync(file, "second\n");
    await new Promise((r) => setTimeout(r, 500));
    recordContainerRun(file, { container: "worker", restart: 0, end: Buffer.byteLength("first\nsecond\n") });
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "first\nsecond\n");
  });

  it("answers as kube-apiserver for a missing pod, a missing previous run and an ambiguous container", async () => {
    const missing = await k("logs", "nope");
    assert.match(missing.stderr, /pods "nope" not found/);
    await pod("fresh", ["worker"]);
    run("fresh", "worker", 0, "hello\n", true);
    const noPrev = await k("logs", "fresh", "--previous");
    assert.match(noPrev.stderr, /previous terminated container "worker" in pod "fresh" not found/);
    await pod("two", ["worker", "sidecar"]);
    run("two", "sidecar", 0, "side\n", true);
    const side = await k("logs", "two", "-c", "sidecar");
    assert.equal(side.stdout, "side\n");
  });
});
