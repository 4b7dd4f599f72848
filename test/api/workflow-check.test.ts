/**
 * The pure DAG checks of a Workflow spec (api/workflow-check.ts): every problem kind with its field and
 * step, cycles of any length named by their path, and the dependency order the operator starts steps in.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkWorkflowSpec, findCycle, formatCycle, InvalidWorkflowGraphError, isInvalidWorkflowGraph, refusedAtApply, topologicalOrder, type StepNode, type WorkflowProblemReason } from "../../api/workflow-check.js";

type Step = Record<string, unknown>;
const step = (name: string, dependsOn?: string[], extra: Step = {}): Step => ({ name, task: "a.b", ...(dependsOn ? { dependsOn } : {}), ...extra });
const spec = (...steps: Step[]) => ({ queue: "default", steps });
const diamond = () => spec(step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"]));

describe("when a Workflow spec is a sound DAG", () => {
  it("reports nothing for a diamond, a chain, a lone step and a forEach over a dependency", () => {
    assert.deepEqual(checkWorkflowSpec(diamond()), []);
    assert.deepEqual(checkWorkflowSpec(spec(step("c", ["b"]), step("b", ["a"]), step("a"))), []);
    assert.deepEqual(checkWorkflowSpec(spec(step("only"))), []);
    assert.deepEqual(checkWorkflowSpec(spec(step("list"), step("each", ["list"], { forEach: { fromStep: "list" }, kwargs: { mode: "fast" } }))), []);
    assert.deepEqual(checkWorkflowSpec(spec(step("each", [], { forEach: { items: [1, 2, 3] } }))), []);
  });
});

describe("when a Workflow spec has a problem", () => {
  const table: Array<[string, unknown, Array<{ field: string; step?: string; message: RegExp }>]> = [
    ["a duplicate step name", spec(step("a"), step("b"), step("a")), [{ field: "spec.steps[2].name", step: "a", message: /^step name "a" is used more than once \(steps\[0\] and steps\[2\] of this list\): step names must be unique/ }]],
    ["an unknown dependsOn name", spec(step("fetch"), step("parse", ["fetch", "fetc"])), [{ field: "spec.steps[1].dependsOn[1]", step: "parse", message: /^step "parse" dependsOn "fetc", which is not a step of this Workflow: use one of fetch$/ }]],
    ["an unknown dependsOn in a one-step Workflow", spec(step("solo", ["ghost"])), [{ field: "spec.steps[0].dependsOn[0]", step: "solo", message: /it is the only step: remove the dependency/ }]],
    ["a self-dependency", spec(step("a"), step("b", ["a", "b"])), [{ field: "spec.steps[1].dependsOn[1]", step: "b", message: /^step "b" depends on itself: remove it from its own dependsOn$/ }]],
    ["a two-step cycle", spec(step("a", ["b"]), step("b", ["a"])), [{ field: "spec.steps[0].dependsOn[0]", step: "a", message: /^steps form a dependency cycle a → b → a \(each depends on the next\): a Workflow is a DAG/ }]],
    ["a three-step cycle", spec(step("a", ["c"]), step("b", ["a"]), step("c", ["b"])), [{ field: "spec.steps[0].dependsOn[0]", step: "a", message: /cycle a → c → b → a / }]],
    ["a five-step cycle behind a sound prefix", spec(step("root"), step("p", ["root", "t"]), step("q", ["p"]), step("r", ["q"]), step("s", ["r"]), step("t", ["s"])), [{ field: "spec.steps[1].dependsOn[1]", step: "p", message: /cycle p → t → s → r → q → p / }]],
    ["two separate cycles", spec(step("a", ["b"]), step("b", ["a"]), step("x", ["z"]), step("y", ["x"]), step("z", ["y"])), [
      { field: "spec.steps[0].dependsOn[0]", step: "a", message: /cycle a → b → a / },
      { field: "spec.steps[2].dependsOn[0]", step: "x", message: /cycle x → z → y → x / },
    ]],
    ["forEach with neither items nor fromStep", spec(step("each", [], { forEach: {} })), [{ field: "spec.steps[0].forEach", step: "each", message: /^step "each": forEach needs exactly one of items \(a literal list\) or fromStep/ }]],
    ["forEach with both items and fromStep", spec(step("list"), step("each", ["list"], { forEach: { items: [1], fromStep: "list" } })), [{ field: "spec.steps[1].forEach", step: "each", message: /forEach needs exactly one of items .*, not both$/ }]],
    ["forEach.fromStep not in dependsOn", spec(step("list"), step("each", [], { forEach: { fromStep: "list" } })), [{ field: "spec.steps[1].forEach.fromStep", step: "each", message: /^step "each": forEach\.fromStep "list" is not one of its dependencies: add "list" to dependsOn$/ }]],
    ["forEach.fromStep naming no step", spec(step("list"), step("each", ["list"], { forEach: { fromStep: "lsit" } })), [{ field: "spec.steps[1].forEach.fromStep", step: "each", message: /"lsit" is not one of its dependencies: it is not a step of this Workflow: name one of its dependencies \(list\)$/ }]],
    ["a kwarg named like a dependency", spec(step("fetch"), step("parse", ["fetch"], { kwargs: { fetch: "x", other: 1 } })), [{ field: "spec.steps[1].kwargs.fetch", step: "parse", message: /^step "parse": kwargs\.fetch is where the result of dependency "fetch" goes: rename the kwarg$/ }]],
    ["a spec that is not an object", "steps", [{ field: "spec", message: /must be an object/ }]],
    ["steps that are not a list", { queue: "q", steps: { a: 1 } }, [{ field: "spec.steps", message: /must be a list/ }]],
  ];
  for (const [name, input, expected] of table) {
    it(`reports ${name} with its field and step`, () => {
      const got = checkWorkflowSpec(input);
      assert.equal(got.length, expected.length, JSON.stringify(got, null, 2));
      expected.forEach((e, i) => {
        assert.equal(got[i]!.field, e.field, JSON.stringify(got[i]));
        assert.equal(got[i]!.step, e.step);
        assert.match(got[i]!.message, e.message);
      });
    });
  }
  it("reports every problem of a spec at once, in spec order with cycles last", () => {
    const got = checkWorkflowSpec(spec(step("a", ["c"]), step("b", ["a", "b", "nope"]), step("c", ["b"], { kwargs: { b: 1 } }), step("a")));
    assert.deepEqual(got.map((p) => p.field), ["spec.steps[1].dependsOn[1]", "spec.steps[1].dependsOn[2]", "spec.steps[2].kwargs.b", "spec.steps[3].name", "spec.steps[0].dependsOn[0]"]);
    assert.match(got[4]!.message, /a → c → b → a/);
  });
  it("reports a long cycle in a large component once, even when its first step also depends on itself", () => {
    const got = checkWorkflowSpec(spec(step("a", ["a", "b"]), step("b", ["c"]), step("c", ["a"])));
    assert.deepEqual(got.map((p) => p.message.replace(/ \(each.*/, "")), ['step "a" depends on itself: remove it from its own dependsOn', "steps form a dependency cycle a → b → c → a"]);
  });
  it("skips values of the wrong type instead of throwing (the schema reports them)", () => {
    assert.deepEqual(checkWorkflowSpec({ queue: "q", steps: [null, { name: 3, dependsOn: "a" }, { name: "x", dependsOn: [1, "x"], forEach: "no", kwargs: [] }] }), [
      { reason: "SelfDependency", field: "spec.steps[2].dependsOn[1]", step: "x", message: 'step "x" depends on itself: remove it from its own dependsOn' },
    ]);
  });
  it("handles the largest Workflow (200 steps in a chain) quickly", () => {
    const steps = Array.from({ length: 200 }, (_, i) => step(`s${i}`, i === 0 ? ["s199"] : [`s${i - 1}`]));
    const t0 = performance.now();
    const got = checkWorkflowSpec(spec(...steps));
    assert.ok(performance.now() - t0 < 200, "took too long");
    assert.equal(got.length, 1);
    assert.ok(got[0]!.message.includes("s0 → s199 → s198"), got[0]!.message.slice(0, 80));
    assert.ok(got[0]!.message.includes("s1 → s0 (each"));
  });
});

describe("when findCycle looks at steps", () => {
  const nodes = (edges: Record<string, string[]>): StepNode[] => Object.entries(edges).map(([name, dependsOn]) => ({ name, dependsOn }));
  it("returns undefined for a DAG, with unknown names ignored", () => {
    assert.equal(findCycle(nodes({ a: [], b: ["a"], c: ["a", "ghost"], d: ["b", "c"] })), undefined);
    assert.equal(findCycle([]), undefined);
  });
  it("returns the closed path in dependsOn order, starting at the cycle's earliest step", () => {
    assert.deepEqual(findCycle(nodes({ x: [], b: ["c"], c: ["d"], d: ["b"] })), ["b", "c", "d", "b"]);
    assert.deepEqual(findCycle(nodes({ d: ["c"], c: ["b"], b: ["d"] })), ["d", "c", "b", "d"]);
    assert.deepEqual(findCycle(nodes({ a: ["a"] })), ["a", "a"]);
    assert.equal(formatCycle(findCycle(nodes({ a: ["b"], b: ["a"] }))!), "a → b → a");
  });
  it("returns a shortest cycle through that step when there are several", () => {
    assert.deepEqual(findCycle(nodes({ a: ["b", "e"], b: ["c"], c: ["d"], d: ["a"], e: ["a"] })), ["a", "e", "a"]);
  });
});

describe("when topologicalOrder orders steps", () => {
  const nodes = (edges: Array<[string, string[]?]>): StepNode[] => edges.map(([name, dependsOn]) => ({ name, dependsOn }));
  it("puts every step after its dependencies, spec order among ties", () => {
    assert.deepEqual(topologicalOrder(nodes([["a"], ["b", ["a"]], ["c", ["a"]], ["d", ["b", "c"]]])), ["a", "b", "c", "d"]);
    assert.deepEqual(topologicalOrder(nodes([["d", ["b", "c"]], ["c", ["a"]], ["b", ["a"]], ["a"]])), ["a", "c", "b", "d"]);
    assert.deepEqual(topologicalOrder(nodes([["z", ["y"]], ["x"], ["y"], ["w", ["x"]]])), ["x", "y", "z", "w"]);
    assert.deepEqual(topologicalOrder(nodes([["a", ["b", "b"]], ["b"]])), ["b", "a"]);
    assert.deepEqual(topologicalOrder([]), []);
  });
  it("keeps a spec that is already in dependency order unchanged", () => {
    const n = Array.from({ length: 200 }, (_, i): [string, string[]] => [`s${i}`, i === 0 ? [] : [`s${Math.floor((i - 1) / 2)}`]]);
    assert.deepEqual(topologicalOrder(nodes(n)), n.map(([name]) => name));
  });
  it("throws InvalidWorkflowGraphError naming the cycle", () => {
    assert.throws(() => topologicalOrder(nodes([["a", ["c"]], ["b", ["a"]], ["c", ["b"]], ["d"]])), (e: unknown) => {
      assert.ok(isInvalidWorkflowGraph(e) && e instanceof InvalidWorkflowGraphError);
      assert.match(e.message, /dependency cycle a → c → b → a/);
      assert.equal(e.problems[0]!.field, "spec.steps[0].dependsOn[0]");
      return true;
    });
  });
  it("throws for an unknown dependency or a duplicated name, naming the step", () => {
    assert.throws(() => topologicalOrder(nodes([["a"], ["b", ["ghost"]]])), /^InvalidWorkflowGraphError: step "b" dependsOn "ghost", which is not a step/);
    assert.throws(() => topologicalOrder(nodes([["a"], ["a"]])), /step name "a" is used more than once/);
    assert.throws(() => topologicalOrder(nodes([["a", ["a"]]])), /step "a" depends on itself/);
  });
});

describe("when a problem is classified", () => {
  const reasonsOf = (input: unknown): WorkflowProblemReason[] => checkWorkflowSpec(input).map((p) => p.reason);
  it("gives each problem its reason, and a cycle its path", () => {
    assert.deepEqual(reasonsOf(spec(step("a"), step("a"))), ["DuplicateStepName"]);
    assert.deepEqual(reasonsOf(spec(step("a", ["zz"]))), ["UnknownDependency"]);
    assert.deepEqual(reasonsOf(spec(step("a", ["a"]))), ["SelfDependency"]);
    assert.deepEqual(reasonsOf(spec(step("e", [], { forEach: {} }))), ["ForEachItemsOrFromStep"]);
    assert.deepEqual(reasonsOf(spec(step("l"), step("e", [], { forEach: { fromStep: "l" } }))), ["ForEachNotDependency"]);
    assert.deepEqual(reasonsOf(spec(step("l"), step("e", ["l"], { kwargs: { l: 1 } }))), ["KwargIsDependency"]);
    assert.deepEqual(reasonsOf(null), ["InvalidSpec"]);
    const [ring] = checkWorkflowSpec(spec(step("a", ["c"]), step("b", ["a"]), step("c", ["b"])));
    assert.deepEqual([ring!.reason, ring!.cycle], ["DependencyCycle", ["a", "c", "b", "a"]]);
  });
  it("tells the problems kubectl apply refuses from those only the operator and celeriac validate find", () => {
    const atApply = (input: unknown): boolean[] => checkWorkflowSpec(input).map(refusedAtApply);
    assert.deepEqual(atApply(spec(step("a", ["b"]), step("b", ["a"]))), [true]);
    assert.deepEqual(atApply(spec(step("a", ["c"]), step("b", ["a"]), step("c", ["b"]))), [false]);
    assert.deepEqual(atApply(spec(step("l"), step("e", ["l"], { kwargs: { l: 1 } }))), [false]);
    assert.deepEqual(atApply(spec(step("a"), step("a", ["zz"]))), [true, true]);
  });
});
