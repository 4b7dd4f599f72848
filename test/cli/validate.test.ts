/**
 * `celeriac validate` run as a user runs it: every file reported, YAML and JSON, offline checks of names,
 * CEL rules, cron and time zone, the args size limit, and a summary with a non-zero exit.
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
