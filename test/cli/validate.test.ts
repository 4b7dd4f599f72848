/**
 * `celeriac validate` run as a user runs it: every file reported, YAML and JSON, offline checks of names,
 * CEL rules, cron and time zone, the args size limit, a Workflow's DAG (cycles of any length), and a
 * summary with a non-zero exit.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { runTool, type ToolRun } from "../helpers/k8s-tools.js";

const celeriac = (...args: string[]): Promise<ToolRun> => runTool(process.execPath, [join(REPO_ROOT, "bin", "celeriac.js"), ...args], {}, 30_000);
const schedule = (name: string, spec: Record<string, unknown>): string =>
  `apiVersion: celeriac.io/v1alpha1\nkind: Schedule\nmetadata: {name: ${name}}\nspec: ${JSON.stringify({ taskTemplate: { spec: { queue: "default", task: "a.b" } }, ...spec })}\n`;

describe("when celeriac validate checks a folder", () => {
  let dir: string;
  let run: ToolRun;
  const block = (file: string): string => run.stdout.split("\n").filter((l, i, all) => l.includes(file) || (l.startsWith("  ") && all.slice(0, i).reverse().find((x) => !x.startsWith("  "))?.includes(file))).join("\n");

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-validate-"));
    writeFileSync(join(dir, "a-broken.yaml"), "apiVersion: celeriac.io/v1alpha1\nkind: Task\nmetadata: {name: x\n");
    writeFileSync(join(dir, "b-ok.json"), JSON.stringify({ apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "ok" }, spec: { queue: "default", task: "a.b", kwargs: { cb: null } } }));
    writeFileSync(join(dir, "c-bad-json.json"), JSON.stringify({ apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "Bad_Name" }, spec: { queue: "default", task: "a.b", countdownSeconds: 1, eta: "2026-11-23T10:00:00Z" } }));
    writeFileSync(join(dir, "d-cron.yaml"), schedule("cron", { schedule: "61 * * * *" }));
    writeFileSync(join(dir, "e-zone.yaml"), schedule("zone", { schedule: "@daily", timeZone: "Mars/Olympus" }));
    writeFileSync(join(dir, "f-version.yaml"), "apiVersion: celeriac.io/v1\nkind: Queue\nmetadata: {name: q}\nspec: {}\n");
    writeFileSync(join(dir, "g-big.yaml"), `apiVersion: celeriac.io/v1alpha1\nkind: Task\nmetadata: {name: big}\nspec: {queue: default, task: a.b, args: ["${"x".repeat(300 * 1024)}"]}\n`);
    writeFileSync(join(dir, "h-other.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n");
    writeFileSync(join(dir, "i-queue.yaml"), "apiVersion: celeriac.io/v1alpha1\nkind: Queue\nmetadata: {name: orders.eu}\nspec: {autoscaling: {minReplicas: 5, maxReplicas: 2}}\n");
    writeFileSync(join(dir, "notes.txt"), "not a manifest");
    run = await celeriac("validate", dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reports every file, even after a broken one, and exits non-zero with a summary", () => {
    assert.equal(run.code, 1, run.stderr);
    assert.match(block("a-broken.yaml"), /invalid: not valid YAML/);
    assert.match(block("b-ok.json"), /Task\/ok: valid/);
    assert.equal(run.stderr.trim(), "9 files: 1 valid, 7 invalid, 1 skipped");
    assert.ok(!run.stdout.includes("notes.txt"));
  });
  it("checks names and CEL rules in JSON files, in kube-apiserver's words", () => {
    const b = block("c-bad-json.json");
    assert.ok(b.includes('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of'), b);
    assert.ok(b.includes('spec: Invalid value: "object": countdownSeconds and eta are mutually exclusive'), b);
    const q = block("i-queue.yaml");
    assert.ok(q.includes('<nil>: Invalid value: "object": Queue name must be a DNS-1123 label'), q);
    assert.ok(q.includes('spec.autoscaling: Invalid value: "object": minReplicas must not exceed maxReplicas'), q);
  });
  it("checks the cron expression and time zone the operator would refuse", () => {
    assert.match(block("d-cron.yaml"), /spec\.schedule: "61 \* \* \* \*": .*InvalidSchedule/);
    assert.match(block("e-zone.yaml"), /spec\.timeZone: unknown time zone "Mars\/Olympus"/);
  });
  it("refuses an unknown celeriac.io version instead of skipping it", () => {
    assert.match(block("f-version.yaml"), /Queue\/q: invalid:\n {2}apiVersion: Unsupported value: "celeriac.io\/v1"/);
    assert.match(block("h-other.yaml"), /ConfigMap\/cm: skipped/);
  });
  it("checks the 256 KiB limit on args and kwargs", () => {
    assert.match(block("g-big.yaml"), /at most 262144 \(256 KiB\) are allowed/);
  });
});

describe("when celeriac validate checks Workflows", () => {
  let dir: string;
  let run: ToolRun;
  const step = (name: string, dependsOn?: string[], extra: Record<string, unknown> = {}) => ({ name, task: "demo.step", ...(dependsOn ? { dependsOn } : {}), ...extra });
  const workflow = (name: string, steps: unknown[]): string => `apiVersion: celeriac.io/v1alpha1\nkind: Workflow\nmetadata: {name: ${name}}\nspec:\n  queue: default\n  steps: ${JSON.stringify(steps)}\n`;
  /** The lines of the block about `file`: its header and the indented problems under it. */
  const block = (file: string): string[] => {
    const lines = run.stdout.split("\n");
    const i = lines.findIndex((l) => l.includes(`/${file}: `));
    assert.ok(i >= 0, `${file} not reported:\n${run.stdout}`);
    const out = [lines[i]!];
    for (let j = i + 1; j < lines.length && lines[j]!.startsWith("  "); j++) out.push(lines[j]!.trim());
    return out;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-validate-wf-"));
    writeFileSync(join(dir, "diamond.yaml"), workflow("diamond", [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"], { forEach: { fromStep: "b" } })]));
    writeFileSync(join(dir, "ring.yaml"), workflow("ring", [step("start"), step("a", ["start", "c"]), step("b", ["a"]), step("c", ["b"])]));
    writeFileSync(join(dir, "typo.yaml"), workflow("typo", [step("fetch"), step("parse", ["fecth"])]));
    writeFileSync(join(dir, "each.yaml"), workflow("each", [step("list"), step("each", [], { forEach: { fromStep: "list" } })]));
    writeFileSync(join(dir, "mutual.yaml"), workflow("mutual", [step("x", ["y"]), step("y", ["x"])]));
    writeFileSync(join(dir, "bad-name.yaml"), workflow("bad-name", [step("Fetch_1")]));
    writeFileSync(join(dir, "kwarg.yaml"), workflow("kwarg", [step("fetch"), step("parse", ["fetch"], { kwargs: { fetch: "https://x" } })]));
    run = await celeriac("validate", dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("accepts a diamond with a forEach over a dependency, and counts the rest invalid", () => {
    assert.deepEqual(block("diamond.yaml"), [`${join(dir, "diamond.yaml")}: Workflow/diamond: valid`]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr.trim(), "7 files: 1 valid, 6 invalid, 0 skipped");
  });
  it("refuses a cycle of three steps offline, which kubectl apply would accept, naming the path and the fix", () => {
    assert.deepEqual(block("ring.yaml"), [
      `${join(dir, "ring.yaml")}: Workflow/ring: invalid:`,
      "spec.steps[1].dependsOn[1]: steps form a dependency cycle a → c → b → a (each depends on the next): a Workflow is a DAG, remove one of these dependsOn entries (kubectl apply accepts this; the operator would fail the Workflow, reason InvalidSpec)",
    ]);
  });
  it("refuses a kwarg in a dependency's place, which kubectl apply would accept", () => {
    assert.deepEqual(block("kwarg.yaml").slice(1), [
      'spec.steps[1].kwargs.fetch: step "parse": kwargs.fetch is where the result of dependency "fetch" goes: rename the kwarg (kubectl apply accepts this; the operator would fail the Workflow, reason InvalidSpec)',
    ]);
  });
  it("gives kubectl apply's CEL message, then names the entry a rule on the whole list cannot", () => {
    assert.deepEqual(block("typo.yaml").slice(1), [
      'spec.steps: Invalid value: "array": step "parse" dependsOn a name that is not a step of this Workflow: fix the name or add that step (celeriac validate names the entry)',
      'spec.steps[1].dependsOn[0]: step "parse" dependsOn "fecth", which is not a step of this Workflow: use one of fetch',
    ]);
    assert.deepEqual(block("mutual.yaml").slice(1), [
      'spec.steps: Invalid value: "array": step "x" and a step in its dependsOn depend on each other (a cycle): a Workflow is a DAG, remove one of the two dependencies',
      "spec.steps[0].dependsOn[0]: steps form a dependency cycle x → y → x (each depends on the next): a Workflow is a DAG, remove one of these dependsOn entries",
    ]);
  });
  it("does not repeat a step's own rule, whose CEL message names the step and the fix", () => {
    assert.deepEqual(block("each.yaml").slice(1), ['spec.steps[1].forEach.fromStep: Invalid value: "object": step "each": forEach.fromStep "list" is not one of its dependencies: add "list" to dependsOn']);
  });
  it("checks step names against their pattern", () => {
    const b = block("bad-name.yaml");
    assert.match(b[0]!, /bad-name\.yaml: Workflow\/bad-name: invalid:$/);
    assert.ok(b.some((l) => l.startsWith('spec.steps[0].name: Invalid value: "Fetch_1": spec.steps[0].name in body should match')), b.join("\n"));
  });
});
