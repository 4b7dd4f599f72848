/**
 * The canvas planner (canvas/plan.ts), pure: chain flattening, group join records, chords,
 * nesting, argsRef for large inputs, callbacks, the cancellation set, ids and result targets, and
 * the join bitmap.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { freezeCanvas, type CanvasNode, type JoinRecord, type TaskNode } from "../../api/canvas.js";
import { cancelledBy, canvasTaskIds, emptyBitmap, joinBit, MAX_INLINE_INPUT_BYTES, planLaunch, resultTarget, setJoinBits, stepOf, type Place } from "../../canvas/plan.js";

const t = (task: string, args?: unknown[], extra: Partial<TaskNode> = {}): TaskNode => ({ kind: "task", task, ...(args ? { args } : {}), ...extra });
const place: Place = { root: "c1", home: "q", queue: "q" };
const plan = (n: CanvasNode, input?: Parameters<typeof planLaunch>[1], p: Partial<Place> = {}) => planLaunch(freezeCanvas(n, "c1"), input, { ...place, ...p });

describe("when planning a chain", () => {
  it("publishes only its first step, the rest as `then`, nested chains flattened", () => {
    const p = plan({ kind: "chain", steps: [t("a", [1]), { kind: "chain", steps: [t("b"), t("c")] }, t("d")] });
    assert.equal(p.joins.length, 0);
    assert.equal(p.messages.length, 1);
    const m = p.messages[0]!;
    assert.equal(m.id, "c1-0");
    assert.deepEqual(m.args, [1]);
    assert.deepEqual(m.canvas.then?.map((n) => n.id), ["c1-1", "c1-2"]);
    // launching the continuation flattens the nested chain before the outer rest
    const next = planLaunch(m.canvas.then![0]!, { kind: "value", value: 5, from: { id: "c1-0", queue: "q" } }, { ...place, then: m.canvas.then!.slice(1), parent: "c1-0" });
    assert.equal(next.messages[0]!.id, "c1-1-0");
    assert.deepEqual(next.messages[0]!.args, [5]);
    assert.deepEqual(next.messages[0]!.canvas.then?.map((n) => n.id), ["c1-1-1", "c1-2"]);
    assert.equal(next.messages[0]!.canvas.parent, "c1-0");
  });

  it("prepends the parent's result unless the step is immutable, and keeps root/home/step", () => {
    const input = { kind: "value" as const, value: { x: 1 }, from: { id: "p", queue: "q" } };
    assert.deepEqual(plan(t("a", [2]), input).messages[0]!.args, [{ x: 1 }, 2]);
    assert.deepEqual(plan(t("a", [2], { immutable: true }), input).messages[0]!.args, [2]);
    const m = plan(t("a"), input, { step: 3 }).messages[0]!;
    assert.equal(m.canvas.root, "c1");
    assert.equal(m.canvas.home, "q");
    assert.equal(m.canvas.step, 3);
    assert.equal(m.canvas.argsRef, undefined);
  });

  it("passes an input above MAX_INLINE_INPUT_BYTES by reference to the parent's record", () => {
    const big = "x".repeat(MAX_INLINE_INPUT_BYTES + 1);
    const m = plan(t("a", [7]), { kind: "value", value: big, from: { id: "p", queue: "other" } }).messages[0]!;
    assert.deepEqual(m.args, [null, 7]);
    assert.deepEqual(m.canvas.argsRef, { kind: "task", id: "p", queue: "other" });
    const small = plan(t("a"), { kind: "value", value: "x".repeat(MAX_INLINE_INPUT_BYTES - 10), from: { id: "p", queue: "q" } }).messages[0]!;
    assert.equal(small.canvas.argsRef, undefined);
  });

  it("routes a step to its options' queue, else the place's", () => {
    const p = plan({ kind: "chain", steps: [t("a", [], { options: { queue: "gpu" } }), t("b")] });
    assert.equal(p.messages[0]!.queue, "gpu");
    assert.equal(p.messages[0]!.canvas.home, "q");
  });
});

describe("when planning a group", () => {
  it("just publishes its members when nothing follows it", () => {
    const p = plan({ kind: "group", members: [t("a"), t("b")] });
    assert.equal(p.joins.length, 0);
    assert.deepEqual(p.messages.map((m) => [m.id, m.canvas.join, m.canvas.step]), [["c1-0", undefined, 0], ["c1-1", undefined, 1]]);
  });

  it("creates its join record before the members when it has a continuation, each member filling a slot", () => {
    const p = plan({ kind: "chain", steps: [{ kind: "group", members: [t("a"), t("b"), t("c")] }, t("sum")] });
    assert.equal(p.joins.length, 1);
    const j = p.joins[0]!;
    assert.equal(j.id, "c1-0");
    assert.equal(j.size, 3);
    assert.equal(j.count, 0);
    assert.equal(j.done, emptyBitmap(3));
    assert.deepEqual(j.then.map((n) => n.id), ["c1-1"]);
    assert.deepEqual(p.messages.map((m) => m.canvas.join), [{ id: "c1-0", index: 0 }, { id: "c1-0", index: 1 }, { id: "c1-0", index: 2 }]);
    assert.ok(p.messages.every((m) => m.canvas.then === undefined));
  });

  it("gives every member the group's input", () => {
    const p = plan({ kind: "group", members: [t("a"), t("b")] }, { kind: "value", value: 9, from: { id: "p", queue: "q" } });
    assert.deepEqual(p.messages.map((m) => m.args), [[9], [9]]);
  });

  it("creates a join for a group with only link or linkError callbacks", () => {
    const p = plan({ kind: "group", members: [t("a")], link: [t("done")], linkError: [t("oops")] });
    assert.equal(p.joins.length, 1);
    assert.deepEqual(p.joins[0]!.link?.map((n) => n.id), ["c1-l0"]);
    assert.deepEqual(p.joins[0]!.linkError?.map((n) => n.id), ["c1-e0"]);
  });

  it("marks an empty map's join ready (complete at once)", () => {
    const p = plan({ kind: "chain", steps: [{ kind: "map", task: t("sq"), items: [] }, t("sum")] });
    assert.equal(p.joins[0]!.size, 0);
    assert.deepEqual(p.ready, ["c1-0"]);
    assert.equal(p.messages.length, 0);
  });

  it("plans chunks tasks with chunk mode and no prepended input", () => {
    const p = plan({ kind: "chunks", task: t("add"), items: [[1, 2], [3, 4], [5, 6]], n: 2 }, { kind: "value", value: 1, from: { id: "p", queue: "q" } });
    assert.deepEqual(p.messages.map((m) => [m.args, m.canvas.chunk]), [[[[1, 2], [3, 4]], true], [[[5, 6]], true]]);
  });
});

describe("when planning a chord", () => {
  it("creates the header's join whose `then` is the body followed by the rest of the chain", () => {
    const p = plan({ kind: "chain", steps: [{ kind: "chord", header: [t("a"), t("b")], body: t("sum") }, t("after")] });
    const j = p.joins[0]!;
    assert.equal(j.id, "c1-0");
    assert.deepEqual(j.then.map((n) => n.id), ["c1-0-b", "c1-1"]);
    assert.deepEqual(p.messages.map((m) => m.id), ["c1-0-0", "c1-0-1"]);
  });

  it("passes the join's results by reference to the body, never by value", () => {
    const p = plan({ kind: "chord", header: [t("a")], body: t("sum", [10]) });
    const body = p.joins[0]!.then[0]!;
    const m = planLaunch(body, { kind: "join", id: "c1" }, { ...place, parent: "c1" }).messages[0]!;
    assert.deepEqual(m.args, [null, 10]);
    assert.deepEqual(m.canvas.argsRef, { kind: "join", id: "c1" });
  });

  it("keeps chord.linkError on its join (header failure) and pushes chord.link to the body", () => {
    const p = plan({ kind: "chord", header: [t("a")], body: t("sum"), link: [t("l")], linkError: [t("e")] });
    const j = p.joins[0]!;
    assert.deepEqual(j.linkError?.map((n) => n.id), ["c1-e0"]);
    assert.equal(j.link, undefined);
    const body = j.then[0]!;
    assert.deepEqual(body.link?.map((n) => n.id), ["c1-l0"]);
    assert.deepEqual(body.linkError?.map((n) => n.id), ["c1-e0"]);
  });
});

describe("when planning nested composites", () => {
  it("gives an inner group's join the outer slot, and an inner chain its slot after its `then`", () => {
    const p = plan({ kind: "chord", header: [{ kind: "group", members: [t("a"), t("b")] }, { kind: "chain", steps: [t("c"), t("d")] }], body: t("sum") });
    assert.deepEqual(p.joins.map((j) => [j.id, j.size, j.join]), [["c1", 2, undefined], ["c1-0", 2, { id: "c1", index: 0 }]]);
    const byId = new Map(p.messages.map((m) => [m.id, m]));
    assert.deepEqual(byId.get("c1-0-0")!.canvas.join, { id: "c1-0", index: 0 });
    assert.deepEqual(byId.get("c1-1-0")!.canvas.join, { id: "c1", index: 1 });
    assert.deepEqual(byId.get("c1-1-0")!.canvas.then?.map((n) => n.id), ["c1-1-1"]);
    // outer join first: a join is always created before anything that could complete it
    assert.equal(p.joins[0]!.id, "c1");
  });

  it("pushes a chain's linkError to every step, and its link to the last", () => {
    const p = plan({ kind: "chain", steps: [t("a"), t("b")], link: [t("ok")], linkError: [t("bad")] });
    const m = p.messages[0]!;
    assert.deepEqual(m.canvas.linkError?.map((n) => n.id), ["c1-e0"]);
    assert.equal(m.canvas.link, undefined);
    const last = m.canvas.then![0]!;
    assert.deepEqual(last.link?.map((n) => n.id), ["c1-l0"]);
  });

  it("plans an errback with [taskId, error] prepended", () => {
    const m = planLaunch(freezeCanvas(t("bad", [1]), "c1-e0"), { kind: "error", taskId: "x", error: { type: "TypeError", message: "nope" } }, place).messages[0]!;
    assert.deepEqual(m.args, ["x", { type: "TypeError", message: "nope" }, 1]);
  });
});

describe("when a step fails", () => {
  it("cancels every task of its continuation, their links included, their errbacks and the firing ones not", () => {
    const frozen = freezeCanvas({ kind: "chain", steps: [t("a"), { kind: "chord", header: [t("b"), t("c")], body: t("d", [], { link: [t("dl")] }) }, t("e")], linkError: [t("err")] }, "c1");
    assert.equal(frozen.kind, "chain");
    const rest = frozen.kind === "chain" ? frozen.steps.slice(1) : [];
    const ids = cancelledBy(rest, "q", ["c1-e0"]).map((x) => x.id);
    assert.deepEqual(ids, ["c1-1-0", "c1-1-1", "c1-1-b", "c1-1-b-l0", "c1-2"]);
  });
});

describe("when listing a canvas's tasks and its result", () => {
  it("lists every task once, in order, with its queue", () => {
    const f = freezeCanvas({ kind: "chain", steps: [t("a", [], { options: { queue: "gpu" } }), { kind: "group", members: [t("b"), t("c")] }], linkError: [t("e")] }, "c1");
    assert.deepEqual(canvasTaskIds(f, "q"), [
      { id: "c1-0", task: "a", queue: "gpu" },
      { id: "c1-e0", task: "e", queue: "q" },
      { id: "c1-1-0", task: "b", queue: "q" },
      { id: "c1-1-1", task: "c", queue: "q" },
    ]);
  });

  it("targets the last step of a chain, a group's join, a chord's body", () => {
    assert.deepEqual(resultTarget(freezeCanvas({ kind: "chain", steps: [t("a"), t("b")] }, "c")), { kind: "task", id: "c-1" });
    assert.deepEqual(resultTarget(freezeCanvas({ kind: "group", members: [t("a"), t("b")] }, "c")), { kind: "join", id: "c", size: 2 });
    assert.deepEqual(resultTarget(freezeCanvas({ kind: "chord", header: [t("a")], body: t("b") }, "c")), { kind: "task", id: "c-b" });
    assert.deepEqual(resultTarget(freezeCanvas({ kind: "chain", steps: [t("a"), { kind: "map", task: t("b"), items: [1, 2, 3] }] }, "c")), { kind: "join", id: "c-1", size: 3 });
  });

  it("derives step indexes from ids", () => {
    assert.deepEqual(["c", "c-3", "c-1-12", "c-b", "c-l2", "c-e0"].map(stepOf), [0, 3, 12, 0, 2, 0]);
  });
});

describe("when setting join bits", () => {
  const rec = (size: number): JoinRecord => ({ v: 1, id: "j", root: "c", home: "q", size, done: emptyBitmap(size), count: 0, then: [], step: 0, createdAt: "" });
  it("completes exactly once, whatever the order and repeats", () => {
    let r = rec(10);
    let completions = 0;
    for (const batch of [[3], [0, 1, 3], [9, 2], [4, 5, 6, 7], [8], [8, 1]]) {
      const out = setJoinBits(r, batch);
      if (out.complete) completions++;
      r = out.record;
    }
    assert.equal(completions, 1);
    assert.equal(r.count, 10);
    for (let i = 0; i < 10; i++) assert.ok(joinBit(r, i));
  });

  it("ignores indexes out of range and counts only new bits", () => {
    const out = setJoinBits(rec(3), [5, -1, 1, 1]);
    assert.equal(out.added, 1);
    assert.equal(out.record.count, 1);
    assert.ok(!out.complete);
  });
});
