import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkManifest } from "../../api/manifest.js";

type Obj = Record<string, unknown>;
const task = (spec: Obj): Obj => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "t" }, spec });
const queue = (spec: Obj): Obj => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "q" }, spec });
const schedule = (spec: Obj): Obj => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: { name: "s" }, spec });
const okTask = { queue: "default", task: "reports.generate" };
const okTemplate = { spec: okTask };

/** [case, object, expected field path, expected reason, message fragment] */
const cases: Array<[string, Obj, string, string, string]> = [
  ["missing queue", task({ task: "a.b" }), "spec.queue", "FieldValueRequired", "Required value"],
  ["missing task name", task({ queue: "default" }), "spec.task", "FieldValueRequired", "Required value"],
  ["missing spec", { apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "t" } }, "spec", "FieldValueRequired", "Required value"],
  ["negative timeout", task({ ...okTask, timeoutSeconds: -5 }), "spec.timeoutSeconds", "FieldValueInvalid", "should be greater than or equal to 1"],
  ["fractional timeout", task({ ...okTask, timeoutSeconds: 1.5 }), "spec.timeoutSeconds", "FieldValueTypeInvalid", "must be of type integer"],
  ["both countdown and eta", task({ ...okTask, countdownSeconds: 10, eta: "2026-11-23T10:00:00Z" }), "spec", "FieldValueInvalid", 'Invalid value: "object": countdownSeconds and eta are mutually exclusive'],
  ["countdown longer than expiry", task({ ...okTask, countdownSeconds: 600, expiresSeconds: 60 }), "spec", "FieldValueInvalid", "countdownSeconds must not exceed expiresSeconds"],
  ["eta after expires", task({ ...okTask, eta: "2026-11-23T10:00:00Z", expires: "2026-11-23T09:00:00Z" }), "spec", "FieldValueInvalid", "eta must not be later than expires"],
  ["minReplicas above maxReplicas", queue({ autoscaling: { minReplicas: 5, maxReplicas: 2 } }), "spec.autoscaling", "FieldValueInvalid", 'Invalid value: "object": minReplicas must not exceed maxReplicas'],
  ["Queue name not a DNS-1123 label", { ...queue({}), metadata: { name: "orders.eu" } }, "<nil>", "FieldValueInvalid", "Queue name must be a DNS-1123 label"],
  ["uppercase name", { ...task(okTask), metadata: { name: "Nightly" } }, "metadata.name", "FieldValueInvalid", 'Invalid value: "Nightly": a lowercase RFC 1123 subdomain must consist of'],
  ["name with underscore", { ...task(okTask), metadata: { name: "my_task" } }, "metadata.name", "FieldValueInvalid", "a lowercase RFC 1123 subdomain"],
  ["name over 253 characters", { ...task(okTask), metadata: { name: "a".repeat(254) } }, "metadata.name", "FieldValueInvalid", "must be no more than 253 characters"],
  ["schedule template with countdown and eta", schedule({ schedule: "@daily", taskTemplate: { spec: { ...okTask, countdownSeconds: 1, eta: "2026-11-23T10:00:00Z" } } }), "spec.taskTemplate.spec", "FieldValueInvalid", "countdownSeconds and eta are mutually exclusive"],
  ["eta not a timestamp", task({ ...okTask, eta: "tomorrow" }), "spec.eta", "FieldValueInvalid", "must be of type date-time"],
  ["args not an array", task({ ...okTask, args: { a: 1 } }), "spec.args", "FieldValueTypeInvalid", "must be of type array"],
  ["kwargs not an object", task({ ...okTask, kwargs: [1] }), "spec.kwargs", "FieldValueTypeInvalid", "must be of type object"],
  ["task name with spaces", task({ ...okTask, task: "send email" }), "spec.task", "FieldValueInvalid", "should match"],
  ["queue name with uppercase", task({ ...okTask, queue: "Default" }), "spec.queue", "FieldValueInvalid", "should match"],
  ["retry maxAttempts zero", task({ ...okTask, retry: { maxAttempts: 0 } }), "spec.retry.maxAttempts", "FieldValueInvalid", "greater than or equal to 1"],
  ["backoff factor below 1", task({ ...okTask, retry: { backoff: { factor: 0.5 } } }), "spec.retry.backoff.factor", "FieldValueInvalid", "greater than or equal to 1"],
  ["negative countdown", task({ ...okTask, countdownSeconds: -1 }), "spec.countdownSeconds", "FieldValueInvalid", "greater than or equal to 0"],
  ["unknown stream storage", queue({ stream: { storage: "disk" } }), "spec.stream.storage", "FieldValueNotSupported", 'supported values: "file", "memory"'],
  ["bad duration", queue({ stream: { maxAge: "7 days" } }), "spec.stream.maxAge", "FieldValueInvalid", "should match"],
  ["bad duplicate window", queue({ stream: { duplicateWindow: "2x" } }), "spec.stream.duplicateWindow", "FieldValueInvalid", "should match"],
  ["zero concurrency", queue({ concurrency: 0 }), "spec.concurrency", "FieldValueInvalid", "greater than or equal to 1"],
  ["negative minReplicas", queue({ autoscaling: { minReplicas: -1 } }), "spec.autoscaling.minReplicas", "FieldValueInvalid", "greater than or equal to 0"],
  ["unknown deletionPolicy", queue({ deletionPolicy: "Orphan" }), "spec.deletionPolicy", "FieldValueNotSupported", 'supported values: "Retain", "Delete"'],
  ["unknown autoscaling provider", queue({ autoscaling: { provider: "hpa" } }), "spec.autoscaling.provider", "FieldValueNotSupported", "supported values"],
  ["ack wait too long", queue({ ackWaitSeconds: 7200 }), "spec.ackWaitSeconds", "FieldValueInvalid", "less than or equal to 3600"],
  ["env var without name", queue({ worker: { env: [{ value: "x" }] } }), "spec.worker.env[0].name", "FieldValueRequired", "Required value"],
  ["stream replicas 7", queue({ stream: { replicas: 7 } }), "spec.stream.replicas", "FieldValueInvalid", "less than or equal to 5"],
  ["missing schedule", schedule({ taskTemplate: okTemplate }), "spec.schedule", "FieldValueRequired", "Required value"],
  ["missing taskTemplate", schedule({ schedule: "@hourly" }), "spec.taskTemplate", "FieldValueRequired", "Required value"],
  ["template without queue", schedule({ schedule: "@hourly", taskTemplate: { spec: { task: "a" } } }), "spec.taskTemplate.spec.queue", "FieldValueRequired", "Required value"],
  ["cron with 3 fields", schedule({ schedule: "* * *", taskTemplate: okTemplate }), "spec.schedule", "FieldValueInvalid", "should match"],
  ["@every without a duration", schedule({ schedule: "@every soon", taskTemplate: okTemplate }), "spec.schedule", "FieldValueInvalid", "should match"],
  ["unknown concurrencyPolicy", schedule({ schedule: "@daily", concurrencyPolicy: "Sometimes", taskTemplate: okTemplate }), "spec.concurrencyPolicy", "FieldValueNotSupported", 'supported values: "Allow", "Forbid", "Replace"'],
  ["unknown missedRunPolicy", schedule({ schedule: "@daily", missedRunPolicy: "RunSome", taskTemplate: okTemplate }), "spec.missedRunPolicy", "FieldValueNotSupported", 'supported values: "RunLatest", "Skip", "RunAll"'],
  ["time zone with spaces", schedule({ schedule: "@daily", timeZone: "Europe Berlin", taskTemplate: okTemplate }), "spec.timeZone", "FieldValueInvalid", "should match"],
  ["negative starting deadline", schedule({ schedule: "@daily", startingDeadlineSeconds: -10, taskTemplate: okTemplate }), "spec.startingDeadlineSeconds", "FieldValueInvalid", "greater than or equal to 0"],
  ["suspend as a string", schedule({ schedule: "@daily", suspend: "yes", taskTemplate: okTemplate }), "spec.suspend", "FieldValueTypeInvalid", "must be of type boolean"],
];

describe("when an invalid Celeriac object is checked against its CRD schema", () => {
  it("has at least 15 cases in the table", () => {
    assert.ok(cases.length >= 15);
  });
  for (const [name, obj, field, reason, fragment] of cases) {
    it(`rejects ${name} naming ${field}`, () => {
      const { causes } = checkManifest(obj);
      const hit = causes.find((c) => c.field === field);
      assert.ok(hit, `expected a cause for ${field}, got ${JSON.stringify(causes)}`);
      assert.equal(hit.reason, reason);
      assert.ok(hit.message.includes(fragment), `message "${hit.message}" should include "${fragment}"`);
    });
  }
});

describe("when an object has fields the schema does not declare", () => {
  it("reports them as unknown and prunes them, as Strict field validation does", () => {
    const r = checkManifest(task({ ...okTask, retires: 3 }));
    assert.deepEqual(r.unknownFields, ["spec.retires"]);
    assert.equal((r.object.spec as Record<string, unknown>).retires, undefined);
  });
  it("says args must be an array when args is an object, instead of listing its keys as unknown", () => {
    const r = checkManifest(task({ ...okTask, args: { image: "x" } }));
    assert.deepEqual(r.unknownFields, []);
    assert.deepEqual(r.causes.map((c) => `${c.field}: ${c.message}`), ['spec.args: Invalid value: "object": spec.args in body must be of type array: "object"']);
  });
  it("keeps nulls inside args and kwargs, as kube-apiserver does under x-kubernetes-preserve-unknown-fields", () => {
    const r = checkManifest(task({ ...okTask, args: [null, { callback: null }], kwargs: { callback: null } }));
    assert.deepEqual(r.causes, []);
    const spec = r.object.spec as Record<string, unknown>;
    assert.deepEqual(spec.args, [null, { callback: null }]);
    assert.deepEqual(spec.kwargs, { callback: null });
  });
  it("keeps a null status.result (the schema marks it nullable)", () => {
    const r = checkManifest({ ...task(okTask), status: { phase: "Succeeded", result: null } });
    assert.deepEqual((r.object.status as Record<string, unknown>).result, null);
  });
  it("keeps free-form args and kwargs intact", () => {
    const r = checkManifest(task({ ...okTask, args: [1, { deep: [null, "x"] }], kwargs: { any: { thing: true } } }));
    assert.deepEqual(r.unknownFields, []);
    assert.deepEqual((r.object.spec as Record<string, unknown>).args, [1, { deep: [null, "x"] }]);
  });
});

describe("when a valid object is checked", () => {
  it("applies the documented defaults", () => {
    const r = checkManifest(queue({}));
    assert.deepEqual(r.causes, []);
    const spec = r.object.spec as Record<string, Record<string, unknown>>;
    assert.equal(spec.concurrency, 4);
    assert.equal(spec.timeoutSeconds, 3600);
    assert.equal(spec.ackWaitSeconds, 30);
    assert.deepEqual(spec.retry, { maxAttempts: 3, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true } });
    assert.deepEqual(spec.autoscaling, {
      provider: "builtin", minReplicas: 0, maxReplicas: 10, targetBacklogPerReplica: 10, activationBacklog: 1,
      pollingIntervalSeconds: 2, scaleDownStabilizationSeconds: 60, cooldownSeconds: 300,
    });
    assert.equal((spec.results as Record<string, unknown>).ttlSeconds, 86400);
    assert.equal(spec.deletionPolicy, "Retain");
  });
  it("leaves a Task's retry unset so the Queue's policy is inherited", () => {
    const r = checkManifest(task(okTask));
    assert.deepEqual(r.causes, []);
    assert.equal((r.object.spec as Record<string, unknown>).retry, undefined);
  });
});
