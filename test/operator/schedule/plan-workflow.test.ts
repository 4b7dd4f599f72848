/**
 * planScheduleRun for a Schedule with a workflowTemplate: its runs are Workflows, and the policies
 * (concurrencyPolicy, history limits, lastSuccessfulTime) count Workflows as they count Tasks.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ScheduleSpec, ScheduleStatus } from "../../../api/schedule.js";
import { planScheduleRun, type SchedulePlan, type SchedulePlanInput } from "../../../operator/schedule/plan.js";
import { toScheduleWorkflowInfo, type ScheduleTaskInfo } from "../../../operator/schedule/history.js";
import { taskNameFor } from "../../../operator/schedule/task-name.js";

const T = (s: string) => new Date(s);
const workflowTemplate = { spec: { queue: "default", steps: [{ name: "a", task: "reports.generate" }] } } as ScheduleSpec["workflowTemplate"];
const taskTemplate = { spec: { queue: "default", task: "reports.generate" } } as unknown as ScheduleSpec["taskTemplate"];
const spec = (over: Partial<ScheduleSpec> = {}): ScheduleSpec => ({ schedule: "*/5 * * * *", workflowTemplate, ...over });
const CREATED = "2026-01-01T09:00:00Z";
const name = (t: string) => taskNameFor("report", T(t));

function plan(over: Partial<SchedulePlanInput>): SchedulePlan {
  return planScheduleRun({ name: "report", creationTimestamp: CREATED, tasks: [], now: T("2026-01-01T10:00:00Z"), spec: spec(), ...over });
}
const wf = (nominal: string, phase?: string, extra: Partial<ScheduleTaskInfo> = {}): ScheduleTaskInfo => ({
  name: name(nominal), kind: "Workflow", scheduledAt: nominal, ...(phase ? { phase } : {}), ...extra,
});
const task = (nominal: string, phase?: string): ScheduleTaskInfo => ({ name: name(nominal), scheduledAt: nominal, ...(phase ? { phase } : {}) });
const status = (lastScheduleTime: string, more: ScheduleStatus = {}): ScheduleStatus => ({ lastScheduleTime, ...more });

describe("toScheduleWorkflowInfo", () => {
  it("reads name, uid, phase, nominal time and completion time, with kind Workflow", () => {
    const info = toScheduleWorkflowInfo({
      metadata: { name: "report-1", uid: "u1", creationTimestamp: "2026-01-01T10:00:01Z", annotations: { "celeriac.io/scheduled-at": "2026-01-01T10:00:00.000Z" } },
      status: { phase: "Succeeded", completionTime: "2026-01-01T10:00:05Z" },
    });
    assert.deepEqual(info, {
      name: "report-1", kind: "Workflow", uid: "u1", phase: "Succeeded", creationTimestamp: "2026-01-01T10:00:01Z",
      scheduledAt: "2026-01-01T10:00:00.000Z", completionTime: "2026-01-01T10:00:05Z",
    });
  });
});

describe("when a run of a Schedule with a workflowTemplate is due", () => {
  const p = plan({ status: status("2026-01-01T09:55:00Z"), now: T("2026-01-01T10:00:00.020Z") });
  it("creates a Workflow named like a Task would be", () => {
    assert.deepEqual(p.create, [{ name: name("2026-01-01T10:00:00Z"), kind: "Workflow", nominalTime: T("2026-01-01T10:00:00Z") }]);
  });
  it("lists it in status.active with kind Workflow", () => {
    assert.deepEqual(p.status.active, [{ name: name("2026-01-01T10:00:00Z"), kind: "Workflow" }]);
  });
  it("emits SuccessfulCreate naming the Workflow", () => {
    assert.deepEqual(p.events.map((e) => [e.reason, e.message, e.taskName]), [
      ["SuccessfulCreate", `Created Workflow ${name("2026-01-01T10:00:00Z")} for the run at 2026-01-01T10:00:00Z`, name("2026-01-01T10:00:00Z")],
    ]);
  });
  it("creates nothing new when planned again with the Workflow present", () => {
    const again = plan({ status: p.status, tasks: [wf("2026-01-01T10:00:00Z")], now: T("2026-01-01T10:00:00.500Z") });
    assert.deepEqual(again.create, []);
    assert.deepEqual(again.missed, []);
  });
  it("says Workflows in the Suspended condition", () => {
    const s = plan({ spec: spec({ suspend: true }) });
    assert.match(s.status.conditions?.find((c) => c.type === "Ready")?.message ?? "", /^Suspended: no Workflows are created/);
  });
});

describe("when concurrencyPolicy is Forbid and a Workflow is active", () => {
  const s = spec({ concurrencyPolicy: "Forbid" });
  for (const phase of [undefined, "Pending", "Running"]) {
    it(`skips the run while a Workflow is ${phase ?? "without a phase"} and records it as Forbid`, () => {
      const active = wf("2026-01-01T09:55:00Z", phase, { uid: "u-55" });
      const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [active], now: T("2026-01-01T10:00:00.010Z") });
      assert.deepEqual(p.create, []);
      assert.deepEqual(p.missed.map((m) => m.reason), ["Forbid"]);
      assert.equal(p.status.missedRuns, 1);
      assert.deepEqual(p.status.active, [{ name: active.name, uid: "u-55", kind: "Workflow" }]);
      const ev = p.events.find((e) => e.reason === "JobAlreadyActive");
      assert.equal(ev?.type, "Warning");
      assert.equal(ev?.message, `Skipped the run at 2026-01-01T10:00:00Z: Workflow ${active.name} is still active and concurrencyPolicy is Forbid`);
    });
  }
  for (const phase of ["Succeeded", "Failed", "Cancelled"]) {
    it(`starts the run when the earlier Workflow is ${phase}`, () => {
      const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [wf("2026-01-01T09:55:00Z", phase)], now: T("2026-01-01T10:00:00Z") });
      assert.deepEqual(p.create.map((c) => c.kind), ["Workflow"]);
    });
  }
  it("counts an active Task of the same Schedule too (the template was switched)", () => {
    const p = plan({ spec: s, status: status("2026-01-01T09:55:00Z"), tasks: [task("2026-01-01T09:55:00Z", "Running")], now: T("2026-01-01T10:00:00Z") });
    assert.deepEqual(p.create, []);
    assert.match(p.events.find((e) => e.reason === "JobAlreadyActive")!.message, /: Task report-\d+ is still active/);
  });
  it("counts an active Workflow for a Schedule with a taskTemplate (switched the other way)", () => {
    const p = plan({ spec: { schedule: "*/5 * * * *", taskTemplate, concurrencyPolicy: "Forbid" }, status: status("2026-01-01T09:55:00Z"), tasks: [wf("2026-01-01T09:55:00Z", "Running")], now: T("2026-01-01T10:00:00Z") });
    assert.deepEqual(p.create, []);
  });
});

describe("when concurrencyPolicy is Replace and a Workflow is active", () => {
  it("cancels the active Workflow, then creates the new one", () => {
    const a = wf("2026-01-01T09:55:00Z", "Running");
    const p = plan({ spec: spec({ concurrencyPolicy: "Replace" }), status: status("2026-01-01T09:55:00Z"), tasks: [a, wf("2026-01-01T09:50:00Z", "Succeeded")], now: T("2026-01-01T10:00:00Z") });
    assert.deepEqual(p.cancel, [a.name]);
    assert.deepEqual(p.create.map((c) => [c.name, c.kind]), [[name("2026-01-01T10:00:00Z"), "Workflow"]]);
    assert.deepEqual(p.events.map((e) => [e.reason, e.message]), [
      ["SuccessfulCancel", `Cancelled active Workflow ${a.name} to start a new run (concurrencyPolicy Replace)`],
      ["SuccessfulCreate", `Created Workflow ${name("2026-01-01T10:00:00Z")} for the run at 2026-01-01T10:00:00Z`],
    ]);
  });
});

describe("when finished Workflows exceed the history limits", () => {
  const children = [
    wf("2026-01-01T09:05:00Z", "Succeeded"),
    wf("2026-01-01T09:10:00Z", "Failed"),
    wf("2026-01-01T09:15:00Z", "Succeeded", { completionTime: "2026-01-01T09:15:09Z" }),
    wf("2026-01-01T09:20:00Z", "Cancelled"),
    task("2026-01-01T09:25:00Z", "Succeeded"),
    wf("2026-01-01T09:35:00Z", "Succeeded", { completionTime: "2026-01-01T09:36:00Z" }),
    wf("2026-01-01T09:40:00Z", "Succeeded", { completionTime: "2026-01-01T09:40:30Z" }),
    wf("2026-01-01T09:45:00Z", "Running"),
  ];
  it("deletes the oldest beyond 3 succeeded and 1 failed (Failed and Cancelled count as failed; Tasks and Workflows together)", () => {
    const p = plan({ status: status("2026-01-01T09:45:00Z"), tasks: children, now: T("2026-01-01T09:46:00Z") });
    assert.deepEqual(p.delete, [name("2026-01-01T09:05:00Z"), name("2026-01-01T09:10:00Z"), name("2026-01-01T09:15:00Z")]);
    assert.deepEqual(p.events.filter((e) => e.reason === "SuccessfulDelete").map((e) => e.message), [
      `Deleted finished Workflow ${name("2026-01-01T09:05:00Z")} beyond the history limit`,
      `Deleted finished Workflow ${name("2026-01-01T09:10:00Z")} beyond the history limit`,
      `Deleted finished Workflow ${name("2026-01-01T09:15:00Z")} beyond the history limit`,
    ]);
  });
  it("never deletes an active Workflow, even with limits of 0", () => {
    const p = plan({ spec: spec({ successfulTasksHistoryLimit: 0, failedTasksHistoryLimit: 0 }), status: status("2026-01-01T09:45:00Z"), tasks: children, now: T("2026-01-01T09:46:00Z") });
    assert.equal(p.delete.length, 7);
    assert.ok(!p.delete.includes(name("2026-01-01T09:45:00Z")));
  });
  it("sets lastSuccessfulTime to the newest completionTime of a Succeeded Workflow", () => {
    const p = plan({ status: status("2026-01-01T09:45:00Z"), tasks: children, now: T("2026-01-01T09:46:00Z") });
    assert.equal(p.status.lastSuccessfulTime, "2026-01-01T09:40:30Z");
  });
});

describe("a workflowTemplate with a problem kubectl apply lets through", () => {
  it("creates no Workflow and says why in Ready=False (a cycle of three steps)", () => {
    const cyclic = { spec: { queue: "default", steps: [{ name: "a", task: "t", dependsOn: ["c"] }, { name: "b", task: "t", dependsOn: ["a"] }, { name: "c", task: "t", dependsOn: ["b"] }] } } as ScheduleSpec["workflowTemplate"];
    const p = plan({ spec: spec({ workflowTemplate: cyclic }), status: status("2026-01-01T09:50:00Z") });
    assert.deepEqual(p.create, []);
    const ready = p.status.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /^spec\.workflowTemplate: .*cycle a → c → b → a.*: no Workflow is created until the template is fixed$/);
    assert.ok(p.events.some((e) => e.type === "Warning" && /cycle/.test(e.message)));
  });
});
