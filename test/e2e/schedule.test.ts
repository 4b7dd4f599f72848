/**
 * End-to-end: Schedules on the dev platform (operator child processes, in-memory API server, nats-server,
 * process kubelet) driven with the real kubectl. Tasks of most Schedules target a Queue that does not
 * exist, so they stay Pending and are never deleted by the history limits: every run stays countable.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../helpers/k8s-tools.js";
import { HA_OPERATOR_ARGS, LOCAL_ONLY, leaseHolder, queueYaml, startE2E, type E2E } from "./helpers.js";

const SCHEDULE_LABEL = "celeriac.io/schedule";
const SCHEDULED_AT = "celeriac.io/scheduled-at";

/** A Task as the tests see it. */
interface RunTask {
  name: string;
  /** Nominal time from the scheduled-at annotation, ms. */
  nominal: number;
  /** metadata.creationTimestamp, ms (1 s resolution). */
  created: number;
  phase: string | undefined;
}

interface ScheduleObj {
  metadata: { name: string; generation: number; creationTimestamp: string };
  status?: {
    lastScheduleTime?: string;
    lastMissedTime?: string;
    nextScheduleTime?: string;
    missedRuns?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

function scheduleYaml(name: string, schedule: string, extra = "", queue = "nowhere", task = "e2e.echo"): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Schedule
metadata:
  name: ${name}
spec:
  schedule: "${schedule}"
${extra}  taskTemplate:
    spec:
      queue: ${queue}
      task: ${task}
`;
}

async function tasksOf(e: E2E, schedule: string): Promise<RunTask[]> {
  const r = await e.kubectl(["get", "tasks", "-l", `${SCHEDULE_LABEL}=${schedule}`, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const items = (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string; creationTimestamp: string; annotations?: Record<string, string> }; status?: { phase?: string } }> }).items;
  return items
    .map((t) => ({
      name: t.metadata.name,
      nominal: Date.parse(t.metadata.annotations?.[SCHEDULED_AT] ?? "NaN"),
      created: Date.parse(t.metadata.creationTimestamp),
      phase: t.status?.phase,
    }))
    .sort((a, b) => a.nominal - b.nominal);
}

async function scheduleOf(e: E2E, name: string): Promise<ScheduleObj> {
  const r = await e.kubectl(["get", "schedule", name, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ScheduleObj;
}

async function eventsOf(e: E2E, name: string): Promise<Array<{ reason: string; message: string; type: string }>> {
  const r = await e.kubectl(["get", "events", "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const items = (JSON.parse(r.stdout) as { items: Array<{ reason: string; message: string; type: string; involvedObject: { kind: string; name: string } }> }).items;
  return items.filter((x) => x.involvedObject.kind === "Schedule" && x.involvedObject.name === name);
}

const ready = (s: ScheduleObj) => s.status?.conditions?.find((c) => c.type === "Ready");

/** Task names created by the operators (their "Created scheduled task" log lines), with how often each was created. */
function createdInLogs(e: E2E, replicas: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < replicas; i++) {
    for (const line of readFileSync(join(e.dir, "logs", `operator-${i}.log`), "utf8").split("\n")) {
      if (!line.includes("Created scheduled task")) continue;
      const task = (JSON.parse(line) as { task: string }).task;
      counts.set(task, (counts.get(task) ?? 0) + 1);
    }
  }
  return counts;
}

/** Asserts the identity rules: name `<schedule>-<unix seconds of the nominal time>`, one Task per nominal time. */
function assertIdentity(schedule: string, tasks: RunTask[]): void {
  for (const t of tasks) {
    assert.ok(Number.isFinite(t.nominal), `${t.name} has a ${SCHEDULED_AT} annotation`);
    assert.equal(t.name, `${schedule}-${t.nominal / 1000}`, "name is <schedule>-<unix seconds>");
  }
  assert.equal(new Set(tasks.map((t) => t.nominal)).size, tasks.length, "no two Tasks for one nominal time");
}

/**
 * Asserts that every run on the `intervalMs` grid from the first Task to the Schedule's cursor
 * (newest of lastScheduleTime and lastMissedTime) was either created or counted as missed.
 * @returns the Tasks up to the cursor and status.missedRuns
 */
async function assertAccounted(e: E2E, name: string, intervalMs: number): Promise<{ tasks: RunTask[]; missed: number }> {
  const s = await scheduleOf(e, name);
  const tasks = await tasksOf(e, name); // read after the status: every Task up to the cursor is there
  const cursor = Math.max(Date.parse(s.status?.lastScheduleTime ?? "0"), Date.parse(s.status?.lastMissedTime ?? "0"));
  const upTo = tasks.filter((t) => t.nominal <= cursor);
  const missed = s.status?.missedRuns ?? 0;
  const slots = (cursor - upTo[0]!.nominal) / intervalMs + 1;
  assert.equal(upTo.length + missed, slots, `${name}: ${upTo.length} Tasks + ${missed} missed = ${slots} runs since the first Task`);
  return { tasks: upTo, missed };
}

describe("when a Schedule is applied with kubectl (one operator)", { timeout: 150_000 }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
    const r = await e.apply(queueYaml("work", e.eventsLog));
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => e?.stop());

  it("creates a Task every 2 s for 20 s, on time, named by the nominal time, running on the Queue", async () => {
    const r = await e.apply(scheduleYaml("tick", "@every 2s", "  successfulTasksHistoryLimit: 50\n", "work"));
    assert.equal(r.code, 0, r.stderr);
    const created = Date.parse((await scheduleOf(e, "tick")).metadata.creationTimestamp);
    const windowEnd = created + 20_000;
    // Poll while the window runs; note when each Task is first seen.
    const seen = new Map<string, number>();
    await waitFor("the 20 s window", async () => {
      for (const t of await tasksOf(e, "tick")) if (!seen.has(t.name)) seen.set(t.name, Date.now());
      return Date.now() > windowEnd + 1500;
    }, 40_000, 250);
    const tasks = (await tasksOf(e, "tick")).filter((t) => t.nominal <= windowEnd);
    assert.ok(Math.abs(tasks.length - 10) <= 1, `${tasks.length} Tasks in 20 s`);
    assertIdentity("tick", tasks);
    for (const t of tasks) {
      assert.ok(t.nominal > created - 1000, `${t.name} is not before the Schedule`);
      assert.ok(t.nominal % 2000 === 0, `${t.name} is on the 2 s grid`);
      assert.ok(t.created - t.nominal >= 0 && t.created - t.nominal <= 1000, `${t.name} created ${t.created - t.nominal} ms after its nominal time`);
      const firstSeen = seen.get(t.name);
      if (firstSeen !== undefined) assert.ok(firstSeen - t.nominal < 2500, `${t.name} first seen by kubectl ${firstSeen - t.nominal} ms after its nominal time`);
    }
    // Consecutive: no run skipped.
    for (let i = 1; i < tasks.length; i++) assert.equal(tasks[i]!.nominal - tasks[i - 1]!.nominal, 2000);
    const s = await scheduleOf(e, "tick");
    assert.equal(ready(s)?.status, "True");
    assert.equal(ready(s)?.reason, "Scheduled");
    assert.equal(s.status?.missedRuns ?? 0, 0);
    assert.ok(Date.parse(s.status!.nextScheduleTime!) > Date.parse(s.status!.lastScheduleTime!));
    // The Tasks really run.
    await waitFor("the first Tasks Succeeded", async () => (await tasksOf(e, "tick")).slice(0, 3).every((t) => t.phase === "Succeeded"), 60_000, 250);
    assert.equal((await e.kubectl(["delete", "schedule", "tick"])).code, 0);
  });

  it("after a SIGKILL restart of the operator, creates no duplicate and records the missed runs per missedRunPolicy", { skip: LOCAL_ONLY }, async () => {
    const policies = { "miss-latest": "RunLatest", "miss-skip": "Skip", "miss-all": "RunAll" } as const;
    for (const [name, policy] of Object.entries(policies)) {
      const r = await e.apply(scheduleYaml(name, "@every 2s", `  missedRunPolicy: ${policy}\n`));
      assert.equal(r.code, 0, r.stderr);
    }
    const names = Object.keys(policies);
    await waitFor("2 Tasks per Schedule", async () => (await Promise.all(names.map((n) => tasksOf(e, n)))).every((t) => t.length >= 2), 20_000, 200);
    await e.platform.stopOperator(0, true);
    const killedAt = Date.now();
    const before = await Promise.all(names.map((n) => tasksOf(e, n)));
    // The newest run each Schedule made before the kill (the same 2 s grid for all three).
    const lastBefore = Math.max(...before.flat().map((t) => t.nominal));
    assert.ok(before.every((ts) => ts[ts.length - 1]!.nominal >= lastBefore - 2000));
    // Down for ~5 s: no Task appears meanwhile.
    await waitFor("5 s of downtime", async () => {
      const now = await Promise.all(names.map((n) => tasksOf(e, n)));
      assert.deepEqual(now.map((t) => t.length), before.map((t) => t.length), "no Task while the operator is down");
      return Date.now() - killedAt >= 5000;
    }, 10_000, 250);
    const restartedAt = Date.now();
    e.platform.startOperator(0);
    // Back to normal: each Schedule has a Task due after the restart.
    await waitFor("runs after the restart", async () => {
      const all = await Promise.all(names.map((n) => tasksOf(e, n)));
      return all.every((ts) => ts.some((t) => t.nominal > restartedAt + 2000));
    }, 30_000, 250);

    const latest = await assertAccounted(e, "miss-latest", 2000);
    const skip = await assertAccounted(e, "miss-skip", 2000);
    const all = await assertAccounted(e, "miss-all", 2000);
    for (const [n, r] of [["miss-latest", latest], ["miss-skip", skip], ["miss-all", all]] as const) assertIdentity(n, r.tasks);
    const inOutage = (ts: RunTask[]) => ts.filter((t) => t.nominal > lastBefore && t.nominal <= restartedAt);
    // RunLatest: one catch-up Task for the outage (the latest run due when the operator looked again);
    // every run between the last one before the kill and it is counted as missed.
    const lastLatest = before[0]![before[0]!.length - 1]!.nominal;
    const catchUp = latest.tasks.find((t) => t.nominal > lastLatest)!;
    assert.ok(latest.missed >= 1, `RunLatest missed ${latest.missed}`);
    assert.equal(latest.missed, (catchUp.nominal - lastLatest) / 2000 - 1, `RunLatest: the runs before the catch-up ${catchUp.name} are the missed ones`);
    assert.ok(catchUp.nominal > killedAt + 3000, `the catch-up run ${catchUp.name} is the latest of the outage`);
    assert.ok(inOutage(latest.tasks).length <= 1, "RunLatest starts one run for the outage");
    // Skip: nothing for the outage; all counted.
    assert.ok(skip.missed >= 2, `Skip missed ${skip.missed}`);
    assert.deepEqual(inOutage(skip.tasks).map((t) => t.name), [], "Skip starts no run of the outage");
    // RunAll: every run of the outage started, none missed.
    assert.equal(all.missed, 0);
    assert.ok(inOutage(all.tasks).length >= 2, `RunAll started ${inOutage(all.tasks).length} runs of the outage`);
    for (let i = 1; i < all.tasks.length; i++) assert.equal(all.tasks[i]!.nominal - all.tasks[i - 1]!.nominal, 2000);
    // Events.
    for (const n of ["miss-latest", "miss-skip"]) {
      const ev = await eventsOf(e, n);
      assert.ok(ev.some((x) => x.reason === "MissSchedule" && x.type === "Warning" && /operator was not running/.test(x.message)), `${n}: MissSchedule Event`);
    }
    // Each Task was created once, by one operator incarnation.
    const logged = createdInLogs(e, 1);
    for (const t of [...latest.tasks, ...skip.tasks, ...all.tasks]) assert.ok((logged.get(t.name) ?? 0) <= 1, `${t.name} created ${logged.get(t.name)} times`);
    for (const n of names) assert.equal((await e.kubectl(["delete", "schedule", n, "--wait=false"])).code, 0);
  });

  it("stops creating Tasks while suspended (kubectl patch) and resumes", async () => {
    assert.equal((await e.apply(scheduleYaml("pause", "@every 1s"))).code, 0);
    await waitFor("2 Tasks", async () => (await tasksOf(e, "pause")).length >= 2, 20_000, 200);
    const p = await e.kubectl(["patch", "schedule", "pause", "--type", "merge", "-p", '{"spec":{"suspend":true}}']);
    assert.equal(p.code, 0, p.stderr);
    await waitFor("Ready/Suspended", async () => ready(await scheduleOf(e, "pause"))?.reason === "Suspended", 10_000, 100);
    const suspended = await scheduleOf(e, "pause");
    assert.equal(suspended.status?.nextScheduleTime, undefined);
    const count = (await tasksOf(e, "pause")).length;
    const from = Date.now();
    await waitFor("5 s suspended", async () => {
      assert.equal((await tasksOf(e, "pause")).length, count, "no Task while suspended");
      return Date.now() - from >= 5000;
    }, 10_000, 250);
    const resumedAt = Date.now();
    const r = await e.kubectl(["patch", "schedule", "pause", "--type", "merge", "-p", '{"spec":{"suspend":false}}']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor("Tasks again", async () => (await tasksOf(e, "pause")).length >= count + 2, 5_000, 100);
    const s = await scheduleOf(e, "pause");
    assert.equal(ready(s)?.reason, "Scheduled");
    assert.ok((s.status?.missedRuns ?? 0) >= 3, `missed while suspended: ${s.status?.missedRuns}`);
    const ev = await eventsOf(e, "pause");
    assert.ok(ev.some((x) => x.reason === "MissSchedule" && /suspended/.test(x.message)), "MissSchedule Event for the suspended runs");
    assert.ok(Date.now() - resumedAt < 5000);
    await assertAccounted(e, "pause", 1000);
    assert.equal((await e.kubectl(["delete", "schedule", "pause", "--wait=false"])).code, 0);
  });

  it("reports a bad cron or time zone on the Schedule's status, fires nothing, and keeps running", async () => {
    assert.equal((await e.apply(scheduleYaml("bad-cron", "61 * * * *"))).code, 0);
    assert.equal((await e.apply(scheduleYaml("bad-zone", "* * * * *", "  timeZone: Mars/Olympus\n"))).code, 0);
    for (const [n, field] of [["bad-cron", /spec\.schedule/], ["bad-zone", /spec\.timeZone/]] as const) {
      const c = await waitFor(`${n} Ready=False`, async () => {
        const rc = ready(await scheduleOf(e, n));
        return rc?.status === "False" ? rc : undefined;
      }, 10_000, 100);
      assert.equal(c!.reason, "InvalidSchedule");
      assert.match(c!.message, field);
      assert.ok((await eventsOf(e, n)).some((x) => x.reason === "InvalidSchedule" && x.type === "Warning"), `${n}: InvalidSchedule Event`);
    }
    assert.match(ready(await scheduleOf(e, "bad-cron"))!.message, /61/);
    assert.match(ready(await scheduleOf(e, "bad-zone"))!.message, /Mars\/Olympus/);
    // The operator is alive and still schedules: fixing the spec makes it fire.
    if (e.platform.operators[0]) assert.equal(e.platform.operators[0].exitCode, null, "the operator process is running");
    const p = await e.kubectl(["patch", "schedule", "bad-cron", "--type", "merge", "-p", '{"spec":{"schedule":"@every 1s"}}']);
    assert.equal(p.code, 0, p.stderr);
    await waitFor("bad-cron fixed and firing", async () => (await tasksOf(e, "bad-cron")).length >= 1 && ready(await scheduleOf(e, "bad-cron"))?.status === "True", 10_000, 100);
    assert.equal((await tasksOf(e, "bad-zone")).length, 0, "an invalid Schedule fires nothing");
    for (const n of ["bad-cron", "bad-zone"]) assert.equal((await e.kubectl(["delete", "schedule", n, "--wait=false"])).code, 0);
  });

  it("is idempotent under repeated kubectl apply: generation stays 1 and kubectl diff shows no drift", async () => {
    const file = join(e.dir, "gitops-schedule.yaml");
    writeFileSync(file, scheduleYaml("gitops", "@every 1s", "  timeZone: Europe/Berlin\n  concurrencyPolicy: Allow\n  missedRunPolicy: RunLatest\n"));
    assert.equal((await e.kubectl(["apply", "-f", file])).code, 0);
    // Let the operator create Tasks and write status several times.
    await waitFor("3 Tasks", async () => (await tasksOf(e, "gitops")).length >= 3, 20_000, 200);
    const second = await e.kubectl(["apply", "-f", file]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /unchanged/);
    const s = await scheduleOf(e, "gitops");
    assert.equal(s.metadata.generation, 1);
    assert.equal(ready(s)?.status, "True");
    const diff = await e.kubectl(["diff", "-f", file]);
    assert.equal(diff.code, 0, `kubectl diff: ${diff.stdout}${diff.stderr}`);
    assert.equal((await scheduleOf(e, "gitops")).metadata.generation, 1);
    assert.equal((await e.kubectl(["delete", "schedule", "gitops", "--wait=false"])).code, 0);
  });
});

describe("when two operator replicas run a Schedule", { timeout: 120_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E({ operatorReplicas: 2, operatorArgs: [...HA_OPERATOR_ARGS] });
  });
  after(() => e?.stop());

  it("never fires a run twice, even when the leader is killed mid-way", async () => {
    const first = await waitFor("a leader", async () => (await leaseHolder(e)) || undefined, 20_000, 100);
    assert.equal((await e.apply(scheduleYaml("ha", "@every 1s"))).code, 0);
    const start = Date.now();
    await waitFor("~7 s of runs", async () => Date.now() - start >= 7000 && (await tasksOf(e, "ha")).length >= 5, 20_000, 250);
    const leaderIdx = first === "operator-0" ? 0 : 1;
    await e.platform.stopOperator(leaderIdx, true);
    const killedAt = Date.now();
    await waitFor("a new leader", async () => {
      const h = await leaseHolder(e);
      return h && h !== first ? h : undefined;
    }, 20_000, 100);
    await waitFor("runs by the new leader", async () => (await tasksOf(e, "ha")).some((t) => t.nominal > killedAt + 1000), 20_000, 250);
    await waitFor("~15 s in all", async () => Date.now() - start >= 15_000, 20_000, 250);
    const { tasks, missed } = await assertAccounted(e, "ha", 1000);
    assertIdentity("ha", tasks);
    assert.ok(tasks.length >= 10, `${tasks.length} Tasks`);
    const logged = createdInLogs(e, 2);
    const byLeader = [0, 1].map((i) => readFileSync(join(e.dir, "logs", `operator-${i}.log`), "utf8").split("\n").filter((l) => l.includes("Created scheduled task")).length);
    assert.ok(byLeader[0]! > 0 && byLeader[1]! > 0, `both replicas created Tasks in turn: ${byLeader.join(", ")}`);
    for (const t of tasks) assert.equal(logged.get(t.name), 1, `${t.name} created once`);
    assert.ok(missed >= 1, `the takeover gap is recorded: ${missed} missed`);
  });
});
