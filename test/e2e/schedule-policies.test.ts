/**
 * End-to-end: the Schedule policies that docs/schedules.md promises — concurrencyPolicy Forbid and
 * Replace with Tasks that outlive the interval, and startingDeadlineSeconds across an operator outage —
 * on the dev platform with the real kubectl. Everything is asserted on the world: the Tasks labelled
 * with the Schedule, its status and its Events (and, locally, the e2e tasks' execution log).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, REAL_CLUSTER, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

const SCHEDULE_LABEL = "celeriac.io/schedule";
const SCHEDULED_AT = "celeriac.io/scheduled-at";
const TERMINAL = new Set(["Succeeded", "Failed", "Cancelled", "Expired"]);

/** A Task of a Schedule as the tests see it. */
interface RunTask {
  name: string;
  uid: string;
  /** Nominal time from the scheduled-at annotation, ms. */
  nominal: number;
  /** metadata.creationTimestamp, ms (1 s resolution). */
  created: number;
  phase: string | undefined;
  /** status.completionTime, ms (NaN when unset). */
  completed: number;
  /** metadata.deletionTimestamp is set: a delete was requested (the finalizer revokes it). */
  deleting: boolean;
}

interface ScheduleStatusView {
  lastScheduleTime?: string;
  lastMissedTime?: string;
  missedRuns?: number;
  active?: Array<{ name: string }>;
}

interface ScheduleEventView {
  reason: string;
  message: string;
  type: string;
}

/** Active = a Task not being deleted that has not reached a terminal phase (no phase yet counts as active). */
const isActive = (t: RunTask) => !t.deleting && !TERMINAL.has(t.phase ?? "");

function scheduleYaml(name: string, spec: string, queue: string, task: string, kwargs = ""): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Schedule
metadata:
  name: ${name}
spec:
  schedule: "@every 2s"
${spec}  taskTemplate:
    spec:
      queue: ${queue}
      task: ${task}
${kwargs ? `      kwargs: ${kwargs}\n` : ""}`;
}

async function tasksOf(e: E2E, schedule: string): Promise<RunTask[]> {
  const r = await e.kubectl(["get", "tasks", "-l", `${SCHEDULE_LABEL}=${schedule}`, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  type Item = {
    metadata: { name: string; uid: string; creationTimestamp: string; deletionTimestamp?: string; annotations?: Record<string, string> };
    status?: { phase?: string; completionTime?: string };
  };
  return (JSON.parse(r.stdout) as { items: Item[] }).items
    .map((t) => ({
      name: t.metadata.name,
      uid: t.metadata.uid,
      nominal: Date.parse(t.metadata.annotations?.[SCHEDULED_AT] ?? "NaN"),
      created: Date.parse(t.metadata.creationTimestamp),
      phase: t.status?.phase,
      completed: Date.parse(t.status?.completionTime ?? "NaN"),
      deleting: Boolean(t.metadata.deletionTimestamp),
    }))
    .sort((a, b) => a.nominal - b.nominal);
}

async function statusOf(e: E2E, name: string): Promise<ScheduleStatusView> {
  const r = await e.kubectl(["get", "schedule", name, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { status?: ScheduleStatusView }).status ?? {};
}

async function eventsOf(e: E2E, name: string): Promise<ScheduleEventView[]> {
  const r = await e.kubectl(["get", "events", "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const items = (JSON.parse(r.stdout) as { items: Array<ScheduleEventView & { involvedObject: { kind: string; name: string } }> }).items;
  return items.filter((x) => x.involvedObject.kind === "Schedule" && x.involvedObject.name === name);
}

/** The run time an Event message names ("… the run at 2024-…Z: …"), ms. */
const runTimeOf = (message: string): number => Date.parse(/run at (\S+?):? /.exec(message)?.[1] ?? "NaN");

/**
 * Asserts every run on the 2 s grid from the first Task to the Schedule's cursor (newest of
 * lastScheduleTime and lastMissedTime) was either created or counted in status.missedRuns.
 */
async function assertAccounted(e: E2E, name: string): Promise<{ tasks: RunTask[]; missed: number; cursor: number }> {
  const s = await statusOf(e, name);
  const all = await tasksOf(e, name); // read after the status: every Task up to the cursor is there
  const cursor = Math.max(Date.parse(s.lastScheduleTime ?? "0"), Date.parse(s.lastMissedTime ?? "0"));
  const tasks = all.filter((t) => t.nominal <= cursor);
  const missed = s.missedRuns ?? 0;
  const slots = (cursor - tasks[0]!.nominal) / 2000 + 1;
  assert.equal(tasks.length + missed, slots, `${name}: ${tasks.length} Tasks + ${missed} missed = ${slots} runs since the first Task`);
  for (const t of tasks) assert.equal(t.name, `${name}-${t.nominal / 1000}`, "name is <schedule>-<unix seconds>");
  return { tasks, missed, cursor };
}

describe("Schedule policies end to end (one operator)", { timeout: 120_000 }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
    assert.equal((await e.apply(queueYaml("work", e.eventsLog))).code, 0);
    // A warm worker, so that Task run times below are the sleeps, not the worker's start-up.
    assert.equal((await e.apply(taskYaml("warm-up", "work", "e2e.echo"))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/warm-up", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
  });
  after(() => e?.stop());

  it("Forbid: while a 5 s Task is active no second Task is created; the skipped runs are counted and reported as JobAlreadyActive", async (t) => {
    const name = "forbid";
    const r = await e.apply(scheduleYaml(name, "  concurrencyPolicy: Forbid\n  successfulTasksHistoryLimit: 10\n", "work", "e2e.sleep", "{ms: 5000}"));
    assert.equal(r.code, 0, r.stderr);
    let maxActive = 0;
    // Until the first Task has finished and the next run after it has started.
    await waitFor("a second Task after the first one finished", async () => {
      const ts = await tasksOf(e, name);
      maxActive = Math.max(maxActive, ts.filter(isActive).length);
      assert.ok(maxActive <= 1, `active at once: ${ts.filter(isActive).map((t) => t.name).join(", ")}`);
      return ts.length >= 2 && ts[0]!.phase === "Succeeded";
    }, 40_000, 200);

    const { tasks, missed, cursor } = await assertAccounted(e, name);
    const [first, second] = tasks as [RunTask, RunTask];
    assert.equal(first.phase, "Succeeded");
    assert.ok(Number.isFinite(first.completed), "the first Task has a completionTime");
    // The 5 s sleep spans at least two 2 s runs, all skipped; the next Task is the first run after it finished.
    const skippedBetween = (second.nominal - first.nominal) / 2000 - 1;
    assert.ok(skippedBetween >= 2, `${skippedBetween} runs skipped while ${first.name} ran`);
    assert.ok(second.nominal >= first.completed - 1000, `${second.name} started before ${first.name} finished at ${new Date(first.completed).toISOString()}`);
    assert.ok(second.nominal - 2000 < first.completed + 1000, `${second.name}: the run after ${first.name} finished was not started (Forbid starts the next nominal run)`);
    assert.ok(missed >= skippedBetween, `status.missedRuns ${missed} counts the ${skippedBetween} skipped runs`);
    t.diagnostic(`${first.name} ran ${first.completed - first.nominal} ms; ${skippedBetween} runs skipped; next Task ${second.name}; missedRuns ${missed}`);

    const ev = await eventsOf(e, name);
    const skipped = ev.filter((x) => x.reason === "JobAlreadyActive");
    assert.ok(skipped.every((x) => x.type === "Warning"));
    const skippedAt = new Set(skipped.map((x) => runTimeOf(x.message)));
    for (let t = first.nominal + 2000; t < second.nominal; t += 2000) {
      const x = skipped.find((s) => runTimeOf(s.message) === t);
      assert.ok(x, `JobAlreadyActive Event for the run at ${new Date(t).toISOString()}; got ${[...skippedAt].map((v) => new Date(v).toISOString()).join(", ")}`);
      assert.match(x.message, new RegExp(`Task ${first.name} is still active and concurrencyPolicy is Forbid`));
    }
    assert.equal(skipped.filter((x) => runTimeOf(x.message) <= cursor).length, missed, "one JobAlreadyActive Event per missed run");
    assert.deepEqual(ev.filter((x) => x.reason === "MissSchedule").map((x) => x.message), [], "no run missed for another reason");
    assert.equal((await e.kubectl(["delete", "schedule", name, "--wait=false"])).code, 0);
  });

  it("Replace: each due run cancels the active long Task before creating the new one; never two active", async (t) => {
    const name = "replace";
    const r = await e.apply(scheduleYaml(name, "  concurrencyPolicy: Replace\n", "work", "e2e.sleep", "{ms: 60000}"));
    assert.equal(r.code, 0, r.stderr);
    const seen = new Map<string, RunTask>();
    let maxActive = 0;
    // Until the third Task: two replacements. Tasks sleep 60 s, so any that ends or disappears was replaced.
    await waitFor("three runs (two replacements)", async () => {
      const ts = await tasksOf(e, name);
      for (const t of ts) if (!seen.has(t.name) || t.phase) seen.set(t.name, t);
      const active = ts.filter(isActive);
      maxActive = Math.max(maxActive, active.length);
      assert.ok(active.length <= 1, `active at once: ${active.map((t) => t.name).join(", ")}`);
      return seen.size >= 3;
    }, 30_000, 100);
    const runs = [...seen.values()].sort((a, b) => a.nominal - b.nominal);
    for (let i = 1; i < runs.length; i++) assert.equal(runs[i]!.nominal - runs[i - 1]!.nominal, 2000, "every run starts: Replace skips none");
    const replaced = runs.slice(0, -1);
    const newest = runs[runs.length - 1]!;
    // The replaced Tasks end: deleted (their finalizer revokes the execution), or at most Cancelled.
    await waitFor("the replaced Tasks gone or Cancelled", async () => {
      const now = new Map((await tasksOf(e, name)).map((t) => [t.name, t]));
      return replaced.every((t) => !now.has(t.name) || now.get(t.name)!.phase === "Cancelled");
    }, 10_000, 100);
    const ev = await eventsOf(e, name);
    for (const t of replaced) {
      const cancel = ev.filter((x) => x.reason === "SuccessfulCancel" && x.message.includes(`Task ${t.name} `));
      assert.equal(cancel.length, 1, `one SuccessfulCancel Event for ${t.name}: ${cancel.map((x) => x.message).join(" | ")}`);
    }
    assert.ok(ev.some((x) => x.reason === "SuccessfulCreate" && x.message.includes(newest.name)));
    assert.deepEqual(ev.filter((x) => x.type === "Warning").map((x) => x.message), [], "no run missed: each due run started");
    const s = await statusOf(e, name);
    assert.ok((s.active ?? []).length <= 1, `status.active: ${JSON.stringify(s.active)}`);
    assert.equal(s.missedRuns ?? 0, 0);
    t.diagnostic(`runs: ${runs.map((x) => `${x.name} (last seen ${x.phase ?? "no phase"})`).join(", ")}`);
    if (!REAL_CLUSTER) {
      // The replaced Tasks had started in the worker (warm worker, 2 s interval) and were aborted there.
      const ran = replaced.filter((x) => x.phase === "Running");
      assert.ok(ran.length >= 1, "a replaced Task was seen Running");
      for (const x of ran) {
        await waitFor(`${x.name} aborted in the worker`, () => e.events().some((ev) => ev.event === "aborted" && ev.taskId === x.uid), 10_000, 100);
      }
      const log = e.events();
      assert.equal(log.filter((ev) => ev.event === "finish" && replaced.some((x) => x.uid === ev.taskId)).length, 0, "no replaced Task ran to its end");
      // Execution overlap is bounded by the revocation, which is asynchronous: report it.
      for (let i = 0; i + 1 < runs.length; i++) {
        const aborted = log.find((ev) => ev.event === "aborted" && ev.taskId === runs[i]!.uid)?.at;
        const next = log.find((ev) => ev.event === "start" && ev.taskId === runs[i + 1]!.uid)?.at;
        if (aborted !== undefined && next !== undefined) t.diagnostic(`${runs[i]!.name} aborted ${next - aborted} ms before ${runs[i + 1]!.name} started`);
      }
    }
    assert.equal((await e.kubectl(["delete", "schedule", name, "--wait=false"])).code, 0);
  });

  it("startingDeadlineSeconds with RunAll: after an outage, runs older than the deadline are recorded missed, not started", { skip: LOCAL_ONLY }, async (t) => {
    const name = "deadline";
    // Tasks on a Queue that does not exist stay Pending and are never pruned: every run stays countable.
    const r = await e.apply(scheduleYaml(name, "  missedRunPolicy: RunAll\n  missedRunsLimit: 10\n  startingDeadlineSeconds: 3\n", "nowhere", "e2e.echo"));
    assert.equal(r.code, 0, r.stderr);
    await waitFor("2 Tasks", async () => (await tasksOf(e, name)).length >= 2, 20_000, 200);
    await e.platform.stopOperator(0, true);
    const killedAt = Date.now();
    const beforeKill = await tasksOf(e, name);
    const lastBefore = beforeKill[beforeKill.length - 1]!.nominal;
    // Down for ~9 s, more than 3× the deadline: no Task appears meanwhile.
    await waitFor("9 s of downtime", async () => {
      assert.equal((await tasksOf(e, name)).length, beforeKill.length, "no Task while the operator is down");
      return Date.now() - killedAt >= 9000;
    }, 15_000, 250);
    const restartedAt = Date.now();
    e.platform.startOperator(0);
    await waitFor("a run after the restart", async () => (await tasksOf(e, name)).some((t) => t.nominal > restartedAt + 2000), 30_000, 250);

    const { tasks, missed } = await assertAccounted(e, name);
    // The outage: every grid run after the last one before the kill, up to the restart.
    const outage: number[] = [];
    for (let t = lastBefore + 2000; t <= restartedAt; t += 2000) outage.push(t);
    assert.ok(outage.length >= 4, `${outage.length} runs fell in the outage`);
    const ev = await eventsOf(e, name);
    const late = ev.filter((x) => x.reason === "MissSchedule" && /startingDeadlineSeconds/.test(x.message));
    assert.ok(late.every((x) => x.type === "Warning"));
    const lateAt = new Set(late.map((x) => runTimeOf(x.message)));
    const started = new Map(tasks.map((t) => [t.nominal, t]));
    for (const at of outage) {
      const task = started.get(at);
      // Each run of the outage is either started within the deadline, or missed with StartingDeadline — never both.
      assert.ok(Boolean(task) !== lateAt.has(at), `${new Date(at).toISOString()}: started ${Boolean(task)}, StartingDeadline Event ${lateAt.has(at)}`);
      if (task) assert.ok(task.created - at <= 4000, `${task.name} created ${task.created - at} ms after its time, past the 3 s deadline`);
    }
    // The oldest runs of the outage (> 3 s before the operator could be back) were missed, not started.
    const tooOld = outage.filter((at) => at < restartedAt - 3000);
    assert.ok(tooOld.length >= 2);
    for (const at of tooOld) assert.ok(lateAt.has(at) && !started.has(at), `${new Date(at).toISOString()} is older than the deadline: missed`);
    t.diagnostic(`outage runs ${outage.length}: ${outage.filter((at) => started.has(at)).length} started within the deadline, ${outage.filter((at) => lateAt.has(at)).length} missed (StartingDeadline); missedRuns ${missed}`);
    assert.ok(missed >= tooOld.length, `status.missedRuns ${missed}`);
    assert.equal(late.length, missed, "every missed run is a StartingDeadline one");
    assert.deepEqual(ev.filter((x) => x.reason === "MissSchedule" && !/startingDeadlineSeconds/.test(x.message)).map((x) => x.message), [], "RunAll starts every run within the deadline");
    assert.equal((await e.kubectl(["delete", "schedule", name, "--wait=false"])).code, 0);
  });
});
