/**
 * Admission of Workflows at `kubectl apply` (real kubectl against the in-memory API server with the
 * generated CRDs): every CEL rule of a step and of the step list refuses a bad manifest with a message
 * naming the step, a diamond DAG is accepted, the spec is immutable while a re-apply of the same
 * manifest is `unchanged`, and `kubectl explain` teaches the steps' fields.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ALL_CRDS } from "../../api/crd.js";
import { WORKFLOW_SPEC_IMMUTABLE_MESSAGE, WORKFLOW_STEP_RULES, WORKFLOW_STEPS_RULES } from "../../api/workflow.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";

type Step = Record<string, unknown>;
const step = (name: string, dependsOn?: string[], extra: Step = {}): Step => ({ name, task: "demo.step", ...(dependsOn ? { dependsOn } : {}), ...extra });
const manifest = (name: string, steps: Step[]): string =>
  `apiVersion: celeriac.io/v1alpha1\nkind: Workflow\nmetadata: {name: ${name}}\nspec:\n  queue: default\n  steps: ${JSON.stringify(steps)}\n`;
/** kubectl explain wraps descriptions at 80 columns: compare them with single spaces. */
const flat = (s: string): string => s.replace(/\s+/g, " ");
const diamond = [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"])];

const tools = k8sTools();
const kubectl = tools.kubectl134 ?? tools.kubectl132 ?? "/usr/bin/kubectl";

describe("when kubectl applies Workflows to the in-memory API server", () => {
  let api: ApiServer;
  let dir: string;
  let n = 0;
  const run = (...args: string[]): Promise<ToolRun> => runTool(kubectl, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", join(dir, "cache"), ...args], {}, 30_000);
  const apply = (yaml: string): Promise<ToolRun> => {
    const file = join(dir, `m${n++}.yaml`);
    writeFileSync(file, yaml);
    return run("apply", "-f", file);
  };
  /** Applies a manifest that must be refused and returns kubectl's error output. */
  const refused = async (name: string, steps: Step[]): Promise<string> => {
    const r = await apply(manifest(name, steps));
    assert.notEqual(r.code, 0, `kubectl apply accepted ${name}: ${r.stdout}`);
    assert.ok(r.stderr.includes(`The Workflow "${name}" is invalid`), r.stderr);
    return r.stderr;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-wf-admission-"));
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    for (const { crd } of ALL_CRDS) {
      const res = await fetch(`${api.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(crd) });
      assert.equal(res.status, 201, await res.text());
    }
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("has a test below for every rule of a step and of the step list", () => {
    // A new rule in api/workflow.ts must get its own refusal test here.
    assert.equal(WORKFLOW_STEP_RULES.length, 2);
    assert.equal(WORKFLOW_STEPS_RULES.length, 3);
  });

  it("names in its rules no field kube-apiserver's CEL cannot see (untyped JSON: args, kwargs, forEach.items)", () => {
    // kube-apiserver leaves x-kubernetes-preserve-unknown-fields data out of the CEL types
    // (SchemaDeclType), so a rule naming it does not compile on a real cluster, while the in-memory
    // server's evaluator (untyped) would accept it.
    for (const r of [...WORKFLOW_STEP_RULES, ...WORKFLOW_STEPS_RULES]) {
      for (const text of [r.rule, r.messageExpression]) assert.doesNotMatch(text, /\.(args|kwargs|items)\b/, text);
    }
  });

  describe("when a step breaks a rule of its own", () => {
    it("refuses a self-dependency, naming the step at its dependsOn", async () => {
      const err = await refused("self-dep", [step("a"), step("b", ["a", "b"])]);
      assert.ok(err.includes('spec.steps[1].dependsOn: Invalid value: "object": step "b" depends on itself: remove it from its own dependsOn'), err);
      assert.ok(!err.includes("depend on each other"), err);
    });
    it("refuses a forEach.fromStep that is not a dependency, saying to add it", async () => {
      const err = await refused("each-from", [step("list"), step("each", undefined, { forEach: { fromStep: "list" } })]);
      assert.ok(err.includes('spec.steps[1].forEach.fromStep: Invalid value: "object": step "each": forEach.fromStep "list" is not one of its dependencies: add "list" to dependsOn'), err);
    });
    it("refuses a forEach with neither items nor fromStep, and one with both, at the step's forEach (schema: exactly one field)", async () => {
      let err = await refused("each-none", [step("each", undefined, { forEach: {} })]);
      assert.match(err, /spec\.steps\[0\]\.forEach: Invalid value: .*: spec\.steps\[0\]\.forEach in body should have at least 1 properties/);
      err = await refused("each-both", [step("list"), step("each", ["list"], { forEach: { items: [1], fromStep: "list" } })]);
      assert.ok(err.includes("spec.steps[1].forEach: Too many: "), err);
    });
    it("admits a kwarg named like a dependency (CEL cannot see kwargs' keys: the operator and celeriac validate refuse it)", async () => {
      const r = await apply(manifest("kwarg", [step("fetch"), step("parse", ["fetch"], { kwargs: { fetch: "https://x", mode: 1 } })]));
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await run("delete", "workflow", "kwarg")).code, 0);
    });
  });

  describe("when the steps break a rule together", () => {
    it("refuses a duplicate step name", async () => {
      const err = await refused("dup", [step("a"), step("b", ["a"]), step("a")]);
      assert.ok(err.includes('spec.steps: Invalid value: "array": step name "a" is used more than once: step names must be unique, rename one'), err);
    });
    it("refuses a dependsOn naming no step, naming the step", async () => {
      const err = await refused("unknown", [step("fetch"), step("parse", ["fetch", "fecth"])]);
      assert.ok(err.includes('spec.steps: Invalid value: "array": step "parse" dependsOn a name that is not a step of this Workflow: fix the name or add that step (celeriac validate names the entry)'), err);
    });
    it("accepts dependsOn entries naming steps defined later in the list", async () => {
      const r = await apply(manifest("later", [step("d", ["b", "c"]), step("c", ["a"]), step("b", ["a"]), step("a")]));
      assert.equal(r.code, 0, r.stderr);
    });
    it("refuses two steps that depend on each other, naming the first", async () => {
      const err = await refused("mutual", [step("root"), step("x", ["root", "y"]), step("y", ["x"])]);
      assert.ok(err.includes('spec.steps: Invalid value: "array": step "x" and a step in its dependsOn depend on each other (a cycle): a Workflow is a DAG, remove one of the two dependencies'), err);
    });
    it("admits a longer cycle (CEL has no recursion: the operator and celeriac validate refuse it)", async () => {
      const r = await apply(manifest("ring", [step("a", ["c"]), step("b", ["a"]), step("c", ["b"])]));
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await run("delete", "workflow", "ring")).code, 0);
    });
  });

  describe("when a valid diamond is applied", () => {
    const yaml = manifest("diamond", diamond);
    it("creates it, with a forEach over a dependency and literal items", async () => {
      const r = await apply(yaml);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /workflow\.celeriac\.io\/diamond created/);
      const fan = await apply(manifest("fan", [step("list"), step("each", ["list"], { forEach: { fromStep: "list" }, kwargs: { mode: "fast" } }), step("lit", undefined, { forEach: { items: [1, "two", null, { x: 3 }] } })]));
      assert.equal(fan.code, 0, fan.stderr);
    });
    it("reports a re-apply of the same manifest as unchanged, generation still 1", async () => {
      const r = await apply(yaml);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /workflow\.celeriac\.io\/diamond unchanged/);
      const got = await run("get", "workflow", "diamond", "-o", "jsonpath={.metadata.generation}");
      assert.equal(got.stdout, "1");
    });
    it("refuses a changed spec as immutable", async () => {
      const r = await apply(manifest("diamond", [...diamond.slice(0, 3), step("d", ["b"])]));
      assert.notEqual(r.code, 0, r.stdout);
      assert.ok(r.stderr.includes(`spec: Invalid value: "object": ${WORKFLOW_SPEC_IMMUTABLE_MESSAGE}`), r.stderr);
      const got = await run("get", "workflow", "diamond", "-o", "jsonpath={.spec.steps[3].dependsOn}");
      assert.equal(got.stdout, '["b","c"]');
    });
    it("still takes label changes (only the spec is immutable)", async () => {
      const r = await run("label", "workflow", "diamond", "team=data");
      assert.equal(r.code, 0, r.stderr);
    });
  });

  describe("when kubectl explain is asked about the steps", () => {
    it("describes spec.steps and each step field", async () => {
      const r = await run("explain", "workflow.spec.steps");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /KIND:\s+Workflow/);
      assert.match(flat(r.stdout), /The DAG's steps \(1-200\), in any order/);
      for (const f of ["name", "task", "args", "kwargs", "dependsOn", "forEach", "retry", "queue", "timeoutSeconds", "priority"]) assert.match(r.stdout, new RegExp(`^\\s+${f}\\s+<`, "m"), `${f} missing:\n${r.stdout}`);
    });
    it("describes forEach.fromStep and dependsOn", async () => {
      const from = await run("explain", "workflow.spec.steps.forEach.fromStep");
      assert.equal(from.code, 0, from.stderr);
      assert.match(flat(from.stdout), /whose result is the JSON list to fan out over/);
      const deps = await run("explain", "workflow.spec.steps.dependsOn");
      assert.match(flat(deps.stdout), /Their results are passed in kwargs under their names/);
    });
  });
});
