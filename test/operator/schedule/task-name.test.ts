import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isDnsSubdomain, MAX_TASK_NAME_LENGTH, nominalTimeFromTaskName, taskNameFor } from "../../../operator/schedule/task-name.js";
import { nominalTimeOf, toScheduleTaskInfo } from "../../../operator/schedule/history.js";

describe("when a Task name is made for a run", () => {
  it("is <schedule>-<unix seconds of the nominal time>", () => {
    assert.equal(taskNameFor("nightly-report", new Date("2024-11-23T03:00:00Z")), "nightly-report-1732330800");
  });
  it("drops sub-second parts and separates runs one second apart", () => {
    assert.equal(taskNameFor("a", new Date(2_500)), "a-2");
    assert.notEqual(taskNameFor("a", new Date(2_000)), taskNameFor("a", new Date(3_000)));
  });
  it("is the same for the same run (the idempotency key)", () => {
    assert.equal(taskNameFor("a.b", new Date("2024-01-01T00:00:00Z")), taskNameFor("a.b", new Date("2024-01-01T00:00:00.999Z")));
  });
  it("fits 253 characters for the longest schedule names, and stays distinct by a hash", () => {
    const long1 = `${"a".repeat(240)}-x1`;
    const long2 = `${"a".repeat(240)}-x2`;
    const t = new Date("2024-01-01T00:00:00Z");
    const n1 = taskNameFor(long1, t);
    const n2 = taskNameFor(long2, t);
    assert.ok(n1.length <= MAX_TASK_NAME_LENGTH && isDnsSubdomain(n1), n1);
    assert.ok(n2.length <= MAX_TASK_NAME_LENGTH && isDnsSubdomain(n2));
    assert.notEqual(n1, n2);
    assert.ok(n1.endsWith("-1704067200"));
  });
  it("stays a valid subdomain when the cut falls on a dot or dash", () => {
    const name = `${"b".repeat(232)}.-`.replace(/\.-$/, ".c".repeat(10));
    const n = taskNameFor(name.slice(0, 253), new Date(0));
    assert.ok(isDnsSubdomain(n), n);
  });
  it("rejects a schedule name that is not a DNS-1123 subdomain", () => {
    assert.throws(() => taskNameFor("Bad_Name", new Date(0)), /not a DNS-1123 subdomain/);
  });
});

describe("when the nominal time is read back", () => {
  it("parses it from a name made by taskNameFor", () => {
    assert.equal(nominalTimeFromTaskName("nightly", "nightly-1732330800")?.toISOString(), "2024-11-23T03:00:00.000Z");
  });
  it("ignores names of other schedules", () => {
    assert.equal(nominalTimeFromTaskName("nightly", "weekly-1732330800"), undefined);
    assert.equal(nominalTimeFromTaskName("nightly", "nightly-manual"), undefined);
  });
  it("prefers the scheduled-at annotation, then the name, then creationTimestamp", () => {
    const info = toScheduleTaskInfo({
      metadata: { name: "nightly-1732330800", creationTimestamp: "2024-11-23T03:00:01Z", annotations: { "celeriac.io/scheduled-at": "2024-11-23T03:00:00Z" } },
      status: { phase: "Running" },
    });
    assert.equal(nominalTimeOf("nightly", info)?.toISOString(), "2024-11-23T03:00:00.000Z");
    assert.equal(nominalTimeOf("nightly", { ...info, scheduledAt: undefined })?.toISOString(), "2024-11-23T03:00:00.000Z");
    assert.equal(nominalTimeOf("other", { ...info, scheduledAt: undefined })?.toISOString(), "2024-11-23T03:00:01.000Z");
  });
});
