/**
 * End-to-end (issue 18 Tests): operating a live queue from the shell. One local platform (in-memory
 * API server, operator process, nats-server, process kubelet) and one Queue `ops` with exactly 3
 * worker processes (autoscaling min = max = 3, concurrency 1) running test/fixtures/e2e/ops-tasks.ts,
 * holding tasks in every state at once — running (3 `ops.block` handlers, one per worker, waiting for
 * a release file, one of them a Task resource applied with kubectl), queued (behind them), delayed
 * (countdown), dead-lettered (100 `ops.import` tasks the workers do not register) and revoked —
 * asserted through the real CLI (`node bin/celeriac.js`, spawned asynchronously: the API server runs
 * in this process) and kubectl. Then progress is timed from `ctx.progress` to a client
 * `onProgress` watch and to the Task's `status.progress`, and the dead letters are replayed after the
 * workers roll to the fixed tasks module (ops-tasks-fixed.ts).
 *
 * Every handler appends its events to the events log, so runs are counted per task id across
 * worker processes. Measured figures are logged as one JSON line (`opsShellE2E`).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { connect, type CeleriacClient, type TaskHandle } from "../../client/index.js";
import { LABELS } from "../../api/constants.js";
import { queueNames } from "../../api/naming.js";
import type { QueueStatusOutput } from "../../api/queue-ops.js";
import type { TaskProgress } from "../../api/task.js";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { runTool, waitFor, type ToolRun } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

const NS = "default";
const QUEUE = "ops";
const BIN = join(REPO_ROOT, "bin", "celeriac.js");
const DEAD = 100;
const names = queueNames(NS, QUEUE);

/** The fields of `celeriac tasks get -o json` this test reads (docs/cli.md; cli/commands/tasks.ts TaskView). */
interface TaskView {
  id: string;
  task: string;
  origin: { kind: string; name?: string };
  phase?: string;
  attempts?: number;
  worker?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  argsSource?: string;
  error?: { type: string; message: string };
  deadLettered?: boolean;
  timeline: Array<{ time: string; event: string }>;
  revokedAt?: string;
  record?: { status: { progress?: TaskProgress } };
}

/** The Queue: 3 workers exactly, one task at a time each, running tasks module `module`. */
function opsQueue(e: E2E, module: "ops-tasks" | "ops-tasks-fixed"): string {
  return queueYaml(QUEUE, e.eventsLog, "  concurrency: 1\n", "    minReplicas: 3\n    maxReplicas: 3\n")
    .replace("/fixtures/e2e/tasks.js", `/fixtures/e2e/${module}.js`)
    .replace("    command:", "    terminationGracePeriodSeconds: 10\n    command:");
}

interface Pod {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  status?: { conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ containerID?: string }> };
}

/** The queue's worker Pods, straight from the dev API server. */
async function workerPods(e: E2E): Promise<Pod[]> {
  const r = await fetch(`${e.platform.apiUrl}/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(`${LABELS.queue}=${QUEUE}`)}`);
  return ((await r.json()) as { items?: Pod[] }).items ?? [];
}

const isReady = (p: Pod) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
const pidOf = (p: Pod) => Number(/local:\/\/(\d+)/.exec(p.status?.containerStatuses?.[0]?.containerID ?? "")?.[1] ?? NaN);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A Task resource's status, straight from the dev API server. */
async function taskStatus(e: E2E, name: string): Promise<{ phase?: string; progress?: TaskProgress } | undefined> {
  const r = await fetch(`${e.platform.apiUrl}/apis/celeriac.io/v1alpha1/namespaces/${NS}/tasks/${name}`);
  if (!r.ok) return undefined;
  return ((await r.json()) as { status?: { phase?: string; progress?: TaskProgress } }).status;
}

/** Writes `text` to `path` atomically (the handler polls it). */
function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

describe("when a queue's tasks are operated from the shell", { timeout: 180_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  let client: CeleriacClient;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let cwd: string;
  let flags: string[];
  const figures: Record<string, unknown> = {};
  /** Control-file prefixes of the blocking handlers, by task id. */
  const ctl = new Map<string, string>();
  let taskUid = "";
  const TASK_NAME = "ops-block-task";
  const blockers: TaskHandle[] = [];
  const queued: TaskHandle[] = [];
  let revoked: TaskHandle;
  let delayed: TaskHandle;

  /** `celeriac <args> <flags>` as a user runs it, with none of this process's CELERIAC_* or KUBECONFIG. */
  const celeriac = (args: string[]): Promise<ToolRun> =>
    runTool(process.execPath, [BIN, ...args, ...flags], {}, 60_000, { cwd, dropEnv: (k) => k.startsWith("CELERIAC_") || k === "KUBECONFIG" });

  /** `celeriac <args> -o json`, parsed; fails the test on a non-zero exit. */
  const celeriacJson = async <T>(args: string[]): Promise<T> => {
    const r = await celeriac([...args, "-o", "json"]);
    assert.equal(r.code, 0, `celeriac ${args.join(" ")}: exit ${r.code}\n${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };

  /** Start events per task id in the events log. */
  const starts = (): Map<string, number> => {
    const m = new Map<string, number>();
    for (const x of e.events()) if (x.event === "start") m.set(x.taskId, (m.get(x.taskId) ?? 0) + 1);
    return m;
  };

  const streamMessages = async (stream: string) => (await jsm.streams.info(stream)).state.messages;

  /** Waits until the Deployment's 3 Ready Pods all run `module`'s template and no other worker process is left. */
  const waitWorkers = async (what: string, oldPids: number[] = []): Promise<Pod[]> =>
    waitFor<Pod[] | undefined>(what, async () => {
      const pods = await workerPods(e);
      const ready = pods.filter(isReady);
      const hashes = new Set(pods.map((p) => p.metadata.labels?.["pod-template-hash"]));
      return pods.length === 3 && ready.length === 3 && hashes.size === 1 && !oldPids.some(alive) ? pods : undefined;
    }, 60_000, 100) as Promise<Pod[]>;

  before(async () => {
    const t0 = Date.now();
    e = await startE2E();
    cwd = mkdtempSync(join(tmpdir(), "celeriac-ops-cwd-"));
    flags = ["-n", NS, "--queue", QUEUE, "--nats", e.platform.natsUrl];
    const r = await e.apply(opsQueue(e, "ops-tasks"));
    assert.equal(r.code, 0, r.stderr);
    await waitWorkers("3 ready workers");
    figures.platformAndWorkersMs = Date.now() - t0;
    client = await connect({ servers: e.platform.natsUrl, namespace: NS, queue: QUEUE });
    nc = await natsConnect({ servers: e.platform.natsUrl });
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
    console.log(JSON.stringify({ opsShellE2E: figures }));
    for (const p of ctl.values()) {
      try {
        writeFileSync(`${p}.release`, "");
      } catch {
        // the platform dir is gone already
      }
    }
    await client?.close();
    await nc?.close();
    await e?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it(`dead-letters ${DEAD} tasks of a task name the workers do not register, and dlq list shows them`, async () => {
    const handles = await client.enqueueMany(Array.from({ length: DEAD }, (_, i) => ({ name: "ops.import", args: [i], options: { taskId: `imp-${i}` } })));
    assert.equal(handles.length, DEAD);
    await waitFor(`${DEAD} dead letters`, async () => (await streamMessages(names.deadLetterStream)) === DEAD, 30_000, 100);
    const list = await celeriacJson<{ items: Array<{ seq: number; id: string; task: string; reason: string; attempts: number; error?: string }> }>(["dlq", "list"]);
    assert.equal(list.items.length, DEAD);
    assert.deepEqual(new Set(list.items.map((d) => d.id)), new Set(handles.map((h) => h.id)));
    for (const d of list.items) {
      assert.equal(d.task, "ops.import", `dead letter ${d.seq}`);
      assert.equal(d.reason, "UnknownTask", `dead letter ${d.seq}`);
      assert.equal(d.attempts, 1, `dead letter ${d.seq}`);
      assert.match(d.error ?? "", /ops\.import/, `dead letter ${d.seq}`);
    }
    assert.equal(starts().size, 0, "no handler ran");
  });

  it("holds running, queued, delayed, dead-lettered and revoked tasks at once, and tasks get shows each", async () => {
    // running: a Task resource and two client tasks, one per worker (concurrency 1)
    const dir = e.dir;
    const taskCtl = join(dir, "ctl-task");
    const ta = await e.apply(taskYaml(TASK_NAME, QUEUE, "ops.block", `  kwargs:\n    ctl: ${taskCtl}\n`));
    assert.equal(ta.code, 0, ta.stderr);
    taskUid = (await e.kubectl(["get", "task", TASK_NAME, "-o", "jsonpath={.metadata.uid}"])).stdout;
    assert.ok(taskUid, "the Task has a uid");
    ctl.set(taskUid, taskCtl);
    for (const id of ["run-1", "run-2"]) {
      ctl.set(id, join(dir, `ctl-${id}`));
      blockers.push(await client.enqueue("ops.block", [], { ctl: ctl.get(id) }, { taskId: id }));
    }
    blockers.push(client.get(taskUid));
    await waitFor("3 Running records", async () => (await Promise.all(blockers.map((h) => h.status()))).every((s) => s?.phase === "Running"), 30_000, 50);
    // queued behind them (every slot is taken), one of them revoked before it starts; delayed by a countdown
    for (const id of ["q-1", "rev-1", "q-2", "q-3"]) {
      const h = await client.enqueue("ops.quick", [id], {}, { taskId: id });
      if (id === "rev-1") revoked = h;
      else queued.push(h);
    }
    delayed = await client.enqueue("ops.quick", ["later"], {}, { taskId: "del-1", countdownSeconds: 600 });
    const rv = await celeriac(["tasks", "revoke", "rev-1"]);
    assert.equal(rv.code, 0, rv.stderr);
    assert.match(rv.stdout, /task rev-1 revoked/);

    const pods = (await workerPods(e)).map((p) => p.metadata.name);
    const [run1, run2, task, q1, del1, dead0, rev1, runningList] = await Promise.all([
      celeriacJson<TaskView>(["tasks", "get", "run-1"]),
      celeriacJson<TaskView>(["tasks", "get", "run-2"]),
      celeriacJson<TaskView>(["tasks", "get", taskUid]),
      celeriacJson<TaskView>(["tasks", "get", "q-1"]),
      celeriacJson<TaskView>(["tasks", "get", "del-1"]),
      celeriacJson<TaskView>(["tasks", "get", "imp-0"]),
      celeriacJson<TaskView>(["tasks", "get", "rev-1"]),
      celeriacJson<{ items: Array<{ id: string; status: { phase: string; worker?: string } }> }>(["tasks", "list", "--state", "Running"]),
    ]);

    // running: phase, attempt, the worker (a pod of the queue, a different one each), timeline
    for (const v of [run1, run2, task]) {
      assert.equal(v.phase, "Running", v.id);
      assert.equal(v.attempts, 1, v.id);
      assert.equal(v.task, "ops.block", v.id);
      assert.ok(pods.includes(v.worker ?? ""), `${v.id} runs on ${v.worker}, not one of the queue's pods ${pods.join(", ")}`);
      assert.deepEqual(v.timeline.map((t) => t.event).slice(0, 2), ["Queued", "Started (attempt 1)"], v.id);
      assert.deepEqual(v.kwargs, { ctl: ctl.get(v.id) }, v.id);
    }
    assert.equal(new Set([run1.worker, run2.worker, task.worker]).size, 3, "one running task per worker");
    assert.equal(task.origin.kind, "Task");
    assert.equal(task.origin.name, TASK_NAME);
    assert.deepEqual(runningList.items.map((r) => r.id).sort(), [run1.id, run2.id, taskUid].sort(), "tasks list --state Running lists exactly the running tasks");

    // queued and delayed: no record yet, found in the work and delayed streams
    assert.equal(q1.phase, "Queued");
    assert.equal(q1.attempts, undefined);
    assert.equal(q1.worker, undefined);
    assert.equal(q1.argsSource, "queued-message");
    assert.deepEqual(q1.args, ["q-1"]);
    assert.match(q1.timeline[0]!.event, /Enqueued/);
    assert.equal(del1.argsSource, "queued-message");
    assert.deepEqual(del1.args, ["later"]);
    assert.equal(del1.worker, undefined);
    assert.equal(await streamMessages(names.delayedStream), 1, "the delayed task waits in the delayed stream");

    // dead-lettered: Failed, UnknownTask, args from the dead-letter stream
    assert.equal(dead0.phase, "Failed");
    assert.equal(dead0.deadLettered, true);
    assert.equal(dead0.attempts, 1);
    assert.equal(dead0.error?.type, "UnknownTaskError");
    assert.equal(dead0.argsSource, "dead-letter");
    assert.deepEqual(dead0.args, [0]);
    assert.ok(dead0.timeline.some((t) => t.event === "Failed"), JSON.stringify(dead0.timeline));

    // revoked before it started: Cancelled, with the revoke in its timeline
    assert.equal(rev1.phase, "Cancelled");
    assert.ok(rev1.revokedAt, "revokedAt");
    assert.ok(rev1.timeline.some((t) => t.event === "Revoke requested"), JSON.stringify(rev1.timeline));

    // the table form of a running task names its phase and worker
    const table = await celeriac(["tasks", "get", "run-1"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Phase:\s+Running$/m);
    assert.match(table.stdout, new RegExp(`^Worker:\\s+${run1.worker}$`, "m"));
    assert.match(table.stdout, /^Timeline:$/m);
  });

  it("inspect shows each of the 3 workers running its task and the delayed task; queue status counts the same state", async () => {
    const [ping, active, scheduled, st] = await Promise.all([
      celeriacJson<{ items: Array<{ worker: string; answered: boolean; status: string }> }>(["inspect", "ping", "--timeout", "5"]),
      celeriacJson<{ items: Array<{ worker: string; active?: Array<{ id: string; task: string; attempt: number }> }> }>(["inspect", "active", "--timeout", "5"]),
      celeriacJson<{ items: Array<{ id: string; task: string }> }>(["inspect", "scheduled"]),
      celeriacJson<QueueStatusOutput>(["queue", "status", QUEUE, "--sample", "0"]),
    ]);
    const pods = (await workerPods(e)).map((p) => p.metadata.name).sort();
    assert.deepEqual(ping.items.map((w) => w.worker).sort(), pods, "inspect ping lists the queue's 3 worker pods");
    assert.deepEqual(ping.items.filter((w) => !w.answered || w.status !== "ok"), [], "every worker answers");
    assert.deepEqual(active.items.map((w) => w.active?.length ?? 0), [1, 1, 1], "one running task per worker (concurrency 1)");
    assert.deepEqual(active.items.flatMap((w) => w.active ?? []).map((t) => t.id).sort(), ["run-1", "run-2", taskUid].sort());
    assert.deepEqual(active.items.flatMap((w) => w.active ?? []).map((t) => [t.task, t.attempt]), [["ops.block", 1], ["ops.block", 1], ["ops.block", 1]]);
    assert.deepEqual(scheduled.items.map((t) => [t.id, t.task]), [["del-1", "ops.quick"]]);
    // 4 queued messages (rev-1's too, until a worker takes and drops it), 3 running, 1 delayed, the dead letters
    assert.deepEqual(
      { backlog: st.backlog, inFlight: st.inFlight, delayed: st.delayed, dead: st.dead, workers: st.workers, paused: st.paused },
      { backlog: 4, inFlight: 3, delayed: 1, dead: DEAD, workers: 3, paused: false },
    );
  });

  it("tasks get tells a delayed task from a queued one: it shows its ETA", async () => {
    const info = await jsm.streams.info(names.delayedStream);
    const msg = await jsm.streams.getMessage(names.delayedStream, { seq: info.state.first_seq });
    const eta = (JSON.parse(new TextDecoder().decode(msg!.data)) as { eta?: string }).eta;
    assert.ok(eta, "the delayed message has an eta");
    const json = await celeriac(["tasks", "get", delayed.id, "-o", "json"]);
    assert.ok(json.stdout.includes(eta), `tasks get -o json names the eta ${eta}: ${json.stdout}`);
    const table = await celeriac(["tasks", "get", delayed.id]);
    assert.ok(table.stdout.includes(eta), `tasks get names the eta ${eta}:\n${table.stdout}`);
  });

  it("tasks get of a task revoked while queued keeps its task name", async () => {
    const v = await celeriacJson<TaskView>(["tasks", "get", revoked.id]);
    assert.equal(v.task, "ops.quick");
  });

  it("delivers a running task's progress to a client onProgress watch and to its Task's status.progress within 1 s", async () => {
    const seenClient = new Map<number, number>();
    const seenTask = new Map<number, number>();
    const clientLatency: number[] = [];
    const taskLatency: number[] = [];
    const sub = client.get(taskUid).onProgress((p) => {
      if (p.done !== undefined && !seenClient.has(p.done)) {
        seenClient.set(p.done, Date.now());
        clientLatency.push(Date.now() - Date.parse(p.updatedAt));
      }
    });
    let polling = true;
    const poller = (async () => {
      for (let i = 0; polling && i < 2000; i++) {
        const at = Date.now();
        const p = (await taskStatus(e, TASK_NAME))?.progress;
        if (p?.done !== undefined && !seenTask.has(p.done)) {
          seenTask.set(p.done, at);
          taskLatency.push(at - Date.parse(p.updatedAt));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      // the pauses put the reports at different points of the sinks' rate-limit windows (250 ms KV, 500 ms Task)
      const pauses = [0, 0, 100, 250, 400, 0];
      for (let k = 1; k <= pauses.length; k++) {
        writeAtomic(`${ctl.get(taskUid)}.progress`, JSON.stringify({ done: k, total: 10, n: k }));
        await waitFor(`progress ${k}/10 on the client watch and on the Task`, () => seenClient.has(k) && seenTask.has(k), 5000, 10);
        await new Promise((r) => setTimeout(r, pauses[k - 1]));
      }
    } finally {
      polling = false;
      await poller;
      sub();
    }
    figures.progressClientMs = { max: Math.max(...clientLatency), all: clientLatency };
    figures.progressTaskResourceMs = { max: Math.max(...taskLatency), all: taskLatency, pollEveryMs: 20 };
    assert.ok(Math.max(...clientLatency) < 1000, `client watch latency ${clientLatency.join(", ")} ms`);
    assert.ok(Math.max(...taskLatency) < 1000, `Task status.progress latency ${taskLatency.join(", ")} ms`);
    // the record keeps the handler's metadata; kubectl's Progress column shows the last report
    const v = await celeriacJson<TaskView>(["tasks", "get", taskUid]);
    assert.equal(v.record?.status.progress?.display, "6/10");
    assert.deepEqual(v.record?.status.progress?.meta, { n: 6 });
    const col = await e.kubectl(["get", "task", TASK_NAME]);
    assert.match(col.stdout.split("\n")[0] ?? "", /PROGRESS/);
    assert.match(col.stdout, /6\/10/);
  });

  it("tasks get and result take a Task resource's name (its task id is its uid), read through the kubeconfig", async () => {
    const r = await runTool(process.execPath, [BIN, "tasks", "get", TASK_NAME, "-o", "json", ...flags], { KUBECONFIG: e.platform.kubeconfigPath }, 60_000, { cwd, dropEnv: (k) => k.startsWith("CELERIAC_") || k === "KUBECONFIG" });
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout) as TaskView;
    assert.equal(v.id, taskUid);
    assert.equal(v.origin.name, TASK_NAME);
    const without = await celeriac(["tasks", "get", TASK_NAME]);
    assert.equal(without.code, 1, "without a kubeconfig the name is not found");
    assert.match(without.stderr, /nor a Task resource of that name.*a Task resource's task id is its uid/);
  });

  it("tasks get shows a running task's progress", async () => {
    const table = await celeriac(["tasks", "get", taskUid]);
    assert.match(table.stdout, /^Progress:\s+6\/10/m);
  });

  it("pauses the queue: the running tasks finish, nothing queued starts, the workers stay and the Queue says paused; resume runs the rest", async () => {
    const p = await celeriacJson<{ paused: boolean; changed: boolean }>(["queue", "pause", QUEUE, "--reason", "e2e"]);
    assert.deepEqual([p.paused, p.changed], [true, true]);
    await waitFor("the Queue's status.paused", async () => (await e.kubectl(["get", "queue", QUEUE, "-o", "jsonpath={.status.paused.at}"])).stdout !== "", 10_000, 100);
    for (const c of ctl.values()) writeFileSync(`${c}.release`, "");
    await waitFor("the running tasks finished", async () => (await Promise.all(blockers.map((h) => h.status()))).every((s) => s?.phase === "Succeeded"), 30_000, 50);
    // every slot is free now: without the pause the queued tasks would start during status's 1 s sample
    const st = await celeriacJson<QueueStatusOutput>(["queue", "status", QUEUE, "--sample", "1"]);
    assert.equal(st.paused, true);
    assert.equal(st.pausedReason, "e2e");
    assert.equal((st.backlog ?? 0) + (st.inFlight ?? 0), 4, "the 4 queued messages wait (one may sit on a worker, not started)");
    const s = starts();
    assert.deepEqual(queued.filter((h) => s.has(h.id)).map((h) => h.id), [], "no queued task started while paused");
    assert.equal((await workerPods(e)).length, 3, "pausing keeps the workers");
    const again = await celeriac(["queue", "pause", QUEUE]);
    assert.equal(again.code, 0, again.stderr);
    const r = await celeriacJson<{ paused: boolean; changed: boolean }>(["queue", "resume", QUEUE]);
    assert.deepEqual([r.paused, r.changed], [false, true]);
  });

  it("runs the queued tasks once the running ones finish, and never the revoked one", async () => {
    for (const p of ctl.values()) writeFileSync(`${p}.release`, "");
    const outcomes = await Promise.allSettled([...blockers, ...queued].map((h) => h.result({ timeoutMs: 30_000 })));
    assert.deepEqual(outcomes.filter((o) => o.status === "rejected").map((o) => String((o as PromiseRejectedResult).reason)), []);
    await waitFor("the work stream drained", async () => (await streamMessages(names.stream)) === 0, 10_000, 50);
    assert.equal((await revoked.status())?.phase, "Cancelled");
    const s = starts();
    assert.equal(s.get(revoked.id), undefined, "the revoked task never ran");
    for (const h of [...blockers, ...queued]) assert.equal(s.get(h.id), 1, `${h.id} ran once`);
    assert.equal(s.get(delayed.id), undefined, "the delayed task waits for its countdown");
    assert.equal((await taskStatus(e, TASK_NAME))?.phase, "Succeeded");
  });

  it(`replays the ${DEAD} dead letters once the workers run the fixed tasks module: each succeeds once and the dead letters are removed`, async () => {
    const oldPids = (await workerPods(e)).map(pidOf);
    const tRoll = Date.now();
    const r = await e.apply(opsQueue(e, "ops-tasks-fixed"));
    assert.equal(r.code, 0, r.stderr);
    const pods = await waitWorkers("the workers rolled to the fixed tasks module", oldPids);
    figures.rolloutMs = Date.now() - tRoll;
    assert.ok(pods.every((p) => !oldPids.includes(pidOf(p))), "every worker process is new");

    const t0 = Date.now();
    const rp = await celeriacJson<{ items: Array<{ seq: number; id: string; replayId: string; outcome: string; removed: boolean }> }>(["dlq", "replay", "--all", "--remove"]);
    figures.replayCommandMs = Date.now() - t0;
    assert.equal(rp.items.length, DEAD);
    assert.deepEqual(rp.items.filter((o) => o.outcome !== "Replayed" || !o.removed), [], "every dead letter replayed and removed");
    assert.deepEqual(rp.items.filter((o) => o.replayId !== `${o.id}-r${o.seq}`), [], "each replay's id names its dead letter");
    const replays = rp.items.map((o) => client.get(o.replayId));
    const done = await Promise.allSettled(replays.map((h) => h.result({ timeoutMs: 30_000 })));
    figures.replay100Ms = Date.now() - t0;
    assert.deepEqual(done.filter((o) => o.status === "rejected").map((o) => String((o as PromiseRejectedResult).reason)).slice(0, 3), [], "every replay succeeded");

    // each dead-lettered item ran exactly once, under its replay id
    const runs = new Map<number, number>();
    for (const x of e.events() as Array<{ event: string; taskId: string; item?: number }>) if (x.event === "start" && x.item !== undefined) runs.set(x.item, (runs.get(x.item) ?? 0) + 1);
    assert.deepEqual(Array.from({ length: DEAD }, (_, i) => runs.get(i) ?? 0).map((n, i) => [i, n]).filter(([, n]) => n !== 1), [], "each item ran exactly once");
    const s = starts();
    assert.deepEqual(replays.filter((h) => s.get(h.id) !== 1).map((h) => h.id), [], "each replay ran once");

    assert.equal(await streamMessages(names.deadLetterStream), 0);
    const empty = await celeriac(["dlq", "list"]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, "");
    assert.match(empty.stderr, /No dead letters in queue default\/ops/);
    assert.deepEqual((await celeriacJson<{ items: unknown[] }>(["dlq", "list"])).items, []);

    // with the dead letter gone, a replay still names the task and dead letter it replays
    const first = rp.items[0]!;
    const v = await celeriacJson<TaskView & { retryOf?: string; replayOf?: { stream: string; seq: number } }>(["tasks", "get", first.replayId]);
    assert.equal(v.phase, "Succeeded");
    assert.equal(v.retryOf, first.id);
    assert.deepEqual(v.replayOf, { stream: names.deadLetterStream, seq: first.seq });
  });
});
