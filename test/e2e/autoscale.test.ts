/**
 * End-to-end autoscaling (issue 7 "Done when"): the operator scales a Queue's worker Deployment by
 * queue depth on the dev platform, where the process kubelet runs the workers as local processes.
 *
 * Timings are read from the API server every 50 ms (a sampler of the Deployment's `spec.replicas`
 * and its Pods' phase/readiness), so they are accurate to about 50 ms plus one request.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect, type CeleriacClient, type TaskHandle } from "../../client/index.js";
import { LABELS } from "../../api/constants.js";
import { queueNames } from "../../api/naming.js";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, type E2E } from "./helpers.js";
import { firstAfter, sampler } from "./scale-sampler.js";

const NS = "default";
const POLL_SECONDS = 1;
const COOLDOWN_SECONDS = 5;
const STABILIZATION_SECONDS = 3;
/** Longest wait from the last task's end to zero replicas: stabilization, cooldown, polls, slack. */
const COOLDOWN_BOUND_MS = (STABILIZATION_SECONDS + COOLDOWN_SECONDS + 3 * POLL_SECONDS) * 1000 + 5000;

/** A Queue running the e2e tasks, min 0, max 5, target 10, with short windows for the test. */
function autoscaledQueue(name: string, eventsLog: string, provider: "builtin" | "keda" = "builtin"): string {
  return queueYaml(name, eventsLog, "", `    provider: ${provider}
    minReplicas: 0
    maxReplicas: 5
    targetBacklogPerReplica: 10
    pollingIntervalSeconds: ${POLL_SECONDS}
    scaleDownStabilizationSeconds: ${STABILIZATION_SECONDS}
    cooldownSeconds: ${COOLDOWN_SECONDS}
`);
}

async function replicas(e: E2E, queue: string): Promise<number | undefined> {
  const r = await e.kubectl(["get", "deployment", `${queue}-workers`, "-o", "jsonpath={.spec.replicas}"]);
  return r.code === 0 ? Number(r.stdout || "0") : undefined;
}

async function enqueueSleeps(client: CeleriacClient, queue: string, n: number, ms: number): Promise<Array<TaskHandle>> {
  return Promise.all(Array.from({ length: n }, () => client.enqueue("e2e.sleep", [], { ms }, { queue, namespace: NS })));
}

async function expectAllSucceeded(handles: TaskHandle[]): Promise<void> {
  const outcomes = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 90_000 })));
  const failed = outcomes.filter((o) => o.status === "rejected").map((o) => String((o as PromiseRejectedResult).reason));
  assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${handles.length} tasks did not succeed`);
}

/** Every handle's task started exactly once (e2e events since `since`). */
function expectExactlyOnce(e: E2E, handles: TaskHandle[], since = 0): void {
  const starts = new Map<string, number>();
  for (const x of e.events().filter((x) => x.event === "start" && x.at >= since)) starts.set(x.taskId, (starts.get(x.taskId) ?? 0) + 1);
  assert.deepEqual(handles.filter((h) => starts.get(h.id) !== 1).map((h) => `${h.id}:${starts.get(h.id) ?? 0}`), [], "every task started exactly once");
}

/**
 * Waits until the queue's worker pods are gone and every worker process has exited, then checks each
 * process finished every task it started and aborted none.
 */
async function expectNoInterruptions(e: E2E, queue: string): Promise<void> {
  await waitFor("no worker pods left", async () => (await e.kubectl(["get", "pods", "-l", `${LABELS.queue}=${queue}`, "-o", "name"])).stdout.trim() === "", 30_000, 100);
  const events = e.events();
  const pids = new Set(events.map((x) => x.pid));
  await waitFor("every worker process exited", () => alive(pids).length === 0, 30_000, 100);
  const perPid = [...pids].map((pid) => {
    const mine = events.filter((x) => x.pid === pid);
    const finished = new Set(mine.filter((x) => x.event === "finish").map((x) => x.taskId));
    const started = mine.filter((x) => x.event === "start").map((x) => x.taskId);
    return { pid, started: started.length, aborted: mine.filter((x) => x.event === "aborted").length, unfinished: started.filter((t) => !finished.has(t)) };
  });
  assert.deepEqual(perPid.filter((p) => p.aborted > 0 || p.unfinished.length > 0), [], "no worker process left a task unfinished");
}

/** Worker processes that are still running (kill -0 succeeds). */
function alive(pids: Iterable<number>): number[] {
  return [...pids].filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

describe("when a Queue autoscales on the dev platform", { timeout: 170_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  let client: CeleriacClient;
  before(async () => {
    e = await startE2E();
    client = await connect({ servers: e.platform.natsUrl, ensureResources: false });
  });
  after(async () => {
    await client?.close();
    await e?.stop();
  });

  describe("with min 0, max 5, target 10 and the builtin provider", () => {
    const queue = "auto";
    const figures: Record<string, number | undefined> = {};
    before(async () => {
      const r = await e.apply(autoscaledQueue(queue, e.eventsLog));
      assert.equal(r.code, 0, r.stderr);
      await waitFor("auto-workers at 0 and the stream ready", async () => {
        const q = await e.kubectl(["get", "queue", queue, "-o", "jsonpath={.status.conditions[?(@.type==\"StreamReady\")].status}"]);
        return q.stdout === "True" && (await replicas(e, queue)) === 0;
      }, 30_000, 100);
    });
    after(() => console.log(JSON.stringify({ autoscaleE2E: figures })));

    it("scales 0→5 within 3 s of the first enqueue of 300 tasks, runs each exactly once, and returns to 0 after the cooldown", async () => {
      const s = sampler(e.platform.apiUrl, queue);
      try {
        const t0 = Date.now();
        const handles = await enqueueSleeps(client, queue, 300, 200);
        figures.enqueue300Ms = Date.now() - t0;
        await waitFor("5 running workers", () => s.samples.some((x) => x.at >= t0 && x.running === 5), 20_000, 20);
        figures.to1Ms = firstAfter(s.samples, t0, (x) => x.spec >= 1);
        figures.to5Ms = firstAfter(s.samples, t0, (x) => x.spec === 5);
        figures.firstRunningMs = firstAfter(s.samples, t0, (x) => x.running >= 1);
        figures.fiveRunningMs = firstAfter(s.samples, t0, (x) => x.running === 5);
        assert.ok(figures.to5Ms! <= 3000, `0→5 took ${figures.to5Ms} ms`);

        await expectAllSucceeded(handles);
        const done = Date.now();
        figures.allDoneMs = done - t0;
        expectExactlyOnce(e, handles);

        await waitFor("back to 0 replicas", () => s.samples.some((x) => x.at >= done && x.spec === 0), COOLDOWN_BOUND_MS, 50);
        figures.doneTo0Ms = firstAfter(s.samples, done, (x) => x.spec === 0);
        assert.ok(figures.doneTo0Ms! >= (COOLDOWN_SECONDS - 1) * 1000, `scaled to 0 after ${figures.doneTo0Ms} ms, before the ${COOLDOWN_SECONDS} s cooldown`);
        await expectNoInterruptions(e, queue);
      } finally {
        await s.stop();
      }
    });

    it("interrupts no task while scaling down busy workers: each worker process finished every task it started", async () => {
      // 60 tasks of 3 s on 5 workers × 4 slots: the backlog falls 60 → 40 → 20 → 0 in 3 s steps, so the
      // scale-down (after the 3 s stabilization window) stops workers that hold running tasks.
      const s = sampler(e.platform.apiUrl, queue);
      try {
        const t0 = Date.now();
        const handles = await enqueueSleeps(client, queue, 60, 3000);
        await waitFor("5 replicas", () => s.samples.some((x) => x.at >= t0 && x.spec === 5), 10_000, 20);
        await expectAllSucceeded(handles);
        const done = Date.now();
        expectExactlyOnce(e, handles, t0);
        await waitFor("back to 0 replicas", () => s.samples.some((x) => x.at >= done && x.spec === 0), COOLDOWN_BOUND_MS, 50);
        await expectNoInterruptions(e, queue);

        // Evidence the scale-down hit busy workers: a pod that left before the end while its process had tasks running.
        const events = e.events().filter((x) => x.at >= t0);
        const peak = s.samples.findIndex((x) => x.at >= t0 && x.spec === 5);
        const lastSeen = new Map<number, number>();
        for (const x of s.samples.slice(peak)) for (const pid of x.pids) lastSeen.set(pid, x.at);
        let drained = 0;
        for (const [pid, seen] of lastSeen) {
          if (seen >= done) continue;
          const mine = events.filter((x) => x.pid === pid);
          drained += mine.filter((x) => x.event === "start" && x.at <= seen && mine.some((f) => f.event === "finish" && f.taskId === x.taskId && f.at > seen)).length;
        }
        figures.steps = new Set(s.samples.slice(peak).map((x) => x.spec)).size;
        figures.tasksFinishedAfterTheirPodWasDeleted = drained;
        assert.ok(drained > 0, "a worker was stopped while it had tasks running, and finished them");
      } finally {
        await s.stop();
      }
    });

    it("starts the first worker within one polling interval of a burst while scaled to zero", async () => {
      assert.equal(await replicas(e, queue), 0);
      const s = sampler(e.platform.apiUrl, queue, 20);
      try {
        await waitFor("a sample", () => s.samples.length > 0, 5000, 10);
        const t0 = Date.now();
        const handles = await enqueueSleeps(client, queue, 5, 200);
        await waitFor("a running worker", () => s.samples.some((x) => x.at >= t0 && x.running >= 1), 10_000, 10);
        figures.burstTo1Ms = firstAfter(s.samples, t0, (x) => x.spec >= 1);
        figures.burstToRunningMs = firstAfter(s.samples, t0, (x) => x.running >= 1);
        figures.burstToReadyMs = firstAfter(s.samples, t0, (x) => x.ready >= 1);
        // one polling interval, plus one reconcile and one sample of slack
        assert.ok(figures.burstTo1Ms! <= POLL_SECONDS * 1000 + 500, `0→1 took ${figures.burstTo1Ms} ms`);
        assert.ok(figures.burstToRunningMs! <= POLL_SECONDS * 1000 + 1000, `first Running pod after ${figures.burstToRunningMs} ms`);
        await expectAllSucceeded(handles);
      } finally {
        await s.stop();
      }
    });
  });

  describe("with provider keda", () => {
    const queue = "viakeda";

    it("reports a clear condition while the ScaledObject CRD is missing", async () => {
      const r = await e.apply(autoscaledQueue(queue, e.eventsLog, "keda"));
      assert.equal(r.code, 0, r.stderr);
      const cond = await waitFor("a WorkersReady condition about KEDA", async () => {
        const q = await e.kubectl(["get", "queue", queue, "-o", "json"]);
        const conds = (JSON.parse(q.stdout) as { status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } }).status?.conditions ?? [];
        return conds.find((c) => c.type === "WorkersReady" && c.reason === "KedaNotInstalled");
      }, 20_000, 100);
      assert.equal(cond!.status, "False");
      assert.match(cond!.message, /scaledobjects\.keda\.sh/);
    });

    it("applies a ScaledObject with the nats-jetstream trigger once the CRD exists, and leaves the Deployment's size to KEDA", async () => {
      const crd = await e.kubectl(["apply", "-f", join(REPO_ROOT, "test", "fixtures", "keda", "scaledobjects.keda.sh.yaml")]);
      assert.equal(crd.code, 0, crd.stderr);
      assert.equal((await e.kubectl(["wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=20s"])).code, 0);
      type SO = { spec: { scaleTargetRef: { name: string }; minReplicaCount: number; maxReplicaCount: number; pollingInterval: number; triggers: Array<{ type: string; metadata: Record<string, string> }> }; metadata: { ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> } };
      const so = await waitFor("the ScaledObject", async () => {
        const r = await e.kubectl(["get", "scaledobject", `${queue}-workers`, "-o", "json"]);
        return r.code === 0 ? (JSON.parse(r.stdout) as SO) : undefined;
      }, 30_000, 200);
      const names = queueNames(NS, queue);
      assert.equal(so!.spec.scaleTargetRef.name, `${queue}-workers`);
      assert.deepEqual([so!.spec.minReplicaCount, so!.spec.maxReplicaCount, so!.spec.pollingInterval], [0, 5, POLL_SECONDS]);
      assert.equal(so!.spec.triggers.length, 1);
      assert.equal(so!.spec.triggers[0]!.type, "nats-jetstream");
      assert.equal(so!.spec.triggers[0]!.metadata.stream, names.stream);
      assert.equal(so!.spec.triggers[0]!.metadata.consumer, names.workerConsumer);
      assert.equal(so!.spec.triggers[0]!.metadata.lagThreshold, "10");
      assert.ok(so!.metadata.ownerReferences?.some((o) => o.kind === "Queue" && o.name === queue && o.controller));
      await waitFor("WorkersReady no longer KedaNotInstalled", async () => {
        const q = await e.kubectl(["get", "queue", queue, "-o", "jsonpath={.status.conditions[?(@.type==\"WorkersReady\")].reason}"]);
        return q.code === 0 && q.stdout !== "" && q.stdout !== "KedaNotInstalled";
      }, 10_000, 100);

      // A backlog that the builtin provider would scale to 5 does not move the Deployment.
      const handles = await enqueueSleeps(client, queue, 50, 10);
      const q0 = await waitFor("the backlog on the Queue status", async () => {
        const q = await e.kubectl(["get", "queue", queue, "-o", "jsonpath={.status.backlog}"]);
        return Number(q.stdout) >= 50 ? q.stdout : undefined;
      }, 10_000, 100);
      assert.ok(q0);
      const until = Date.now() + 3 * POLL_SECONDS * 1000;
      await waitFor(`${3 * POLL_SECONDS} s of polling`, async () => {
        assert.equal(await replicas(e, queue), 0, "the operator scaled a KEDA-managed Deployment");
        return Date.now() > until;
      }, 10_000, 200);
      const ev = await e.kubectl(["get", "events", "--field-selector", `involvedObject.name=${queue}`, "-o", "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}"]);
      assert.doesNotMatch(ev.stdout, /^Scaled$/m);
      // Hand the tasks to a worker, as KEDA would, so the platform stops cleanly.
      assert.equal((await e.kubectl(["scale", "deployment", `${queue}-workers`, "--replicas=1"])).code, 0);
      await expectAllSucceeded(handles);
    });
  });
});
