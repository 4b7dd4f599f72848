// Runs the Argo CD health checks in gitops/argocd/health against sample objects with the real Lua
// interpreter (Debian's lua5.4; CI installs it). Each object is turned into a Lua table literal, assigned
// to the global `obj` as Argo CD does, and the script's returned `hs` is printed back.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { planScheduleRun } from "../../operator/schedule/plan.js";
import type { ScheduleSpec } from "../../api/schedule.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const LUA = process.env.LUA ?? "lua5.4";
const scriptPath = (kind: string) => join(root, "gitops/argocd/health/celeriac.io", kind, "health.lua");
const ARGO_STATUSES = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"];

/** A Lua expression for a JSON value: strings byte-escaped, arrays 1-based, null as nil. */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`toLua: ${value} is not a JSON number`);
    return String(value);
  }
  if (typeof value === "string") {
    return `"${[...Buffer.from(value, "utf8")].map((b) => (/[A-Za-z0-9 _.,:/-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `\\${String(b).padStart(3, "0")}`)).join("")}"`;
  }
  if (Array.isArray(value)) return `{${value.map(toLua).join(", ")}}`;
  if (typeof value === "object") {
    return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`).join(", ")}}`;
  }
  throw new Error(`toLua: unsupported ${typeof value}`);
}

/** Runs one health script on `object` and returns the `hs` it returns. */
function health(kind: string, object: unknown): { status: string; message: string } {
  const harness = [
    `obj = ${toLua(object)}`,
    `local chunk = assert(loadfile(${toLua(scriptPath(kind))}))`,
    `local hs = chunk()`,
    `assert(type(hs) == "table", "health.lua must return a table")`,
    `io.write(tostring(hs.status), "\\n", tostring(hs.message))`,
  ].join("\n");
  const out = execFileSync(LUA, ["-"], { input: harness, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  const nl = out.indexOf("\n");
  return { status: out.slice(0, nl), message: out.slice(nl + 1) };
}

const cond = (type: string, status: string, reason: string, message = "") => ({ type, status, reason, message, lastTransitionTime: "2026-01-01T00:00:00Z" });
const meta = (generation = 1) => ({ name: "x", namespace: "default", generation });

describe("when lua5.4 runs the harness", () => {
  it("is installed (CI installs Debian's lua5.4; this test fails rather than skips without it)", () => {
    const v = execFileSync(LUA, ["-v"], { encoding: "utf8" });
    assert.match(v, /^Lua 5\.4/);
  });
  it("round-trips strings with quotes, newlines and UTF-8 through the table literal", () => {
    const s = 'a "quoted"\nline – ü \\ end';
    const out = execFileSync(LUA, ["-"], { input: `io.write((${toLua({ s })}).s)`, encoding: "utf8" });
    assert.equal(out, s);
  });
});

describe("when the scripts are checked for Argo CD's Lua 5.1 dialect", () => {
  for (const kind of ["Task", "Queue", "Schedule", "Workflow"]) {
    it(`${kind}/health.lua uses no Lua 5.2+ syntax (goto, //, bitwise operators, attributes)`, () => {
      const code = readFileSync(scriptPath(kind), "utf8")
        .replace(/--[^\n]*/g, "")
        .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
      assert.doesNotMatch(code, /\bgoto\b|\/\/|<const>|<close>|&|\||<<|>>|~(?!=)/);
    });
  }
});

describe("when a Task's health is assessed", () => {
  const table: Array<[string, unknown, string, RegExp]> = [
    ["no status yet", { metadata: meta() }, "Progressing", /Waiting for the operator/],
    ["Pending with QueueNotFound", { metadata: meta(), status: { phase: "Pending", conditions: [cond("Accepted", "False", "QueueNotFound", 'Queue "emails" not found')] } }, "Progressing", /^Pending: Queue "emails" not found$/],
    ["Queued", { metadata: meta(), status: { phase: "Queued" } }, "Progressing", /^Queued$/],
    ["Running", { metadata: meta(), status: { phase: "Running", attempts: 1, conditions: [cond("Running", "True", "Started", "Running on worker-0")] } }, "Progressing", /worker-0/],
    ["Retrying", { metadata: meta(), status: { phase: "Retrying", attempts: 2, nextRetryTime: "2026-01-01T00:00:04Z" } }, "Progressing", /^Retrying after attempt 2, next attempt at 2026-01-01T00:00:04Z$/],
    ["Succeeded", { metadata: meta(), status: { phase: "Succeeded", conditions: [cond("Succeeded", "True", "Completed", "Completed in 1.2 s")] } }, "Healthy", /Completed in 1.2 s/],
    ["Failed with an error", { metadata: meta(), status: { phase: "Failed", error: { type: "TypeError", message: "boom" } } }, "Degraded", /^Failed: TypeError: boom$/],
    ["Failed with a Succeeded=False condition", { metadata: meta(), status: { phase: "Failed", conditions: [cond("Succeeded", "False", "HandlerFailed", "3 attempts failed")] } }, "Degraded", /^Failed: 3 attempts failed$/],
    ["Expired", { metadata: meta(), status: { phase: "Expired" } }, "Degraded", /^Expired: Expired$/],
    ["Cancelled", { metadata: meta(), status: { phase: "Cancelled", conditions: [cond("Succeeded", "False", "Revoked", "Revoked by user")] } }, "Degraded", /Revoked by user/],
  ];
  for (const [name, object, status, message] of table) {
    it(`reports ${status} for ${name}`, () => {
      const hs = health("Task", object);
      assert.equal(hs.status, status, hs.message);
      assert.match(hs.message, message);
    });
  }
});

describe("when a Queue's health is assessed", () => {
  const table: Array<[string, unknown, string, RegExp]> = [
    ["suspended", { metadata: meta(), spec: { suspend: true }, status: { observedGeneration: 1, conditions: [cond("Ready", "True", "ScaledToZero")] } }, "Suspended", /suspended/],
    ["not yet observed", { metadata: meta(2), spec: {}, status: { observedGeneration: 1, conditions: [cond("Ready", "True", "Reconciled")] } }, "Progressing", /generation 2/],
    ["with no status", { metadata: meta(), spec: {} }, "Progressing", /generation 1/],
    ["ready", { metadata: meta(), spec: {}, status: { observedGeneration: 1, conditions: [cond("Ready", "True", "Reconciled", "Stream and workers ready")] } }, "Healthy", /^Reconciled: Stream and workers ready$/],
    ["with a stream error", { metadata: meta(), spec: {}, status: { observedGeneration: 1, conditions: [cond("Ready", "False", "StreamError", "create stream: insufficient resources")] } }, "Degraded", /^StreamError: create stream/],
    ["with an invalid spec", { metadata: meta(), spec: {}, status: { observedGeneration: 1, conditions: [cond("Ready", "False", "InvalidSpec", "bad")] } }, "Degraded", /InvalidSpec/],
    ["while workers start", { metadata: meta(), spec: {}, status: { observedGeneration: 1, conditions: [cond("Ready", "False", "WorkersUnavailable", "0/2 ready")] } }, "Progressing", /0\/2 ready/],
    ["with Ready Unknown", { metadata: meta(), spec: {}, status: { observedGeneration: 1, conditions: [cond("Ready", "Unknown", "Reconciling")] } }, "Progressing", /Reconciling/],
    ["with no conditions", { metadata: meta(), spec: {}, status: { observedGeneration: 1 } }, "Progressing", /Waiting for the Ready condition/],
  ];
  for (const [name, object, status, message] of table) {
    it(`reports ${status} when ${name}`, () => {
      const hs = health("Queue", object);
      assert.equal(hs.status, status, hs.message);
      assert.match(hs.message, message);
    });
  }
});

describe("when a Schedule's health is assessed", () => {
  const table: Array<[string, unknown, string, RegExp]> = [
    ["suspended", { metadata: meta(), spec: { schedule: "@hourly", suspend: true } }, "Suspended", /suspended/],
    ["not yet observed", { metadata: meta(3), spec: { schedule: "@hourly" }, status: { observedGeneration: 2 } }, "Progressing", /generation 3/],
    ["invalid", { metadata: meta(), spec: { schedule: "61 * * * *" }, status: { observedGeneration: 1, conditions: [cond("Ready", "False", "InvalidSchedule", 'spec.schedule: "61 * * * *": Invalid value for minute: 61')] } }, "Degraded", /^InvalidSchedule: spec\.schedule: "61/],
    ["ready", { metadata: meta(), spec: { schedule: "@hourly" }, status: { observedGeneration: 1, nextScheduleTime: "2026-01-01T11:00:00Z", lastScheduleTime: "2026-01-01T10:00:00Z", missedRuns: 2, conditions: [cond("Ready", "True", "Scheduled")] } }, "Healthy", /^next run 2026-01-01T11:00:00Z, last run 2026-01-01T10:00:00Z, 2 missed$/],
    ["without generation (older API servers)", { metadata: { name: "x" }, spec: { schedule: "@hourly" }, status: { conditions: [cond("Ready", "True", "Scheduled", "ok")] } }, "Healthy", /^ok$/],
  ];
  for (const [name, object, status, message] of table) {
    it(`reports ${status} when ${name}`, () => {
      const hs = health("Schedule", object);
      assert.equal(hs.status, status, hs.message);
      assert.match(hs.message, message);
    });
  }

  const template = { spec: { queue: "default", task: "reports.generate" } } as unknown as ScheduleSpec["taskTemplate"];
  const objectFromPlan = (spec: ScheduleSpec) => {
    const plan = planScheduleRun({ name: "nightly", creationTimestamp: "2026-01-01T00:00:00Z", generation: 1, spec, tasks: [], now: new Date("2026-01-01T03:00:00Z") });
    return { metadata: meta(1), spec, status: JSON.parse(JSON.stringify(plan.status)) as unknown };
  };
  it("reports Healthy for the status planScheduleRun writes for a valid Schedule", () => {
    assert.equal(health("Schedule", objectFromPlan({ schedule: "0 3 * * *", taskTemplate: template })).status, "Healthy");
  });
  it("reports Degraded for the status planScheduleRun writes for a bad time zone", () => {
    const hs = health("Schedule", objectFromPlan({ schedule: "0 3 * * *", timeZone: "Mars/Olympus", taskTemplate: template }));
    assert.equal(hs.status, "Degraded");
    assert.match(hs.message ?? "", /^InvalidSchedule: spec.timeZone: unknown time zone "Mars\/Olympus": use an IANA time zone name/);
  });
  it("reports Suspended for a suspended Schedule planned by planScheduleRun", () => {
    assert.equal(health("Schedule", objectFromPlan({ schedule: "0 3 * * *", suspend: true, taskTemplate: template })).status, "Suspended");
  });
  it("only ever returns statuses Argo CD knows", () => {
    for (const [, object] of table) assert.ok(ARGO_STATUSES.includes(health("Schedule", object).status));
  });
});

describe("when a Workflow's health is assessed", () => {
  const step = (name: string, phase: string, extra: Record<string, unknown> = {}) => ({ name, phase, tasks: { total: 1, succeeded: phase === "Succeeded" ? 1 : 0, failed: phase === "Failed" ? 1 : 0, running: phase === "Running" ? 1 : 0 }, ...extra });
  const failedCond = (message: string) => [cond("Succeeded", "False", "Failed"), cond("Failed", "True", "StepFailed", message)];
  const table: Array<[string, unknown, string, RegExp]> = [
    ["no status yet", { metadata: meta() }, "Progressing", /^Waiting for the operator to start the Workflow$/],
    ["an empty status", { metadata: meta(), status: {} }, "Progressing", /^Waiting for the operator/],
    ["Pending on its Queue", { metadata: meta(), status: { phase: "Pending", progress: "0/4", message: 'step "a": Queue "etl" not found' } }, "Progressing", /^Pending \(0\/4 steps\): step "a": Queue "etl" not found$/],
    ["Running", { metadata: meta(), status: { phase: "Running", progress: "7/12", conditions: [cond("Succeeded", "False", "Running"), cond("Failed", "False", "Running")] } }, "Progressing", /^Running \(7\/12 steps\)$/],
    ["Running again after a retry", { metadata: meta(), status: { phase: "Running", progress: "2/4", retries: 1 } }, "Progressing", /^Running \(2\/4 steps\), retry 1$/],
    ["Succeeded", { metadata: meta(), status: { phase: "Succeeded", progress: "4/4", duration: "1.5s", conditions: [cond("Succeeded", "True", "Succeeded")] } }, "Healthy", /^Succeeded \(4\/4 steps\) in 1\.5s$/],
    ["Failed with status.message", { metadata: meta(), status: { phase: "Failed", progress: "2/4", message: 'step "load" failed: ValueError: boom', conditions: failedCond("other") } }, "Degraded", /^Failed: step "load" failed: ValueError: boom \(2\/4 steps\)$/],
    ["Failed as InvalidSpec (a cycle)", { metadata: meta(), status: { phase: "Failed", message: "steps form a dependency cycle a → c → b → a (each depends on the next)" } }, "Degraded", /^Failed: steps form a dependency cycle a → c → b → a/],
    ["Failed with only the Failed condition", { metadata: meta(), status: { phase: "Failed", conditions: failedCond('step "b" failed') } }, "Degraded", /^Failed: step "b" failed$/],
    ["Failed with only a failed step", { metadata: meta(), status: { phase: "Failed", steps: [step("a", "Succeeded"), step("b", "Failed", { error: { type: "TimeoutError", message: "took longer than 30 s", taskId: "u_b" } }), step("c", "Cancelled")] } }, "Degraded", /^Failed: step "b" failed: TimeoutError: took longer than 30 s$/],
    ["Failed with nothing said", { metadata: meta(), status: { phase: "Failed" } }, "Degraded", /^Failed$/],
    ["Cancelled", { metadata: meta(), status: { phase: "Cancelled", progress: "1/3", message: 'step "b": task revoked' } }, "Degraded", /^Cancelled: step "b": task revoked \(1\/3 steps\)$/],
    ["in a phase it does not know", { metadata: meta(), status: { phase: "Paused" } }, "Unknown", /^Unknown phase Paused$/],
  ];
  for (const [name, object, status, message] of table) {
    it(`reports ${status} when ${name}`, () => {
      const hs = health("Workflow", object);
      assert.equal(hs.status, status, hs.message);
      assert.match(hs.message, message);
    });
  }
  it("only ever returns statuses Argo CD knows", () => {
    for (const [, object] of table) assert.ok(ARGO_STATUSES.includes(health("Workflow", object).status));
  });
});
