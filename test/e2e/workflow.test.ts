/**
 * End-to-end: `kind: Workflow` (issue 17) on the local platform (operator process, in-memory API
 * server, nats-server, process kubelet) driven with the real kubectl. One platform and one Queue
 * whose workers run test/fixtures/e2e/workflow-tasks.ts; every handler appends its executions to the
 * per-execution log, so each step task's runs are counted by task id (`<uid>_<step>[_g<n>][_<i>]`).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { workflowTaskId, type WorkflowStatus } from "../../api/workflow.js";
import { runTool, waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, type E2E } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const QUEUE = "wf";

/** A Workflow as kubectl returns it. */
interface Wf {
  metadata: { name: string; uid: string; generation: number; resourceVersion: string; annotations?: Record<string, string> };
  status?: WorkflowStatus;
}

/** One line of the per-execution log. */
interface Execution {
  event: string;
  taskId: string;
  pid: number;
  at: number;
  attempt?: number;
  workflow?: { name: string; namespace: string; phase: string; failedSteps: Array<{ name: string; error?: { message?: string } }> };
}

function workflowYaml(name: string, body: string): string {
  return `apiVersion: celeriac.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: ${name}\nspec:\n  queue: ${QUEUE}\n${body}`;
}

async function get(e: E2E, name: string): Promise<Wf> {
  const r = await e.kubectl(["get", "workflow", name, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Wf;
}

async function waitCondition(e: E2E, name: string, condition: "Succeeded" | "Failed", timeoutS = 60): Promise<Wf> {
  const w = await e.kubectl(["wait", `--for=condition=${condition}`, `workflow/${name}`, `--timeout=${timeoutS}s`]);
  if (w.code !== 0) {
    const d = await e.kubectl(["get", "workflow", name, "-o", "yaml"]);
    assert.fail(`workflow/${name} not ${condition} within ${timeoutS} s: ${w.stderr}\n${d.stdout}`);
  }
  return get(e, name);
}

function step(wf: Wf, name: string) {
  const s = wf.status?.steps?.find((x) => x.name === name);
  assert.ok(s, `status.steps has ${name}: ${JSON.stringify(wf.status?.steps?.map((x) => x.name))}`);
  return s;
}

function condition(wf: Wf, type: string) {
  return wf.status?.conditions?.find((c) => c.type === type);
}

/** The log's executions (`start` events) of this Workflow's tasks, counted per task id. */
function runsOf(e: E2E, uid: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of executions(e)) if (x.event === "start" && x.taskId.startsWith(`${uid}_`)) out.set(x.taskId, (out.get(x.taskId) ?? 0) + 1);
  return out;
}

function executions(e: E2E): Execution[] {
  return existsSync(e.eventsLog) ? readFileSync(e.eventsLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Execution) : [];
}

/** The queue's worker processes run the workflow tasks module instead of the generic e2e one. */
function workflowQueueYaml(e: E2E, name = QUEUE): string {
  return queueYaml(name, e.eventsLog, "  concurrency: 32\n").replace("/fixtures/e2e/tasks.js", "/fixtures/e2e/workflow-tasks.js");
}

const DIAMOND = workflowYaml(
  "diamond",
  `  steps:
    - {name: d, task: wf.node, args: [d], dependsOn: [b, c]}
    - {name: b, task: wf.node, args: [b], dependsOn: [a]}
    - {name: c, task: wf.node, args: [c], dependsOn: [a], kwargs: {extra: 1}}
    - {name: a, task: wf.node, args: [a]}
`,
);

describe("when a Workflow is applied with kubectl", { timeout: 180_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
    const r = await e.apply(`${workflowQueueYaml(e)}\n---\n${workflowQueueYaml(e, `${QUEUE}-other`)}`);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => e?.stop());

  it("runs a diamond DAG in dependency order, passing each dependency's result by name in kwargs", async () => {
    const r = await e.apply(DIAMOND);
    assert.equal(r.code, 0, r.stderr);
    const wf = await waitCondition(e, "diamond", "Succeeded");
    const a = { step: "a", inputs: {} };
    assert.deepEqual(wf.status?.result, { step: "d", inputs: { b: { step: "b", inputs: { a } }, c: { step: "c", inputs: { extra: 1, a } } } });
    assert.equal(wf.status?.phase, "Succeeded");
    assert.equal(wf.status?.progress, "4/4");
    assert.equal(condition(wf, "Failed")?.status, "False");
    const deps: Record<string, string[]> = { a: [], b: ["a"], c: ["a"], d: ["b", "c"] };
    for (const [name, on] of Object.entries(deps)) {
      const s = step(wf, name);
      assert.equal(s.phase, "Succeeded", name);
      assert.deepEqual(s.tasks, { total: 1, succeeded: 1, failed: 0, running: 0 }, name);
      assert.deepEqual(s.taskIds, [workflowTaskId(wf.metadata.uid, name)], name);
      for (const dep of on) {
        const start = Date.parse(s.startTime ?? "");
        const depEnd = Date.parse(step(wf, dep).completionTime ?? "");
        assert.ok(start >= depEnd, `step ${name} started (${s.startTime}) before its dependency ${dep} finished (${step(wf, dep).completionTime})`);
      }
    }
    assert.deepEqual([...runsOf(e, wf.metadata.uid).values()], [1, 1, 1, 1], "each step ran once");
    const table = await e.kubectl(["get", "workflows"]);
    assert.match(table.stdout.split("\n")[0]!, /NAME\s+PHASE\s+PROGRESS\s+DURATION\s+AGE/);
    assert.match(table.stdout, /diamond\s+Succeeded\s+4\/4\s+/);
  });

  it("fans a forEach out over a 500-item list a step returned and fans it in, keeping the object small", async () => {
    const r = await e.apply(
      workflowYaml(
        "fanout",
        `  steps:
    - {name: gen, task: wf.range, args: [500]}
    - {name: square, task: wf.square, dependsOn: [gen], forEach: {fromStep: gen}}
    - {name: total, task: wf.collect, args: [square], dependsOn: [square]}
`,
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const wf = await waitCondition(e, "fanout", "Succeeded", 120);
    const sq = step(wf, "square");
    assert.deepEqual(sq.tasks, { total: 500, succeeded: 500, failed: 0, running: 0 });
    assert.equal(sq.taskIds?.length, 5, "only the first task ids are listed");
    assert.equal(sq.taskIds?.[0], workflowTaskId(wf.metadata.uid, "square", 0, 0));
    const sum = Array.from({ length: 500 }, (_, i) => i * i).reduce((s, n) => s + n, 0);
    assert.deepEqual(wf.status?.result, { length: 500, sum, first: 0, last: 499 * 499 }, "the fan-in got the 500 results in item order");
    const runs = runsOf(e, wf.metadata.uid);
    assert.equal(runs.size, 502);
    assert.deepEqual([...runs.values()].filter((n) => n !== 1), [], "every task ran once");
    const size = (await e.kubectl(["get", "workflow", "fanout", "-o", "json"])).stdout.length;
    assert.ok(size < 100 * 1024, `kubectl get -o json is ${size} bytes`);
  });

  it("gives a fan-in the list of results by reference, past the 256 KiB a message's kwargs may hold", async () => {
    const pad = "p".repeat(300);
    const r = await e.apply(
      workflowYaml(
        "bigfanin",
        `  steps:
    - {name: gen, task: wf.range, args: [1000]}
    - {name: wide, task: wf.node, dependsOn: [gen], forEach: {fromStep: gen}, kwargs: {pad: ${pad}}}
    - {name: total, task: wf.collect, args: [wide], dependsOn: [wide]}
`,
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const wf = await waitCondition(e, "bigfanin", "Succeeded", 120);
    const item = (i: number) => ({ step: i, inputs: { pad } });
    assert.ok(1000 * JSON.stringify(item(999)).length > 256 * 1024, "the list is larger than a message's kwargs may be");
    assert.deepEqual(wf.status?.result, { length: 1000, sum: 0, first: item(0), last: item(999) });
  });

  it("passes a result from a step on another Queue by value", async () => {
    const r = await e.apply(
      workflowYaml(
        "crossqueue",
        `  steps:
    - {name: here, task: wf.node, args: [here]}
    - {name: there, task: wf.node, args: [there], queue: ${QUEUE}-other, dependsOn: [here]}
    - {name: back, task: wf.node, args: [back], dependsOn: [there]}
`,
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const wf = await waitCondition(e, "crossqueue", "Succeeded", 90);
    assert.deepEqual(wf.status?.result, { step: "back", inputs: { there: { step: "there", inputs: { here: { step: "here", inputs: {} } } } } });
  });

  let marker = "";
  it("fails fast when a step fails after its retries: names it, cancels its dependents, runs onFailure once", async () => {
    marker = join(e.dir, "fail-marker");
    writeFileSync(marker, "fail while I exist\n");
    const r = await e.apply(
      workflowYaml(
        "failing",
        `  steps:
    - {name: first, task: wf.node, args: [first]}
    - name: bad
      task: wf.fail-while-marker
      dependsOn: [first]
      kwargs: {marker: ${JSON.stringify(marker)}}
      retry: {maxAttempts: 2, backoff: {initialSeconds: 0.2, factor: 1}}
    - {name: side, task: wf.sleep, dependsOn: [first], kwargs: {ms: 300}}
    - {name: after-bad, task: wf.node, args: [after-bad], dependsOn: [bad]}
    - {name: last, task: wf.node, args: [last], dependsOn: [after-bad, side]}
  onFailure: {task: wf.hook}
  onExit: {task: wf.hook}
`,
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const wf = await waitCondition(e, "failing", "Failed");
    const uid = wf.metadata.uid;
    assert.equal(wf.status?.phase, "Failed");
    assert.match(wf.status?.message ?? "", /\bbad\b/, "status.message names the failed step");
    assert.equal(condition(wf, "Failed")?.status, "True");
    assert.equal(condition(wf, "Succeeded")?.status, "False");
    const bad = step(wf, "bad");
    assert.equal(bad.phase, "Failed");
    assert.equal(bad.attempts, 2);
    assert.equal(bad.error?.message, `marker ${marker} exists`);
    assert.equal(bad.error?.taskId, workflowTaskId(uid, "bad"));
    assert.equal(step(wf, "side").phase, "Succeeded", "a step running beside the failure finishes");
    for (const name of ["after-bad", "last"]) {
      assert.equal(step(wf, name).phase, "Cancelled", name);
      assert.match(step(wf, name).message ?? "", /bad/, `${name}'s message names the failed step`);
    }
    assert.equal(wf.status?.onFailure?.phase, "Succeeded");
    assert.equal(wf.status?.onExit?.phase, "Succeeded");
    const runs = runsOf(e, uid);
    assert.equal(runs.get(workflowTaskId(uid, "bad")), 2, "two attempts of bad");
    assert.equal(runs.get(workflowTaskId(uid, "onFailure")), 1, "onFailure ran exactly once");
    assert.equal(runs.get(workflowTaskId(uid, "onExit")), 1, "onExit ran exactly once");
    assert.equal(runs.get(workflowTaskId(uid, "after-bad")), undefined, "a dependent of the failed step never ran");
    const hookRun = executions(e).find((x) => x.taskId === workflowTaskId(uid, "onFailure"));
    assert.equal(hookRun?.workflow?.name, "failing");
    assert.deepEqual(hookRun?.workflow?.failedSteps.map((s) => s.name), ["bad"]);
    await waitFor("a StepFailed Event", async () => {
      const ev = await e.kubectl(["get", "events", "--field-selector", "involvedObject.name=failing,reason=StepFailed", "-o", "jsonpath={.items[*].message}"]);
      return /\bbad\b/.test(ev.stdout);
    }, 10_000, 100);
  });

  it("retries from the failed step: only the failed and never-run steps run again, as generation 1", async () => {
    assert.ok(marker, "runs after the failing test");
    const before = await get(e, "failing");
    const uid = before.metadata.uid;
    rmSync(marker);
    const asked = Date.now();
    await requestRetry(e, "failing");
    const wf = await waitCondition(e, "failing", "Succeeded");
    // the re-run starts from the retry's own reconciles, every level of the DAG read at once, not
    // one level per 10 s re-read (a trial saw 10-15 s before that was fixed)
    const rerun = executions(e).find((x) => x.event === "start" && x.taskId === workflowTaskId(uid, "bad", 1));
    assert.ok(rerun && rerun.at - asked < 5000, `bad_g1 started ${rerun ? rerun.at - asked : "never"} ms after the retry request`);
    assert.equal(wf.metadata.uid, uid);
    assert.equal(wf.status?.retries, 1);
    assert.equal(wf.status?.phase, "Succeeded");
    assert.equal(condition(wf, "Failed")?.status, "False");
    assert.equal(step(wf, "first").generation ?? 0, 0, "a succeeded step keeps its run");
    assert.equal(step(wf, "side").generation ?? 0, 0);
    for (const name of ["bad", "after-bad", "last"]) {
      assert.equal(step(wf, name).phase, "Succeeded", name);
      assert.equal(step(wf, name).generation, 1, name);
    }
    const runs = runsOf(e, uid);
    const expected = new Map([
      [workflowTaskId(uid, "first"), 1],
      [workflowTaskId(uid, "side"), 1],
      [workflowTaskId(uid, "bad"), 2],
      [workflowTaskId(uid, "onFailure"), 1],
      [workflowTaskId(uid, "onExit"), 1],
      [workflowTaskId(uid, "bad", 1), 1],
      [workflowTaskId(uid, "after-bad", 1), 1],
      [workflowTaskId(uid, "last", 1), 1],
      [workflowTaskId(uid, "onExit", 1), 1],
    ]);
    assert.deepEqual(Object.fromEntries([...runs].sort()), Object.fromEntries([...expected].sort()));
    const last = wf.status?.result as { inputs: Record<string, unknown> };
    assert.deepEqual(Object.keys(last.inputs).sort(), ["after-bad", "side"]);
  });

  it("runs every step exactly once when the operator is SIGKILLed mid-workflow and restarted", async () => {
    const chain = Array.from({ length: 6 }, (_, i) => `    - {name: s${i}, task: wf.sleep, kwargs: {ms: 400}${i > 0 ? `, dependsOn: [s${i - 1}]` : ""}}`).join("\n");
    const fan = "    - {name: fan, task: wf.square, dependsOn: [s1], forEach: {items: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}}";
    const r = await e.apply(workflowYaml("restarts", `  steps:\n${chain}\n${fan}\n`));
    assert.equal(r.code, 0, r.stderr);
    await waitFor("s2 running", async () => (await get(e, "restarts")).status?.steps?.find((s) => s.name === "s2")?.phase === "Running", 60_000, 50);
    await e.platform.stopOperator(0, true); // SIGKILL mid-run
    const atKill = await get(e, "restarts");
    e.platform.startOperator(0);
    const wf = await waitCondition(e, "restarts", "Succeeded", 90);
    assert.notEqual(atKill.status?.phase, "Succeeded", "the operator was killed before the run ended");
    const uid = wf.metadata.uid;
    const runs = runsOf(e, uid);
    const ids = [...Array.from({ length: 6 }, (_, i) => workflowTaskId(uid, `s${i}`)), ...Array.from({ length: 20 }, (_, i) => workflowTaskId(uid, "fan", 0, i))];
    assert.deepEqual([...runs.keys()].sort(), ids.sort());
    assert.deepEqual([...runs.values()].filter((n) => n !== 1), [], "no step task ran twice");
  });

  it("keeps a finished step finished across an operator restart when its Queue was deleted meanwhile", async () => {
    assert.equal((await e.apply(workflowQueueYaml(e, "wf-gone"))).code, 0);
    const r = await e.apply(workflowYaml("outlives", `  steps:
    - {name: a, task: wf.node, queue: wf-gone}
    - {name: b, task: wf.sleep, kwargs: {ms: 1500}, dependsOn: [a]}
    - {name: c, task: wf.node, dependsOn: [b]}
`));
    assert.equal(r.code, 0, r.stderr);
    const running = await waitFor("a done, b running", async () => {
      const w = await get(e, "outlives");
      return w.status?.steps?.find((s) => s.name === "b")?.phase === "Running" ? w : undefined;
    }, 60_000, 50);
    const a = running!.status!.steps!.find((s) => s.name === "a")!;
    assert.equal(a.phase, "Succeeded");
    assert.equal((await e.kubectl(["delete", "queue", "wf-gone", "--wait=false"])).code, 0);
    await e.platform.stopOperator(0, true);
    e.platform.startOperator(0);
    const wf = await waitCondition(e, "outlives", "Succeeded", 90);
    assert.deepEqual(wf.status!.steps!.find((s) => s.name === "a"), a, "step a kept as it was: not Pending on a missing Queue, times unchanged");
    assert.deepEqual([...runsOf(e, wf.metadata.uid).values()], [1, 1, 1]);
  });

  it("starts nothing new when the same manifest is applied again (GitOps idempotence)", async () => {
    const before = await get(e, "diamond");
    const runsBefore = runsOf(e, before.metadata.uid);
    const again = await e.apply(DIAMOND);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /unchanged/);
    // a barrier: a Workflow applied after it has run, so the operator has seen the re-apply
    assert.equal((await e.apply(workflowYaml("barrier", "  steps:\n    - {name: only, task: wf.node, args: [only]}\n"))).code, 0);
    await waitCondition(e, "barrier", "Succeeded");
    const after = await get(e, "diamond");
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.equal(after.metadata.generation, before.metadata.generation);
    assert.equal(after.status?.completionTime, before.status?.completionTime);
    assert.deepEqual(runsOf(e, after.metadata.uid), runsBefore);
    const changed = await e.apply(DIAMOND.replace("args: [d]", "args: [dd]"));
    assert.notEqual(changed.code, 0, "the spec is immutable");
    assert.match(changed.stderr, /spec is immutable/);
  });

  it("fails a Workflow whose dependsOn has a cycle of three steps as InvalidSpec, naming the cycle, and runs nothing", async () => {
    const r = await e.apply(
      workflowYaml(
        "cyclic",
        `  steps:
    - {name: a, task: wf.node, dependsOn: [c]}
    - {name: b, task: wf.node, dependsOn: [a]}
    - {name: c, task: wf.node, dependsOn: [b]}
    - {name: free, task: wf.node}
`,
      ),
    );
    assert.equal(r.code, 0, `CEL cannot see a 3-cycle, so kubectl accepts it: ${r.stderr}`);
    const wf = await waitCondition(e, "cyclic", "Failed");
    assert.equal(condition(wf, "Failed")?.reason, "InvalidSpec");
    assert.match(wf.status?.message ?? "", /dependency cycle (a → c → b → a|c → b → a → c|b → a → c → b)/);
    assert.equal(runsOf(e, wf.metadata.uid).size, 0, "no step ran, not even the free one");
  });

  it("deletes a finished Workflow after ttlSecondsAfterFinished", async () => {
    assert.equal((await e.apply(workflowYaml("short-lived", "  ttlSecondsAfterFinished: 1\n  steps:\n    - {name: only, task: wf.node}\n"))).code, 0);
    const wf = await waitCondition(e, "short-lived", "Succeeded");
    const done = Date.parse(wf.status?.completionTime ?? "");
    await waitFor("short-lived deleted", async () => (await e.kubectl(["get", "workflow", "short-lived"])).code !== 0, 15_000, 100);
    assert.ok(Date.now() - done >= 1000, "not before its TTL");
  });

  it("fires Workflows from a Schedule's workflowTemplate, one at a time under Forbid, keeping the history limit", async () => {
    const r = await e.apply(`apiVersion: celeriac.io/v1alpha1
kind: Schedule
metadata:
  name: every-second
spec:
  schedule: "@every 1s"
  concurrencyPolicy: Forbid
  successfulTasksHistoryLimit: 2
  workflowTemplate:
    metadata:
      labels: {team: reports}
    spec:
      queue: ${QUEUE}
      steps:
        - {name: first, task: wf.node}
        - {name: second, task: wf.node, dependsOn: [first]}
`);
    assert.equal(r.code, 0, r.stderr);
    type Listed = { items: Array<{ metadata: { name: string; uid: string; labels?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string }> }; status?: { phase?: string } }> };
    const list = async (): Promise<Listed["items"]> => (JSON.parse((await e.kubectl(["get", "workflows", "-l", "celeriac.io/schedule=every-second", "-o", "json"])).stdout) as Listed).items;
    const uids = new Set<string>();
    // runs keep coming (≥ 4 seen), while at most 2 succeeded ones are kept
    await waitFor("four runs", async () => {
      for (const w of await list()) if (w.status?.phase === "Succeeded") uids.add(w.metadata.uid);
      return uids.size >= 4;
    }, 60_000, 200);
    assert.equal((await e.kubectl(["patch", "schedule", "every-second", "--type=merge", "-p", '{"spec":{"suspend":true}}'])).code, 0);
    const left = (await waitFor("history pruned to 2", async () => {
      const items = await list();
      return items.length > 0 && items.length <= 2 && items.every((w) => w.status?.phase === "Succeeded") ? items : undefined;
    }, 30_000, 200))!;
    for (const w of left) {
      assert.equal(w.metadata.labels?.team, "reports", "the template's labels");
      assert.equal(w.metadata.ownerReferences?.[0]?.kind, "Schedule");
    }
    // every run's steps ran once each
    for (const uid of uids) {
      const runs = runsOf(e, uid);
      assert.deepEqual([...runs.values()], [1, 1], `run ${uid}: ${JSON.stringify([...runs])}`);
    }
  });

  it("revokes a running step's task when its Workflow is deleted", async () => {
    assert.equal((await e.apply(workflowYaml("doomed", "  steps:\n    - {name: long, task: wf.sleep, kwargs: {ms: 60000}}\n"))).code, 0);
    const uid = (await get(e, "doomed")).metadata.uid;
    const id = workflowTaskId(uid, "long");
    await waitFor("long started", () => executions(e).some((x) => x.event === "start" && x.taskId === id), 60_000, 50);
    const deletedAt = Date.now();
    const d = await e.kubectl(["delete", "workflow", "doomed", "--wait=false"]);
    assert.equal(d.code, 0, d.stderr);
    const aborted = await waitFor("long aborted", () => executions(e).find((x) => x.event === "aborted" && x.taskId === id), 15_000, 50);
    assert.ok(aborted!.at - deletedAt < 5000, `aborted ${aborted!.at - deletedAt} ms after the delete`);
    await waitFor("doomed gone", async () => (await e.kubectl(["get", "workflow", "doomed"])).code !== 0, 15_000, 100);
  });
});

/**
 * Asks for a retry from the failed step with `celeriac workflow retry <name>` (it sets the
 * celeriac.io/retry annotation to now).
 */
async function requestRetry(e: E2E, name: string): Promise<void> {
  // asynchronously: the in-memory API server runs in this process and must answer the CLI
  const r = await runTool(process.execPath, [join(ROOT, "bin", "celeriac.js"), "workflow", "retry", name], { KUBECONFIG: e.platform.kubeconfigPath }, 30_000);
  assert.equal(r.code, 0, `celeriac workflow retry ${name}: ${r.stdout}${r.stderr}`);
}
