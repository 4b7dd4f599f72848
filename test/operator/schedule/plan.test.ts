import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ScheduleSpec, ScheduleStatus } from "../../../api/schedule.js";
import {
  MAX_MISSED_EVENTS,
  MAX_MISSED_PER_PLAN,
  MAX_REQUEUE_MS,
  planScheduleRun,
  type SchedulePlan,
  type SchedulePlanInput,
} from "../../../operator/schedule/plan.js";
import type { ScheduleTaskInfo } from "../../../operator/schedule/history.js";
import { taskNameFor } from "../../../operator/schedule/task-name.js";

const T = (s: string) => new Date(s);
const secs = (s: string) => Math.floor(T(s).getTime() / 1000);
const template = { spec: { queue: "default", task: "reports.generate" } } as unknown as ScheduleSpec["taskTemplate"];
const spec = (over: Partial<ScheduleSpec> = {}): ScheduleSpec => ({ schedule: "*/5 * * * *", taskTemplate: template, ...over });
const CREATED = "2026-01-01T09:00:00Z";

function plan(over: Partial<SchedulePlanInput> & { spec?: ScheduleSpec }): SchedulePlan {
  return planScheduleRun({ name: "report", creationTimestamp: CREATED, tasks: [], now: T("2026-01-01T10:00:00Z"), spec: spec(), ...over });
}
const task = (nominal: string, phase?: string, extra: Partial<ScheduleTaskInfo> = {}): ScheduleTaskInfo => ({
  name: taskNameFor("report", T(nominal)),
  scheduledAt: nominal,
  ...(phase ? { phase } : {}),
  ...extra,
});
const times = (p: SchedulePlan) => p.create.map((c) => c.nominalTime.toISOString());
const missedAt = (p: SchedulePlan) => p.missed.map((m) => `${m.nominalTime.toISOString().slice(11, 19)} ${m.reason}`);
const status = (lastScheduleTime: string, more: ScheduleStatus = {}): ScheduleStatus => ({ lastScheduleTime, ...more });

describe("when a run is due on time", () => {
  const p = plan({ status: status("2026-01-01T09:55:00Z"), now: T("2026-01-01T10:00:00.020Z") });
  it("creates one Task named <schedule>-<unix seconds>", () => {
    assert.deepEqual(p.create, [{ name: `report-${secs("2026-01-01T10:00:00Z")}`, kind: "Task", nominalTime: T("2026-01-01T10:00:00Z") }]);
    assert.deepEqual(p.missed, []);
  });
  it("updates lastScheduleTime, nextScheduleTime, active and Ready", () => {
    assert.equal(p.status.lastScheduleTime, "2026-01-01T10:00:00Z");
    assert.equal(p.status.nextScheduleTime, "2026-01-01T10:05:00Z");
    assert.deepEqual(p.status.active, [{ name: `report-${secs("2026-01-01T10:00:00Z")}` }]);
    assert.equal(p.status.missedRuns, 0);
    const ready = p.status.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.reason, "Scheduled");
  });
  it("requeues exactly until the next nominal time", () => {
    assert.equal(p.requeueAfterMs, 5 * 60_000 - 20);
  });
  it("emits SuccessfulCreate naming the Task", () => {
    assert.deepEqual(p.events.map((e) => [e.type, e.reason, e.taskName]), [["Normal", "SuccessfulCreate", p.create[0]!.name]]);
  });
});

describe("when nothing is due yet", () => {
  it("creates nothing and requeues for the first run after creation", () => {
    const p = plan({ now: T("2026-01-01T09:02:30Z") });
    assert.deepEqual(p.create, []);
    assert.equal(p.status.nextScheduleTime, "2026-01-01T09:05:00Z");
    assert.equal(p.requeueAfterMs, 150_000);
  });
  it("does not run at the creation instant itself (runs are after creationTimestamp)", () => {
    assert.deepEqual(plan({ now: T("2026-01-01T09:00:00Z") }).create, []);
  });
  it("caps a long requeue at setTimeout's limit", () => {
    const p = plan({ spec: spec({ schedule: "@yearly" }), now: T("2026-01-02T00:00:00Z") });
    assert.equal(p.requeueAfterMs, MAX_REQUEUE_MS);
    assert.equal(p.status.nextScheduleTime, "2027-01-01T00:00:00Z");
  });
});

describe("when the same run is planned twice", () => {
  const now = T("2026-01-01T10:00:01Z");
  const first = plan({ status: status("2026-01-01T09:55:00Z"), now });
  const created = first.create.map((c) => ({ name: c.name, scheduledAt: c.nominalTime.toISOString() }));
  it("creates nothing new when the Task exists, even with the old status (status write lost)", () => {
    const again = plan({ status: status("2026-01-01T09:55:00Z"), tasks: created, now });
    assert.deepEqual(again.create, []);
    assert.deepEqual(again.missed, []);
    assert.deepEqual(again.events, []);
    assert.equal(again.status.lastScheduleTime, "2026-01-01T10:00:00Z");
  });
  it("creates nothing new with the new status, and returns the same status", () => {
    const again = plan({ status: first.status, tasks: created, now: T("2026-01-01T10:00:02Z") });
    assert.deepEqual(again.create, []);
    assert.deepEqual(again.events, []);
    assert.deepEqual(again.status, first.status);
  });
  it("creates nothing new after a RunAll catch-up replayed with the old status", () => {
    const s = spec({ missedRunPolicy: "RunAll" });
    const p1 = plan({ spec: s, status: status("2026-01-01T09:40:00Z"), now });
    assert.equal(p1.create.length, 4);
    const p2 = plan({ spec: s, status: status("2026-01-01T09:40:00Z"), now, tasks: p1.create.map((c) => ({ name: c.name })) });
    assert.deepEqual(p2.create, []);
  });
});

describe("when the operator was down (missedRunPolicy RunLatest, the default)", () => {
  const p = plan({ status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:31:00Z"), operatorStartTime: T("2026-01-01T10:30:50Z") });
  it("starts only the most recent run (CronJob's behaviour)", () => {
    assert.deepEqual(times(p), ["2026-01-01T10:30:00.000Z"]);
  });
  it("records every older run as missed for Downtime", () => {
    assert.deepEqual(missedAt(p), ["10:05:00 Downtime", "10:10:00 Downtime", "10:15:00 Downtime", "10:20:00 Downtime", "10:25:00 Downtime"]);
    assert.equal(p.status.missedRuns, 5);
    assert.equal(p.status.lastMissedTime, "2026-01-01T10:25:00Z");
  });
  it("emits a MissSchedule Warning per missed run", () => {
    assert.equal(p.events.filter((e) => e.reason === "MissSchedule" && e.type === "Warning").length, 5);
  });
  it("adds to the previous missed count", () => {
    const q = plan({ status: status("2026-01-01T10:00:00Z", { missedRuns: 7 }), now: T("2026-01-01T10:31:00Z") });
    assert.equal(q.status.missedRuns, 12);
  });
  it("does not record the same missed runs again on the next plan", () => {
    const q = plan({ status: p.status, tasks: p.create.map((c) => ({ name: c.name })), now: T("2026-01-01T10:32:00Z") });
    assert.deepEqual(q.missed, []);
    assert.equal(q.status.missedRuns, 5);
  });
});

describe("when missedRunPolicy is RunAll", () => {
  it("starts each missed run oldest first, up to missedRunsLimit, and records the older ones", () => {
    const p = plan({ spec: spec({ missedRunPolicy: "RunAll", missedRunsLimit: 3 }), status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:31:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:20:00.000Z", "2026-01-01T10:25:00.000Z", "2026-01-01T10:30:00.000Z"]);
    assert.deepEqual(missedAt(p), ["10:05:00 Downtime", "10:10:00 Downtime", "10:15:00 Downtime"]);
    assert.equal(p.status.lastScheduleTime, "2026-01-01T10:30:00Z");
  });
  it("starts only the newest under Forbid and records the others as Forbid", () => {
    const p = plan({ spec: spec({ missedRunPolicy: "RunAll", concurrencyPolicy: "Forbid" }), status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:16:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:15:00.000Z"]);
    assert.deepEqual(missedAt(p), ["10:05:00 Forbid", "10:10:00 Forbid"]);
  });
  it("starts only the newest under Replace and records the others as Replace", () => {
    const p = plan({ spec: spec({ missedRunPolicy: "RunAll", concurrencyPolicy: "Replace" }), status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:16:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:15:00.000Z"]);
    assert.deepEqual(missedAt(p), ["10:05:00 Replace", "10:10:00 Replace"]);
  });
});

describe("when missedRunPolicy is Skip", () => {
  const s = spec({ missedRunPolicy: "Skip" });
  it("starts nothing after downtime and records every run", () => {
    const p = plan({ spec: s, status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:31:00Z"), operatorStartTime: T("2026-01-01T10:30:50Z") });
    assert.deepEqual(p.create, []);
    assert.equal(p.missed.length, 6);
    assert.ok(p.missed.every((m) => m.reason === "Downtime"));
    assert.equal(p.status.lastMissedTime, "2026-01-01T10:30:00Z");
    assert.equal(p.status.lastScheduleTime, "2026-01-01T10:00:00Z");
    assert.equal(p.requeueAfterMs, 4 * 60_000);
  });
  it("starts a run due now (at most ON_TIME_TOLERANCE_MS late)", () => {
    const p = plan({ spec: s, status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:30:00.900Z"), operatorStartTime: T("2026-01-01T10:30:00.500Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:30:00.000Z"]);
    assert.equal(p.missed.length, 5);
  });
  it("starts a late run that fell due while this operator was running", () => {
    const p = plan({ spec: s, status: status("2026-01-01T10:25:00Z"), now: T("2026-01-01T10:30:07Z"), operatorStartTime: T("2026-01-01T08:00:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:30:00.000Z"]);
  });
  it("does not start a run more than a second late without operatorStartTime", () => {
    const p = plan({ spec: s, status: status("2026-01-01T10:25:00Z"), now: T("2026-01-01T10:30:02Z") });
    assert.deepEqual(p.create, []);
    assert.deepEqual(missedAt(p), ["10:30:00 Downtime"]);
  });
});

describe("when startingDeadlineSeconds is set", () => {
  it("misses runs older than the deadline and starts the latest within it", () => {
    const p = plan({ spec: spec({ startingDeadlineSeconds: 120, missedRunPolicy: "RunAll" }), status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:31:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:30:00.000Z"]);
    assert.deepEqual(missedAt(p), ["10:05:00 StartingDeadline", "10:10:00 StartingDeadline", "10:15:00 StartingDeadline", "10:20:00 StartingDeadline", "10:25:00 StartingDeadline"]);
  });
  it("starts nothing when even the latest run is past its deadline", () => {
    const p = plan({ spec: spec({ startingDeadlineSeconds: 30 }), status: status("2026-01-01T10:25:00Z"), now: T("2026-01-01T10:31:00Z") });
    assert.deepEqual(p.create, []);
    assert.deepEqual(missedAt(p), ["10:30:00 StartingDeadline"]);
    assert.ok(p.events.some((e) => e.reason === "MissSchedule" && e.message.includes("startingDeadlineSeconds")));
  });
  it("starts a run exactly at the deadline", () => {
    const p = plan({ spec: spec({ startingDeadlineSeconds: 60 }), status: status("2026-01-01T10:25:00Z"), now: T("2026-01-01T10:31:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:30:00.000Z"]);
  });
});

describe("when the Schedule is suspended", () => {
  const suspended = plan({ spec: spec({ suspend: true }), status: status("2026-01-01T10:00:00Z"), now: T("2026-01-01T10:31:00Z") });
  it("creates nothing, records nothing yet and does not requeue", () => {
    assert.deepEqual(suspended.create, []);
    assert.deepEqual(suspended.missed, []);
    assert.equal(suspended.requeueAfterMs, undefined);
    assert.equal(suspended.status.nextScheduleTime, undefined);
    assert.equal(suspended.status.lastScheduleTime, "2026-01-01T10:00:00Z");
  });
  it("reports Ready=True with reason Suspended", () => {
    const ready = suspended.status.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.reason, "Suspended");
  });
  it("still prunes history and reports active Tasks", () => {
    const p = plan({
      spec: spec({ suspend: true, successfulTasksHistoryLimit: 0 }),
      tasks: [task("2026-01-01T09:55:00Z", "Succeeded"), task("2026-01-01T10:00:00Z", "Running")],
    });
    assert.deepEqual(p.delete, [taskNameFor("report", T("2026-01-01T09:55:00Z"))]);
    assert.deepEqual(p.status.active, [{ name: taskNameFor("report", T("2026-01-01T10:00:00Z")) }]);
  });
  it("on resume starts the latest run and records the suspended ones (RunLatest)", () => {
    const p = plan({ status: suspended.status, now: T("2026-01-01T11:00:30Z"), operatorStartTime: T("2026-01-01T08:00:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T11:00:00.000Z"]);
    assert.equal(p.missed.length, 11);
    assert.ok(p.missed.every((m) => m.reason === "Suspended"));
    assert.equal(p.status.conditions?.find((c) => c.type === "Ready")?.reason, "Scheduled");
  });
  it("on resume starts nothing under Skip", () => {
    const p = plan({ spec: spec({ missedRunPolicy: "Skip" }), status: suspended.status, now: T("2026-01-01T11:00:30Z"), operatorStartTime: T("2026-01-01T08:00:00Z") });
    assert.deepEqual(p.create, []);
    assert.equal(p.missed.length, 12);
    assert.ok(p.missed.every((m) => m.reason === "Suspended"));
  });
  it("on resume attributes runs before operatorStartTime to Downtime", () => {
    const p = plan({ status: suspended.status, now: T("2026-01-01T10:31:00Z"), operatorStartTime: T("2026-01-01T10:12:00Z") });
    assert.deepEqual(missedAt(p), ["10:05:00 Downtime", "10:10:00 Downtime", "10:15:00 Suspended", "10:20:00 Suspended", "10:25:00 Suspended"]);
  });
});

describe("when concurrencyPolicy is Forbid", () => {
  const s = spec({ concurrencyPolicy: "Forbid" });
  const running = task("2026-01-01T09:55:00Z", "Running");
  it("skips the run while a Task is active and records it as Forbid", () => {
    const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [running], now: T("2026-01-01T10:00:00.010Z") });
    assert.deepEqual(p.create, []);
    assert.deepEqual(missedAt(p), ["10:00:00 Forbid"]);
    assert.equal(p.status.missedRuns, 1);
    const ev = p.events.find((e) => e.reason === "JobAlreadyActive");
    assert.equal(ev?.type, "Warning");
    assert.match(ev!.message, new RegExp(running.name));
  });
  it("does not start the skipped run late when the active Task finishes", () => {
    const skipped = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [running], now: T("2026-01-01T10:00:00.010Z") });
    const p = plan({ spec: s, status: skipped.status, tasks: [{ ...running, phase: "Succeeded" }], now: T("2026-01-01T10:02:00Z") });
    assert.deepEqual(p.create, []);
    assert.deepEqual(p.missed, []);
  });
  it("treats a Task with no phase yet as active", () => {
    const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [task("2026-01-01T09:55:00Z")], now: T("2026-01-01T10:00:00Z") });
    assert.deepEqual(p.create, []);
  });
  it("starts the run when the earlier Task has finished", () => {
    const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [{ ...running, phase: "Failed" }], now: T("2026-01-01T10:00:00Z") });
    assert.deepEqual(times(p), ["2026-01-01T10:00:00.000Z"]);
  });
});

describe("when concurrencyPolicy is Replace", () => {
  const s = spec({ concurrencyPolicy: "Replace" });
  it("cancels the active Tasks, then creates the new one", () => {
    const a = task("2026-01-01T09:50:00Z", "Retrying");
    const b = task("2026-01-01T09:55:00Z", "Running");
    const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [b, a, task("2026-01-01T09:45:00Z", "Succeeded")], now: T("2026-01-01T10:00:00Z") });
    assert.deepEqual(p.cancel, [a.name, b.name]);
    assert.deepEqual(times(p), ["2026-01-01T10:00:00.000Z"]);
    assert.deepEqual(p.events.map((e) => e.reason), ["SuccessfulCancel", "SuccessfulCancel", "SuccessfulCreate"]);
  });
  it("cancels nothing when no run is due", () => {
    const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [task("2026-01-01T09:55:00Z", "Running")], now: T("2026-01-01T09:58:00Z") });
    assert.deepEqual(p.cancel, []);
  });
});

describe("when concurrencyPolicy is Allow", () => {
  it("creates the run while another Task is active", () => {
    const p = plan({ status: status("2026-01-01T09:55:00Z"), tasks: [task("2026-01-01T09:55:00Z", "Running")], now: T("2026-01-01T10:00:00Z") });
    assert.equal(p.create.length, 1);
    assert.equal(p.status.active?.length, 2);
  });
});

describe("when finished Tasks exceed the history limits", () => {
  const tasks = [
    task("2026-01-01T09:05:00Z", "Succeeded"),
    task("2026-01-01T09:10:00Z", "Failed"),
    task("2026-01-01T09:15:00Z", "Succeeded", { completionTime: "2026-01-01T09:15:09Z" }),
    task("2026-01-01T09:20:00Z", "Cancelled"),
    task("2026-01-01T09:25:00Z", "Succeeded", { completionTime: "2026-01-01T09:25:42Z" }),
    task("2026-01-01T09:30:00Z", "Expired"),
    task("2026-01-01T09:35:00Z", "Succeeded", { completionTime: "2026-01-01T09:36:00Z" }),
    task("2026-01-01T09:40:00Z", "Succeeded", { completionTime: "2026-01-01T09:40:30Z" }),
    task("2026-01-01T09:45:00Z", "Running"),
  ];
  const name = (t: string) => taskNameFor("report", T(t));
  it("deletes the oldest beyond 3 succeeded and 1 failed (Failed, Cancelled and Expired count as failed)", () => {
    const p = plan({ status: status("2026-01-01T09:45:00Z"), tasks, now: T("2026-01-01T09:46:00Z") });
    assert.deepEqual(p.delete, [name("2026-01-01T09:05:00Z"), name("2026-01-01T09:10:00Z"), name("2026-01-01T09:15:00Z"), name("2026-01-01T09:20:00Z")]);
    assert.ok(p.events.filter((e) => e.reason === "SuccessfulDelete").length === 4);
  });
  it("never deletes an active Task, even with limits of 0", () => {
    const p = plan({ spec: spec({ successfulTasksHistoryLimit: 0, failedTasksHistoryLimit: 0 }), status: status("2026-01-01T09:45:00Z"), tasks, now: T("2026-01-01T09:46:00Z") });
    assert.equal(p.delete.length, 8);
    assert.ok(!p.delete.includes(name("2026-01-01T09:45:00Z")));
  });
  it("sets lastSuccessfulTime to the newest completion of a succeeded Task", () => {
    const p = plan({ status: status("2026-01-01T09:45:00Z"), tasks, now: T("2026-01-01T09:46:00Z") });
    assert.equal(p.status.lastSuccessfulTime, "2026-01-01T09:40:30Z");
  });
});

describe("when the schedule or time zone is invalid", () => {
  const bad = plan({ spec: spec({ schedule: "61 * * * *" }), status: status("2026-01-01T09:55:00Z"), generation: 4, tasks: [task("2026-01-01T09:55:00Z", "Running")] });
  it("reports Ready=False with reason InvalidSchedule and the parser's message", () => {
    const ready = bad.status.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "InvalidSchedule");
    assert.match(ready!.message, /^spec\.schedule: "61 \* \* \* \*": Invalid value for minute: 61/);
    assert.equal(ready?.observedGeneration, 4);
    assert.equal(bad.status.observedGeneration, 4);
  });
  it("creates nothing, clears nextScheduleTime, does not requeue, keeps active", () => {
    assert.deepEqual(bad.create, []);
    assert.equal(bad.status.nextScheduleTime, undefined);
    assert.equal(bad.requeueAfterMs, undefined);
    assert.equal(bad.status.active?.length, 1);
  });
  it("emits the InvalidSchedule Warning once, not on every reconcile", () => {
    assert.deepEqual(bad.events.map((e) => [e.type, e.reason]), [["Warning", "InvalidSchedule"]]);
    const again = plan({ spec: spec({ schedule: "61 * * * *" }), status: bad.status, generation: 4 });
    assert.deepEqual(again.events, []);
    assert.deepEqual(again.status.conditions, bad.status.conditions);
  });
  it("reports an unknown time zone", () => {
    const p = plan({ spec: spec({ timeZone: "Mars/Olympus" }) });
    assert.match(p.status.conditions?.[0]?.message ?? "", /^spec.timeZone: unknown time zone "Mars\/Olympus": use an IANA time zone name/);
  });
  it("recovers when the spec is fixed, with a new transition time", () => {
    const p = plan({ status: bad.status, now: T("2026-01-01T10:00:00Z") });
    const ready = p.status.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.lastTransitionTime, "2026-01-01T10:00:00Z");
  });
});

describe("when very many runs were missed", () => {
  it("records them page by page, counting every one, then starts the latest", () => {
    const s = spec({ schedule: "@every 1s" });
    let st: ScheduleStatus = status("2026-01-01T09:00:00Z");
    let tasks: ScheduleTaskInfo[] = [];
    const now = T("2026-01-01T10:00:00Z");
    let plans = 0;
    let created = 0;
    for (;;) {
      const p = plan({ spec: s, status: st, tasks, now });
      plans++;
      created += p.create.length;
      tasks = [...tasks, ...p.create.map((c) => ({ name: c.name }))];
      st = p.status;
      assert.ok(p.events.filter((e) => e.reason === "MissSchedule").length <= MAX_MISSED_EVENTS);
      if (p.missed.length > MAX_MISSED_EVENTS) assert.ok(p.events.some((e) => e.reason === "TooManyMissedTimes" && e.message.includes(`Missed ${p.missed.length} runs`)));
      if (p.requeueAfterMs !== 0) break;
      assert.equal(p.missed.length, MAX_MISSED_PER_PLAN);
    }
    assert.equal(created, 1);
    assert.equal(st.missedRuns, 3599);
    assert.equal(st.lastScheduleTime, "2026-01-01T10:00:00Z");
    assert.equal(st.lastMissedTime, "2026-01-01T09:59:59Z");
    assert.equal(plans, 4);
  });
});

describe("when an @every 2s Schedule runs for 20 s with an operator restart in the middle", () => {
  it("creates each run once, on time, and records the runs missed during the restart", () => {
    const s = spec({ schedule: "@every 2s" });
    const start = T("2026-01-01T10:00:00Z").getTime();
    let st: ScheduleStatus = {};
    const tasks: ScheduleTaskInfo[] = [];
    const names = new Set<string>();
    let now = start;
    let operatorStart = T("2026-01-01T09:59:59Z");
    const down: [number, number] = [start + 7_500, start + 12_300];
    while (now <= start + 20_000) {
      if (now >= down[0] && now < down[1]) {
        now = down[1];
        operatorStart = new Date(down[1]);
        continue;
      }
      const p = planScheduleRun({ name: "report", creationTimestamp: "2026-01-01T09:59:59Z", spec: s, status: st, tasks, now: new Date(now), operatorStartTime: operatorStart });
      for (const c of p.create) {
        assert.ok(!names.has(c.name), `duplicate ${c.name}`);
        names.add(c.name);
        tasks.push({ name: c.name, phase: "Succeeded" });
        assert.ok(now - c.nominalTime.getTime() < 1000 || now === down[1], "late outside the restart");
      }
      st = p.status;
      now += p.requeueAfterMs ?? 1000;
    }
    // Runs at 0,2,...,20 s; 8, 10 and 12 fell in the outage (7.5–12.3 s): RunLatest starts 12 on restart
    // (0.3 s late) and records 8 and 10 as missed.
    assert.equal(names.size, 9);
    assert.equal(st.missedRuns, 2);
    assert.equal(st.lastMissedTime, "2026-01-01T10:00:10Z");
  });
});

describe("when the status carries conditions", () => {
  it("keeps lastTransitionTime while Ready stays True", () => {
    const p1 = plan({ status: status("2026-01-01T09:55:00Z"), now: T("2026-01-01T10:00:00Z") });
    const p2 = plan({ status: p1.status, tasks: p1.create.map((c) => ({ name: c.name })), now: T("2026-01-01T10:05:00Z") });
    assert.equal(p2.status.conditions?.[0]?.lastTransitionTime, "2026-01-01T10:00:00Z");
  });
});
