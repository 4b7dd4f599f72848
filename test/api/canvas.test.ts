/**
 * The canvas contract's pure parts: checkCanvas (every refusal names its path and the fix),
 * freezeCanvas (derived ids, map/starmap/chunks expansion, callback push-down) and the message
 * envelope's `canvas` field.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkCanvas, freezeCanvas, InvalidCanvasError, MAX_GROUP_SIZE, type CanvasNode, type FrozenNode, type TaskNode } from "../../api/canvas.js";
import { parseTaskMessage } from "../../api/message.js";

const t = (task: string, args?: unknown[]): TaskNode => ({ kind: "task", task, ...(args ? { args } : {}) });

function refusal(node: unknown): InvalidCanvasError {
  try {
    checkCanvas(node);
  } catch (err) {
    assert.ok(err instanceof InvalidCanvasError, `not an InvalidCanvasError: ${String(err)}`);
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(node)}`);
}

/** Every task node of a frozen tree, depth first (callbacks included). */
function tasks(n: FrozenNode, out: FrozenNode[] = []): FrozenNode[] {
  if (n.kind === "task") out.push(n);
  if (n.kind === "chain") n.steps.forEach((s) => tasks(s, out));
  if (n.kind === "group") n.members.forEach((s) => tasks(s, out));
  if (n.kind === "chord") {
    n.header.forEach((s) => tasks(s, out));
    tasks(n.body, out);
  }
  return out;
}

describe("when a canvas is checked", () => {
  it("accepts every kind, nested", () => {
    checkCanvas({
      kind: "chain",
      steps: [
        t("a", [2, 2]),
        { kind: "group", members: [{ kind: "chain", steps: [t("b"), t("c")] }, { kind: "map", task: t("d"), items: [1, 2] }] },
        { kind: "chord", header: [{ kind: "starmap", task: t("e"), items: [[1, 2]] }, { kind: "chunks", task: t("f"), items: [[1], [2], [3]], n: 2 }], body: t("g") },
      ],
      link: [t("ok")],
      linkError: [{ ...t("err"), immutable: true }],
    });
  });

  it("names the path and the fix for each refusal", () => {
    const cases: [unknown, string, RegExp][] = [
      [{ kind: "pipeline" }, "canvas.kind", /not a canvas kind: use one of task, chain/],
      [{ kind: "chain", steps: [] }, "canvas.steps", /at least 1 element/],
      [{ kind: "chain", steps: [t("a"), { kind: "task", task: "9bad" }] }, "canvas.steps[1].task", /not a task name/],
      [{ kind: "group", members: [{ kind: "task", task: "a", args: {} }] }, "canvas.members[0].args", /JSON array/],
      [{ kind: "task", task: "a", kwargs: [1] }, "canvas.kwargs", /JSON object/],
      [{ kind: "task", task: "a", id: "x" }, "canvas.id", /ids are derived from the canvas id/],
      [{ kind: "task", task: "a", options: { taskId: "x" } }, "canvas.options.taskId", /unknown signature option.*give taskId to client.apply/],
      [{ kind: "task", task: "a", options: { queue: "Bad_Queue" } }, "canvas.options.queue", /DNS-1123/],
      [{ kind: "task", task: "a", options: { countdown: 5 } }, "canvas.options.countdown", /unknown signature option: use queue, countdownSeconds/],
      [{ kind: "chord", header: [t("a")] }, "canvas.body", /must be an object with "kind"/],
      [{ kind: "starmap", task: t("a"), items: [1] }, "canvas.items[0]", /argument list/],
      [{ kind: "chunks", task: t("a"), items: [[1]], n: 0 }, "canvas.n", /positive integer/],
      [{ kind: "map", task: { kind: "chain", steps: [t("a")] }, items: [] }, "canvas.task.kind", /one task signature/],
      [{ kind: "task", task: "a", link: [{ kind: "task" }] }, "canvas.link[0].task", /not a task name/],
      [{ kind: "group", members: new Array(MAX_GROUP_SIZE + 1).fill(t("a")) }, "canvas.members", /at most 100000/],
    ];
    for (const [node, path, message] of cases) {
      const err = refusal(node);
      assert.equal(err.path, path, JSON.stringify(node).slice(0, 80));
      assert.match(err.message, message);
      assert.ok(err.message.startsWith(`${path}: `), err.message);
    }
  });

  it("refuses step options a worker would refuse, and typos inside retry and unique, naming the path", () => {
    const opt = (options: unknown) => refusal({ kind: "chain", steps: [t("a"), { kind: "task", task: "b", options }] });
    const cases: Array<[unknown, string, RegExp]> = [
      [{ timeoutSeconds: 0 }, "canvas.steps[1].options.timeoutSeconds", /integer from 1 to 604800/],
      [{ timeoutSeconds: 1.5 }, "canvas.steps[1].options.timeoutSeconds", /integer/],
      [{ retry: { maxAttempts: 0 } }, "canvas.steps[1].options.retry.maxAttempts", /integer from 1 to 1000/],
      [{ retry: { maxAtempts: 5 } }, "canvas.steps[1].options.retry.maxAtempts", /unknown field of a retry policy/],
      [{ retry: { backof: { initialSeconds: 1 } } }, "canvas.steps[1].options.retry.backof", /unknown field/],
      [{ retry: { backoff: { initalSeconds: 7 } } }, "canvas.steps[1].options.retry.backoff.initalSeconds", /unknown field of a backoff/],
      [{ retry: { backoff: { factor: 0.5 } } }, "canvas.steps[1].options.retry.backoff.factor", /≥ 1/],
      [{ unique: { key: "k", polcy: "Wait" } }, "canvas.steps[1].options.unique.polcy", /unknown field of unique/],
      [{ eta: "tomorrow" }, "canvas.steps[1].options.eta", /RFC 3339/],
      [{ countdownSeconds: 5, eta: "2030-01-01T00:00:00Z" }, "canvas.steps[1].options.eta", /exclusive/],
      [{ countdownSeconds: -1 }, "canvas.steps[1].options.countdownSeconds", /≥ 0/],
      [{ expires: "soon" }, "canvas.steps[1].options.expires", /RFC 3339/],
      [{ priority: 1.5 }, "canvas.steps[1].options.priority", /integer/],
    ];
    for (const [o, path, msg] of cases) {
      const e = opt(o);
      assert.equal(e.path, path, JSON.stringify(o));
      assert.match(e.message, msg, JSON.stringify(o));
      assert.ok(e.message.startsWith(`${path}: `), e.message);
    }
    checkCanvas({ kind: "task", task: "a", options: { timeoutSeconds: 60, retry: { maxAttempts: 3, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 10, jitter: false } }, unique: { key: "k", policy: "Wait" }, eta: "2030-01-01T00:00:00Z", expires: 30 } });
  });

  it("refuses nesting deeper than 32 levels", () => {
    let n: CanvasNode = t("a");
    for (let i = 0; i < 40; i++) n = { kind: "chain", steps: [n] };
    assert.match(refusal(n).message, /nested deeper than 32/);
  });
});

describe("when a canvas is frozen", () => {
  it("derives every id from the canvas id", () => {
    const f = freezeCanvas({ kind: "chain", steps: [t("a"), { kind: "chord", header: [t("b"), { kind: "chain", steps: [t("c"), t("d")] }], body: t("e") }] }, "R");
    assert.deepEqual(
      tasks(f).map((n) => n.id),
      ["R-0", "R-1-0", "R-1-1-0", "R-1-1-1", "R-1-b"],
    );
    assert.equal(f.id, "R");
  });

  it("expands map, starmap and chunks into groups of tasks, items prepended to the signature's args", () => {
    const m = freezeCanvas({ kind: "map", task: t("inc", ["x"]), items: [1, 2, 3] }, "M");
    assert.equal(m.kind, "group");
    assert.deepEqual(tasks(m).map((n) => [n.id, n.kind === "task" && n.args]), [["M-0", [1, "x"]], ["M-1", [2, "x"]], ["M-2", [3, "x"]]]);
    const s = freezeCanvas({ kind: "starmap", task: t("add"), items: [[1, 2], [3, 4]] }, "S");
    assert.deepEqual(tasks(s).map((n) => n.kind === "task" && n.args), [[1, 2], [3, 4]]);
    const c = freezeCanvas({ kind: "chunks", task: t("add"), items: [[1, 1], [2, 2], [3, 3]], n: 2 }, "C");
    assert.deepEqual(tasks(c).map((n) => n.kind === "task" && [n.id, n.args, n.chunk]), [["C-0", [[1, 1], [2, 2]], true], ["C-1", [[3, 3]], true]]);
    // a chunks signature's static args follow each item, as starmap's do
    const cs = freezeCanvas({ kind: "chunks", task: t("echo", ["STATIC"]), items: [[1], [2], [3]], n: 2 }, "CS");
    assert.deepEqual(tasks(cs).map((n) => n.kind === "task" && n.args), [[[1, "STATIC"], [2, "STATIC"]], [[3, "STATIC"]]]);
  });

  it("pushes a chain's link to its last step and its linkError to every step, keeping one id", () => {
    const f = freezeCanvas({ kind: "chain", steps: [t("a"), t("b")], link: [t("ok")], linkError: [t("err")] }, "R");
    assert.equal(f.kind, "chain");
    if (f.kind !== "chain") return;
    const [a, b] = f.steps;
    assert.equal(a?.kind === "task" && a.link, undefined);
    assert.deepEqual(b?.kind === "task" && b.link?.map((n) => n.id), ["R-l0"]);
    assert.deepEqual([a, b].map((s) => s?.kind === "task" && s.linkError?.map((n) => n.id)), [["R-e0"], ["R-e0"]]);
  });

  it("keeps a chord's linkError on the chord (header failures) and on its body, and its link on the body", () => {
    const f = freezeCanvas({ kind: "chord", header: [t("a")], body: t("b"), link: [t("ok")], linkError: [t("err")] }, "R");
    assert.equal(f.kind, "chord");
    if (f.kind !== "chord") return;
    assert.deepEqual(f.linkError?.map((n) => n.id), ["R-e0"]);
    assert.equal(f.link, undefined);
    assert.deepEqual(f.body.kind === "task" && [f.body.link?.map((n) => n.id), f.body.linkError?.map((n) => n.id)], [["R-l0"], ["R-e0"]]);
  });

  it("keeps a group's callbacks on the group, for its join", () => {
    const f = freezeCanvas({ kind: "group", members: [t("a"), t("b")], link: [t("ok")] }, "G");
    assert.deepEqual(f.link?.map((n) => n.id), ["G-l0"]);
    assert.ok(tasks(f).every((n) => n.link === undefined));
  });

  it("refuses a canvas id that is not a task id", () => {
    assert.throws(() => freezeCanvas(t("a"), "has space"), /taskId "has space" is invalid for a canvas/);
  });
});

describe("when a task message carries a canvas field", () => {
  const base = {
    v: 1, id: "R-0", task: "a", args: [], kwargs: {}, queue: "q", namespace: "default", origin: { kind: "Client" },
    timeoutSeconds: 60, retry: { maxAttempts: 1, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 10, jitter: false } }, createdAt: "2026-12-02T00:00:00.000Z",
  };
  it("accepts a valid one", () => {
    const r = parseTaskMessage(JSON.stringify({ ...base, canvas: { root: "R", home: "q", step: 0, then: [{ kind: "task", id: "R-1", task: "b" }], join: { id: "J", index: 3 } } }));
    assert.equal(r.ok, true);
  });
  it("refuses one without its home queue, naming the field", () => {
    const r = parseTaskMessage(JSON.stringify({ ...base, canvas: { root: "R", step: 0 } }));
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : "", /canvas\.home/);
  });
  it("refuses a continuation node of an unknown kind or without its id, naming the field", () => {
    const bogus = parseTaskMessage(JSON.stringify({ ...base, canvas: { root: "R", home: "q", step: 0, then: [{ kind: "bogus", id: "R-1", task: "b" }] } }));
    assert.match(!bogus.ok ? bogus.reason : "accepted", /canvas\.then\[0\]\.kind/);
    const noId = parseTaskMessage(JSON.stringify({ ...base, canvas: { root: "R", home: "q", step: 0, linkError: [{ kind: "task", task: "b" }] } }));
    assert.match(!noId.ok ? noId.reason : "accepted", /canvas\.linkError\[0\]\.id/);
  });
});
