/**
 * End-to-end: the operator, a real nats-server, the in-memory API server, the process kubelet and the
 * real kubectl. Each describe block starts its own platform.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { queueNames } from "../../api/naming.js";
import { waitFor } from "../helpers/k8s-tools.js";
import { HA_OPERATOR_ARGS, LOCAL_ONLY, leaseHolder, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

async function json<T = Record<string, unknown>>(e: E2E, args: string[]): Promise<T> {
  const r = await e.kubectl([...args, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

type Task = { status?: { phase?: string; attempts?: number; result?: unknown; error?: { message: string }; deadLettered?: boolean; conditions?: Array<{ type: string; status: string; reason: string }> } };

async function phaseOf(e: E2E, name: string): Promise<string | undefined> {
  const r = await e.kubectl(["get", "task", name, "-o", "jsonpath={.status.phase}"]);
  return r.code === 0 ? r.stdout : undefined;
}

describe("when a Queue and Tasks are applied with kubectl", { timeout: 240_000 }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
    const r = await e.apply(queueYaml("work", e.eventsLog));
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => e?.stop());

  it("runs a task to Succeeded, visible to kubectl wait, with the result on the Task", async () => {
    assert.equal((await e.apply(taskYaml("echo-1", "work", "e2e.echo", '  args: [1, "two"]\n  kwargs: {three: 3}'))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/echo-1", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
    const t = await json<Task>(e, ["get", "task", "echo-1"]);
    assert.deepEqual(t.status?.result, { args: [1, "two"], kwargs: { three: 3 } });
    assert.equal(t.status?.phase, "Succeeded");
    const table = await e.kubectl(["get", "tasks"]);
    assert.match(table.stdout.split("\n")[0]!, /NAME\s+QUEUE\s+TASK\s+PHASE\s+ATTEMPTS\s+PROGRESS\s+DURATION\s+AGE/);
    assert.match(table.stdout, /echo-1\s+work\s+e2e\.echo\s+Succeeded\s+1\s+/);
  });

  it("retries a task that fails twice and records attempts 3", async () => {
    assert.equal((await e.apply(taskYaml("flaky-1", "work", "e2e.flaky"))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/flaky-1", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
    const t = await json<Task>(e, ["get", "task", "flaky-1"]);
    assert.equal(t.status?.attempts, 3);
  });

  it("ends an always-failing task Failed with its error, and dead-letters its message", async () => {
    assert.equal((await e.apply(taskYaml("fail-1", "work", "e2e.fail", "  retry: {maxAttempts: 2}"))).code, 0);
    const w = await e.kubectl(["wait", "--for=jsonpath={.status.phase}=Failed", "task/fail-1", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
    const t = await json<Task>(e, ["get", "task", "fail-1"]);
    assert.equal(t.status?.error?.message, "e2e task failed on purpose");
    assert.equal(t.status?.attempts, 2);
    assert.equal(t.status?.deadLettered, true);
    assert.equal(t.status?.conditions?.find((c) => c.type === "Succeeded")?.status, "False");
    const nc = await connect({ servers: e.platform.natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const dlq = await jsm.streams.info(queueNames("default", "work").deadLetterStream);
      assert.ok(dlq.state.messages >= 1, "the dead-letter stream holds the message");
    } finally {
      await nc.close();
    }
  });

  it("fails an unknown task name at once with the no-handler error", async () => {
    assert.equal((await e.apply(taskYaml("unknown-1", "work", "e2e.nope"))).code, 0);
    await waitFor("unknown-1 Failed", async () => (await phaseOf(e, "unknown-1")) === "Failed", 60_000, 200);
    const t = await json<Task>(e, ["get", "task", "unknown-1"]);
    assert.match(t.status?.error?.message ?? "", /^no handler registered for "e2e\.nope" on queue "work"; registered: /);
    assert.equal(t.status?.attempts ?? 1, 1);
  });

  it("refuses an invalid Task at kubectl apply, naming the field", async () => {
    const r = await e.apply("apiVersion: celeriac.io/v1alpha1\nkind: Task\nmetadata: {name: bad-1}\nspec:\n  task: e2e.echo\n  timeoutSeconds: -1\n");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.queue: Required value/);
    assert.match(r.stderr, /spec\.timeoutSeconds: Invalid value: -1/);
    assert.equal((await e.kubectl(["get", "task", "bad-1"])).code, 1);
  });

  it("runs a Task applied before its Queue once the Queue is applied", async () => {
    assert.equal((await e.apply(taskYaml("early-1", "later", "e2e.echo"))).code, 0);
    await waitFor("early-1 Pending/QueueNotFound", async () => {
      const t = await json<Task>(e, ["get", "task", "early-1"]);
      return t.status?.phase === "Pending" && t.status.conditions?.some((c) => c.reason === "QueueNotFound");
    }, 30_000, 200);
    assert.equal((await e.apply(queueYaml("later", e.eventsLog))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/early-1", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
  });

  it("aborts a running Task within 2 s when it is deleted", { skip: LOCAL_ONLY }, async () => {
    assert.equal((await e.apply(taskYaml("long-1", "work", "e2e.sleep", "  kwargs: {ms: 60000}"))).code, 0);
    await waitFor("long-1 Running", async () => (await phaseOf(e, "long-1")) === "Running", 60_000, 100);
    const uid = (await e.kubectl(["get", "task", "long-1", "-o", "jsonpath={.metadata.uid}"])).stdout;
    const deletedAt = Date.now();
    const d = await e.kubectl(["delete", "task", "long-1", "--wait=false"]);
    assert.equal(d.code, 0, d.stderr);
    const aborted = await waitFor("long-1 aborted", () => e.events().find((x) => x.event === "aborted" && x.taskId === uid), 10_000, 50);
    assert.ok(aborted!.at - deletedAt < 2000, `aborted after ${aborted!.at - deletedAt} ms`);
    await waitFor("long-1 gone", async () => (await e.kubectl(["get", "task", "long-1"])).code !== 0, 10_000, 100);
  });

  it("removes the worker Deployment with the Queue and keeps the stream under Retain", async () => {
    assert.equal((await e.apply(queueYaml("gone", e.eventsLog))).code, 0);
    await waitFor("gone-workers exists", async () => (await e.kubectl(["get", "deployment", "gone-workers"])).code === 0, 30_000, 100);
    assert.equal((await e.kubectl(["delete", "queue", "gone"])).code, 0);
    await waitFor("gone-workers deleted", async () => (await e.kubectl(["get", "deployment", "gone-workers"])).code !== 0, 30_000, 100);
    const nc = await connect({ servers: e.platform.natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.streams.info(queueNames("default", "gone").stream)).config.name, queueNames("default", "gone").stream);
    } finally {
      await nc.close();
    }
  });

  it("deletes the streams under deletionPolicy Delete", async () => {
    assert.equal((await e.apply(queueYaml("doomed", e.eventsLog, "  deletionPolicy: Delete\n"))).code, 0);
    const names = queueNames("default", "doomed");
    const nc = await connect({ servers: e.platform.natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      await waitFor("doomed stream", () => jsm.streams.info(names.stream).then(() => true, () => false), 30_000, 100);
      assert.equal((await e.kubectl(["delete", "queue", "doomed", "--timeout=30s"])).code, 0);
      await waitFor("doomed stream deleted", () => jsm.streams.info(names.stream).then(() => false, () => true), 30_000, 100);
      const left = await jsm.streams.names().next();
      assert.ok(!left.includes(names.deadLetterStream) && !left.includes(`KV_${names.resultsBucket}`), left.join(","));
    } finally {
      await nc.close();
    }
  });
});

function manyTasks(prefix: string, n: number, queue: string): string {
  return Array.from({ length: n }, (_, i) => taskYaml(`${prefix}-${i}`, queue, "e2e.sleep", "  kwargs: {ms: 50}")).join("\n---\n");
}

describe("when the operator restarts in the middle of a run", { timeout: 240_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
  });
  after(() => e?.stop());

  it("loses and duplicates nothing: every task runs exactly once", async () => {
    assert.equal((await e.apply(queueYaml("batch", e.eventsLog))).code, 0);
    const n = 40;
    const applied = await e.apply(manyTasks("t", n, "batch"));
    assert.equal(applied.code, 0, applied.stderr);
    const phases = async () => (await e.kubectl(["get", "tasks", "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"])).stdout.split("\n").filter(Boolean);
    await waitFor("some tasks published", async () => (await phases()).length >= 3, 30_000, 20);
    await e.platform.stopOperator(0, true); // SIGKILL mid-run
    const atKill = await phases();
    e.platform.startOperator(0);
    await waitFor(`${n} tasks Succeeded`, async () => {
      return (await phases()).filter((p) => p === "Succeeded").length === n;
    }, 120_000, 250);
    assert.ok(atKill.filter((p) => p === "Succeeded").length < n, "the operator was killed before the run ended");
    const starts = e.events().filter((x) => x.event === "start");
    const perTask = new Map<string, number>();
    for (const s of starts) perTask.set(s.taskId, (perTask.get(s.taskId) ?? 0) + 1);
    assert.equal(perTask.size, n);
    assert.deepEqual([...perTask.values()].filter((c) => c !== 1), [], "no task ran twice");
  });
});

describe("when two operator replicas run", { timeout: 240_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E({ operatorReplicas: 2, operatorArgs: [...HA_OPERATOR_ARGS] });
  });
  after(() => e?.stop());

  it("lets exactly one reconcile, and the other takes over when it dies", async () => {
    const first = await waitFor("a leader", async () => (await leaseHolder(e)) || undefined, 20_000, 100);
    assert.equal((await e.apply(queueYaml("ha", e.eventsLog))).code, 0);
    assert.equal((await e.apply(taskYaml("ha-1", "ha", "e2e.echo"))).code, 0);
    assert.equal((await e.kubectl(["wait", "--for=condition=Succeeded", "task/ha-1", "--timeout=60s"])).code, 0);
    // only the leader's log shows reconciles
    const { readFileSync } = await import("node:fs");
    const logs = [0, 1].map((i) => readFileSync(`${e.dir}/logs/operator-${i}.log`, "utf8"));
    const leaderIdx = first === "operator-0" ? 0 : 1;
    assert.match(logs[leaderIdx]!, /Published task/);
    assert.doesNotMatch(logs[1 - leaderIdx]!, /Published task|Started controllers/);
    const killedAt = Date.now();
    await e.platform.stopOperator(leaderIdx, true);
    const second = await waitFor("a new leader", async () => {
      const h = await leaseHolder(e);
      return h && h !== first ? h : undefined;
    }, 20_000, 100);
    assert.ok(Date.now() - killedAt < 3000 + 2000, "taken over within the lease duration (plus a retry period)");
    assert.equal(second, `operator-${1 - leaderIdx}`);
    assert.equal((await e.apply(taskYaml("ha-2", "ha", "e2e.echo"))).code, 0);
    assert.equal((await e.kubectl(["wait", "--for=condition=Succeeded", "task/ha-2", "--timeout=60s"])).code, 0);
  });
});
