// The canvas builders (canvas/build.ts): pure, builders → the wire CanvasNode of api/canvas.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkCanvas, freezeCanvas, InvalidCanvasError, type CanvasNode } from "../../api/canvas.js";
import { chain, chord, chunks, group, immutableSignature, isCanvas, map, signature, starmap, toCanvasNode, type Signature } from "../../canvas/build.js";
import { defineTask } from "../../worker/define-task.js";
import * as workerIndex from "../../worker/index.js";
import * as clientIndex from "../../client/index.js";

type Two = { args: [a: number, b: number]; kwargs: Record<string, never>; result: number };
const add = defineTask<"math.add", Two>("math.add", ([a, b]) => a + b);
const mul = defineTask<"math.mul", Two>("math.mul", ([a, b]) => a * b);
const tsum = defineTask<"math.tsum", { args: [xs: number[]]; kwargs: Record<string, never>; result: number }>("math.tsum", ([xs]) => xs.reduce((s, x) => s + x, 0));

/** The wire form must pass the contract's own check. */
function wire<N extends CanvasNode>(c: { toJSON(): N }): N {
  const n = c.toJSON();
  checkCanvas(n);
  return n;
}

describe("when building a signature", () => {
  it("gives a task node from a name, with args, kwargs and options", () => {
    assert.deepEqual(wire(signature("math.add", [2, 2], { round: true }, { queue: "math", countdownSeconds: 5 })), {
      kind: "task",
      task: "math.add",
      args: [2, 2],
      kwargs: { round: true },
      options: { queue: "math", countdownSeconds: 5 },
    });
  });

  it("leaves empty args, kwargs and options out", () => {
    assert.deepEqual(wire(signature("noop")), { kind: "task", task: "noop" });
  });

  it("takes a defineTask value: add.s([2, 2]) is signature(add, [2, 2])", () => {
    assert.deepEqual(wire(add.s([2, 2])), { kind: "task", task: "math.add", args: [2, 2] });
    assert.deepEqual(wire(signature(add, [2, 2])), wire(add.s([2, 2])));
  });

  it("marks si signatures immutable (the parent's result is not prepended)", () => {
    assert.deepEqual(wire(add.si([1, 2])), { kind: "task", task: "math.add", args: [1, 2], immutable: true });
    assert.deepEqual(wire(immutableSignature("math.add", [1, 2])), wire(add.si([1, 2])));
  });

  it("merges options with .set() and returns the same signature", () => {
    const s = add.s([1]).set({ queue: "fast" });
    assert.equal(s.set({ priority: 3 }), s);
    assert.deepEqual(wire(s).options, { queue: "fast", priority: 3 });
  });

  it("is typed by the handler: its result type, and any tail of its args", () => {
    const s: Signature<number> = add.s([4]);
    // @ts-expect-error mul takes numbers
    const wrongType = () => mul.s(["x"]);
    // @ts-expect-error mul takes two arguments at most
    const tooMany = () => mul.s([1, 2, 3]);
    // @ts-expect-error si takes the complete arguments
    const partial = () => mul.si([1]);
    assert.deepEqual([typeof wrongType, typeof tooMany, typeof partial], ["function", "function", "function"]);
    const c = chain(add.s([2, 2]), mul.s([4]));
    const r: number | undefined = c.__result;
    const g = group(add.s([1, 1]), signature("x"));
    const gr: [number, unknown] | undefined = g.__result;
    assert.deepEqual([r, gr], [undefined, undefined]);
    assert.ok(isCanvas(s));
  });

  it("returns a fresh plain object from toJSON, and JSON.stringify uses it", () => {
    const s = add.s([1, 2]);
    const a = s.toJSON();
    (a as { args: unknown[] }).args.push(99);
    assert.deepEqual(s.toJSON(), { kind: "task", task: "math.add", args: [1, 2] });
    assert.deepEqual(JSON.parse(JSON.stringify(chain(s, mul.s([2])))), { kind: "chain", steps: [{ kind: "task", task: "math.add", args: [1, 2] }, { kind: "task", task: "math.mul", args: [2] }] });
  });
});

describe("when composing", () => {
  it("gives Celery's chain(add.s(2, 2), mul.s(4)) shape", () => {
    assert.deepEqual(wire(chain(add.s([2, 2]), mul.s([4]))), {
      kind: "chain",
      steps: [
        { kind: "task", task: "math.add", args: [2, 2] },
        { kind: "task", task: "math.mul", args: [4] },
      ],
    });
  });

  it("takes a group's members as arguments or as one array", () => {
    const spread = wire(group(add.s([1, 1]), add.s([2, 2])));
    assert.deepEqual(spread, { kind: "group", members: [{ kind: "task", task: "math.add", args: [1, 1] }, { kind: "task", task: "math.add", args: [2, 2] }] });
    assert.deepEqual(wire(group([add.s([1, 1]), add.s([2, 2])])), spread);
    assert.deepEqual(wire(group(Array.from({ length: 3 }, (_, i) => add.s([i, i])))).kind, "group");
  });

  it("takes a chain's steps as arguments or as one array, as Celery's chain does", () => {
    assert.deepEqual(wire(chain([add.s([1, 1]), mul.s([3])])), wire(chain(add.s([1, 1]), mul.s([3]))));
  });

  it("takes a chord's header as a group or as an array", () => {
    const expected = { kind: "chord", header: [{ kind: "task", task: "math.add", args: [1, 1] }, { kind: "task", task: "math.add", args: [2, 2] }], body: { kind: "task", task: "math.tsum" } };
    assert.deepEqual(wire(chord(group(add.s([1, 1]), add.s([2, 2])), tsum.s())), expected);
    assert.deepEqual(wire(chord([add.s([1, 1]), add.s([2, 2])], tsum.s())), expected);
  });

  it("nests: a chain of groups, a group of chains, a chord whose header holds chains", () => {
    const n = wire(chord([chain(add.s([1, 1]), mul.s([3])), group(add.s([0, 1]))], chain(tsum.s(), mul.s([2]))));
    assert.equal(n.kind, "chord");
    const c = n as Extract<CanvasNode, { kind: "chord" }>;
    assert.deepEqual(c.header.map((h) => h.kind), ["chain", "group"]);
    assert.equal(c.body.kind, "chain");
    const g = wire(group(chain(add.s([1, 1]), mul.s([2])), chain(add.s([2, 2]), mul.s([2]))));
    assert.deepEqual((g as Extract<CanvasNode, { kind: "group" }>).members.map((m) => m.kind), ["chain", "chain"]);
    const cg = wire(chain(group(add.s([1, 1])), tsum.s()));
    assert.deepEqual((cg as Extract<CanvasNode, { kind: "chain" }>).steps.map((m) => m.kind), ["group", "task"]);
  });

  it("accepts nodes already in wire form as children", () => {
    assert.deepEqual(wire(chain({ kind: "task", task: "a" }, signature("b"))), { kind: "chain", steps: [{ kind: "task", task: "a" }, { kind: "task", task: "b" }] });
    assert.deepEqual(toCanvasNode({ kind: "task", task: "a" }), { kind: "task", task: "a" });
  });

  it("gives map, starmap and chunks nodes that freeze into groups", () => {
    assert.deepEqual(wire(map(mul.s([10]), [1, 2])), { kind: "map", task: { kind: "task", task: "math.mul", args: [10] }, items: [1, 2] });
    assert.deepEqual(wire(starmap(add.s(), [[1, 2], [3, 4]])), { kind: "starmap", task: { kind: "task", task: "math.add" }, items: [[1, 2], [3, 4]] });
    const ch = wire(chunks(add.s(), [[1, 2], [3, 4], [5, 6]], 2));
    assert.deepEqual(ch, { kind: "chunks", task: { kind: "task", task: "math.add" }, items: [[1, 2], [3, 4], [5, 6]], n: 2 });
    const f = freezeCanvas(ch, "c1");
    assert.equal(f.kind, "group");
    assert.equal((f as Extract<typeof f, { kind: "group" }>).members.length, 2);
  });
});

describe("when adding callbacks", () => {
  it("puts link and linkError on any node and returns the same builder", () => {
    const s = add.s([1, 1]);
    assert.equal(s.link(mul.s([2])), s);
    assert.deepEqual(wire(s), { kind: "task", task: "math.add", args: [1, 1], link: [{ kind: "task", task: "math.mul", args: [2] }] });
    const err = signature("log.error");
    const c = chain(add.s([1, 1]), mul.s([2])).link(tsum.s()).linkError(err);
    const n = wire(c);
    assert.deepEqual([n.link, n.linkError], [[{ kind: "task", task: "math.tsum" }], [{ kind: "task", task: "log.error" }]]);
    assert.deepEqual(wire(group(add.s([1, 1])).linkError(err)).linkError, [{ kind: "task", task: "log.error" }]);
    assert.deepEqual(wire(chord([add.s([1, 1])], tsum.s()).linkError(err)).linkError, [{ kind: "task", task: "log.error" }]);
    assert.deepEqual(wire(map(add.s([1]), [1]).link(err)).link, [{ kind: "task", task: "log.error" }]);
  });

  it("refuses a chord header group that carries callbacks", () => {
    assert.throws(() => chord(group(add.s([1, 1])).link(tsum.s()), tsum.s()), /header group has link\/linkError/);
  });
});

describe("when a builder is given bad input", () => {
  const cases: Array<[string, () => unknown, RegExp | (new (...a: never[]) => Error)]> = [
    ["a task that is neither a name nor a definition", () => signature(42 as unknown as string), /is not a task: pass a registered task name/],
    ["an invalid task name", () => signature("9bad name"), /signature\("9bad name"\)\.task: "9bad name" is not a task name/],
    ["args that are not an array", () => signature("a", 1 as unknown as []), /signature\("a"\)\.args: must be a JSON array/],
    ["kwargs that are not an object", () => signature("a", [], [] as unknown as Record<string, unknown>), /signature\("a"\)\.kwargs: must be a JSON object/],
    ["an unknown option", () => signature("a", [], {}, { taskId: "x" } as never), /signature\("a"\)\.options\.taskId: unknown signature option.*give taskId to client\.apply/],
    ["an option of the wrong type in .set()", () => add.s().set({ countdownSeconds: "5" as unknown as number }), /\.set\.options\.countdownSeconds: must be a number/],
    ["an empty chain", () => chain(), /chain\(\): give at least one step/],
    ["an empty group", () => group([]), /group\(\): give at least one member/],
    ["an empty chord header", () => chord([], tsum.s()), /chord\(\): the header needs at least one/],
    ["a step that is not a canvas", () => chain(add.s(), 5 as never), /chain: step 1: 5 is not a canvas/],
    ["a member that is not a canvas", () => group(add.s(), null as never), /group: member 1: null is not a canvas/],
    ["a map of a non-signature", () => map(chain(add.s()) as never, [1]), /map\(\): the first argument must be a signature/],
    ["map items that are not an array", () => map(add.s(), 5 as never), /map\(\): items must be an array, e\.g\. map\(square\.s\(\), \[1, 2, 3\]\); got 5/],
    ["starmap items that are not argument lists", () => starmap(add.s(), [1 as never]), /starmap\.items\[0\]: must be an argument list/],
    ["chunks with n = 0", () => chunks(add.s(), [[1, 2]], 0), /chunks\.n: must be a positive integer/],
    ["a link that is not a canvas", () => add.s().link("x" as never), /link: "x" is not a canvas/],
  ];
  for (const [what, f, expected] of cases) {
    it(`throws a TypeError naming the fix for ${what}`, () => {
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof TypeError, `not a TypeError: ${String(e)}`);
        if (expected instanceof RegExp) assert.match((e as Error).message, expected);
        return true;
      });
    });
  }

  it("throws InvalidCanvasError (with the path) for malformed fields", () => {
    assert.throws(() => signature("a", "x" as never), (e: unknown) => e instanceof InvalidCanvasError && e.path === 'signature("a").args');
  });
});

describe("when importing the builders", () => {
  it("finds them in celeriac/worker and celeriac/client", () => {
    for (const mod of [workerIndex, clientIndex] as Array<Record<string, unknown>>) {
      for (const name of ["signature", "chain", "group", "chord", "map", "starmap", "chunks"]) assert.equal(typeof mod[name], "function", name);
    }
  });
});
