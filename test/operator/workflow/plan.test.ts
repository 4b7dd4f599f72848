/**
 * The Workflow planner (operator/workflow/plan.ts): readiness in dependency order, fan-out ids,
 * fail fast, hooks one at a time, parallelism, retry-from-failed and the conditions. Pure.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Workflow } from "../../../api/objects.js";
import type { WorkflowSpec, WorkflowStatus } from "../../../api/workflow.js";
import { findCycle, topologicalOrder } from "../../../api/workflow-check.js";
import { planWorkflow, retryStatus, specProblem, type TaskObservation } from "../../../operator/workflow/plan.js";

const UID = "u1";
const wf = (spec: Partial<WorkflowSpec>, status?: WorkflowStatus): Workflow => ({
  apiVersion: "celeriac.io/v1alpha1", kind: "Workflow",
  metadata: { name: "w", namespace: "default", uid: UID, generation: 1 },
  spec: { queue: "q", steps: [], ...spec } as WorkflowSpec,
  ...(status ? { status } : {}),
});
const diamond: Partial<WorkflowSpec> = {
  steps: [
    { name: "d", task: "t", dependsOn: ["b", "c"] },
    { name: "a", task: "t" },
    { name: "b", task: "t", dependsOn: ["a"] },
    { name: "c", task: "t", dependsOn: ["a"] },
  ],
};
const NOW = new Date("2026-12-03T10:00:00Z");
function obs(tasks: Record<string, TaskObservation["phase"]> = {}, o: { published?: string[]; items?: Record<string, unknown[] | { error: string }>; queues?: string[] } = {}) {
  return {
    now: NOW,
    tasks: new Map(Object.entries(tasks).map(([k, phase]) => [k, { phase, attempts: 1, completionTime: NOW.toISOString(), ...(phase === "Failed" ? { error: { type: "Error", message: "boom" } } : {}) }])),
    published: new Set(o.published ?? []),
    items: new Map(Object.entries(o.items ?? {})),
    queueExists: (q: string) => (o.queues ?? ["q"]).includes(q),
  };
}
const ids = (p: ReturnType<typeof planWorkflow>) => p.publish.map((t) => t.id);

describe("planWorkflow", () => {
  it("publishes the roots first, then a step once every dependency succeeded, passing their results by name", () => {
    let p = planWorkflow(wf(diamond), obs());
    assert.deepEqual(ids(p), ["u1_a"]);
    assert.equal(p.status.phase, "Running");
    assert.equal(p.status.progress, "0/4");
    p = planWorkflow(wf(diamond), obs({ u1_a: "Succeeded" }));
    assert.deepEqual(ids(p), ["u1_b", "u1_c"]);
    assert.deepEqual(p.publish[0]!.inputs, [{ name: "a", queue: "q", ids: ["u1_a"], list: false }]);
    p = planWorkflow(wf(diamond), obs({ u1_a: "Succeeded", u1_b: "Succeeded" }, { published: ["u1_c"] }));
    assert.deepEqual(ids(p), [], "d waits for c");
    assert.equal(p.status.steps!.find((s) => s.name === "d")!.message, "waiting for c");
    p = planWorkflow(wf(diamond), obs({ u1_a: "Succeeded", u1_b: "Succeeded", u1_c: "Succeeded" }));
    assert.deepEqual(ids(p), ["u1_d"]);
    assert.deepEqual(p.publish[0]!.inputs.map((i) => i.name), ["b", "c"]);
  });

  it("lists status steps in spec order and finishes Succeeded with the leaf's result to load", () => {
    const p = planWorkflow(wf(diamond), obs({ u1_a: "Succeeded", u1_b: "Succeeded", u1_c: "Succeeded", u1_d: "Succeeded" }));
    assert.deepEqual(p.status.steps!.map((s) => s.name), ["d", "a", "b", "c"]);
    assert.equal(p.status.phase, "Succeeded");
    assert.equal(p.done, true);
    assert.deepEqual(p.loadResult, [{ name: "d", queue: "q", ids: ["u1_d"], list: false }]);
    const c = Object.fromEntries(p.status.conditions!.map((x) => [x.type, x.status]));
    assert.deepEqual(c, { Succeeded: "True", Failed: "False" });
  });

  it("fans a forEach out to one task per item, the item first, and asks for a fromStep list before planning it", () => {
    const spec: Partial<WorkflowSpec> = { steps: [{ name: "src", task: "t" }, { name: "each", task: "t", dependsOn: ["src"], forEach: { fromStep: "src" } }, { name: "lit", task: "t", forEach: { items: ["x", "y"] } }] };
    let p = planWorkflow(wf(spec), obs({ u1_src: "Succeeded" }));
    assert.deepEqual(p.loadItems, [{ name: "src", queue: "q", ids: ["u1_src"], list: false }]);
    assert.deepEqual(ids(p), ["u1_lit_0", "u1_lit_1"]);
    assert.deepEqual(p.publish.map((t) => t.item), [{ value: "x" }, { value: "y" }]);
    p = planWorkflow(wf(spec), obs({ u1_src: "Succeeded" }, { items: { each: [1, 2, 3] }, published: ["u1_lit_0", "u1_lit_1"] }));
    assert.deepEqual(ids(p), ["u1_each_0", "u1_each_1", "u1_each_2"]);
    assert.deepEqual(p.publish[0]!.inputs, [], "the forEach source is not passed in kwargs");
    const each = p.status.steps!.find((s) => s.name === "each")!;
    assert.equal(each.tasks.total, 3);
    p = planWorkflow(wf(spec), obs({ u1_src: "Succeeded" }, { items: { each: { error: "not a list" } } }));
    assert.equal(p.status.steps!.find((s) => s.name === "each")!.phase, "Failed");
  });

  it("keeps a 10,000-item fan-out's status small: counts and the first 5 ids", () => {
    const items = Array.from({ length: 10_000 }, (_, i) => i);
    const p = planWorkflow(wf({ steps: [{ name: "big", task: "t", forEach: { items } }] }), obs());
    assert.equal(p.publish.length, 10_000);
    const s = p.status.steps![0]!;
    assert.equal(s.taskIds!.length, 5);
    assert.ok(JSON.stringify(p.status).length < 2000, `status is ${JSON.stringify(p.status).length} bytes`);
  });

  it("fails fast: nothing new after a failure, running steps finish, the rest end Cancelled, then onFailure and onExit run one at a time", () => {
    const spec: Partial<WorkflowSpec> = { ...diamond, onFailure: { task: "alert" }, onExit: { task: "cleanup" } };
    let p = planWorkflow(wf(spec), obs({ u1_a: "Succeeded", u1_b: "Failed" }, { published: ["u1_c"] }));
    assert.deepEqual(ids(p), [], "c still runs; no hook yet");
    assert.equal(p.status.phase, "Running");
    assert.match(p.status.message!, /step b failed/);
    p = planWorkflow(wf(spec), obs({ u1_a: "Succeeded", u1_b: "Failed", u1_c: "Succeeded" }));
    const byName = Object.fromEntries(p.status.steps!.map((s) => [s.name, s]));
    assert.equal(byName.d!.phase, "Cancelled");
    assert.match(byName.d!.message!, /not run: step b failed/);
    assert.deepEqual(ids(p), ["u1_onFailure"]);
    assert.equal(p.publish[0]!.workflowArg!.phase, "Failed");
    assert.deepEqual(p.publish[0]!.workflowArg!.failedSteps.map((f) => f.name), ["b"]);
    p = planWorkflow(wf(spec), obs({ u1_a: "Succeeded", u1_b: "Failed", u1_c: "Succeeded", u1_onFailure: "Succeeded" }));
    assert.deepEqual(ids(p), ["u1_onExit"]);
    p = planWorkflow(wf(spec), obs({ u1_a: "Succeeded", u1_b: "Failed", u1_c: "Succeeded", u1_onFailure: "Succeeded", u1_onExit: "Succeeded" }));
    assert.equal(p.status.phase, "Failed");
    assert.equal(p.done, true);
    assert.match(p.status.message!, /^step b failed: Error: boom/);
    assert.ok(p.events.some((e) => e.reason === "Failed"));
    const c = Object.fromEntries(p.status.conditions!.map((x) => [x.type, x.status]));
    assert.deepEqual(c, { Succeeded: "False", Failed: "True" });
  });

  it("keeps a step (and a hook) the last status shows finished, though its record is gone (an operator restart after the results TTL)", () => {
    const first = planWorkflow(wf({ ...diamond, onExit: { task: "x" } }), obs({ u1_a: "Succeeded" }));
    assert.equal(first.status.steps!.find((s) => s.name === "a")!.phase, "Succeeded");
    // nothing observed now: a new process, the record of a expired
    const p = planWorkflow(wf({ ...diamond, onExit: { task: "x" } }, first.status), obs({}, { published: [] }));
    const a = p.status.steps!.find((s) => s.name === "a")!;
    assert.deepEqual(a, first.status.steps!.find((s) => s.name === "a"));
    assert.deepEqual(ids(p), ["u1_b", "u1_c"], "its dependents are ready; it is not run again");
    assert.ok(!p.ready.includes("u1_a"), "and not looked up");
    const done = planWorkflow(wf({ ...diamond, onExit: { task: "x" } }), obs({ u1_a: "Succeeded", u1_b: "Succeeded", u1_c: "Succeeded", u1_d: "Succeeded", u1_onExit: "Succeeded" }));
    const again = planWorkflow(wf({ ...diamond, onExit: { task: "x" } }, { ...done.status, phase: "Running" }), obs({}, { published: [] }));
    assert.equal(again.status.onExit?.phase, "Succeeded");
    assert.deepEqual(ids(again), []);
    assert.equal(again.status.phase, "Succeeded");
  });

  it("ends Cancelled when a step's task was revoked", () => {
    const p = planWorkflow(wf(diamond), obs({ u1_a: "Cancelled" }));
    assert.equal(p.status.phase, "Cancelled");
    assert.equal(p.status.steps!.find((s) => s.name === "a")!.phase, "Cancelled");
  });

  it("caps published-and-unfinished tasks at parallelism", () => {
    const p = planWorkflow(wf({ parallelism: 3, steps: [{ name: "e", task: "t", forEach: { items: [1, 2, 3, 4, 5] } }] }), obs({}, { published: ["u1_e_0"] }));
    assert.deepEqual(ids(p), ["u1_e_1", "u1_e_2"]);
    assert.equal(p.ready.length, 5, "every ready id is listed for adoption look-ups");
  });

  it("waits, without publishing, for a Queue that does not exist", () => {
    const p = planWorkflow(wf(diamond), obs({}, { queues: [] }));
    assert.deepEqual(ids(p), []);
    assert.equal(p.status.phase, "Pending");
    assert.match(p.status.message!, /waiting for Queue "q"/);
  });

  it("retries from the failed steps: new generations for failed and never-run steps, the succeeded kept", () => {
    const failed = planWorkflow(wf(diamond), obs({ u1_a: "Succeeded", u1_b: "Failed", u1_c: "Succeeded" })).status;
    const st = retryStatus(wf(diamond, failed), "2026-12-03T10:01:00Z");
    assert.equal(st.retries, 1);
    assert.equal(st.phase, "Running");
    const gen = Object.fromEntries(st.steps!.map((s) => [s.name, s.generation ?? 0]));
    assert.deepEqual(gen, { d: 1, a: 0, b: 1, c: 0 });
    const p = planWorkflow(wf(diamond, st), obs({ u1_a: "Succeeded", u1_b: "Failed", u1_c: "Succeeded" }));
    assert.deepEqual(ids(p), ["u1_b_g1"]);
  });
});

describe("the spec problems kubectl apply lets through", () => {
  it("orders steps so every dependency comes first, ties in spec order", () => {
    assert.deepEqual(topologicalOrder(diamond.steps!), ["a", "b", "c", "d"]);
  });
  it("names a cycle of any length as a path", () => {
    const steps = [{ name: "a", task: "t", dependsOn: ["c"] }, { name: "b", task: "t", dependsOn: ["a"] }, { name: "c", task: "t", dependsOn: ["b"] }, { name: "x", task: "t" }];
    assert.throws(() => topologicalOrder(steps), /a → c → b → a/);
    assert.deepEqual(findCycle(steps), ["a", "c", "b", "a"]);
    assert.match(specProblem({ queue: "q", steps })!, /a → c → b → a/);
    assert.equal(specProblem({ queue: "q", ...diamond } as WorkflowSpec), undefined);
    assert.match(specProblem({ queue: "q", steps: [{ name: "a", task: "t" }, { name: "b", task: "t", dependsOn: ["a"], kwargs: { a: 1 } }] })!, /kwargs/);
  });
});
