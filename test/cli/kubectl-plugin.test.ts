/**
 * `kubectl celeriac …`: the celeriac CLI as a kubectl plugin. Real kubectl finds `kubectl-celeriac`
 * on PATH (as `npm install -g` puts it there) and runs it with the remaining arguments; the help
 * names the program `kubectl celeriac`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { commandNamespace } from "../../cli/namespace.js";
import { k8sTools, runTool } from "../helpers/k8s-tools.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("when the CLI is installed as the kubectl plugin kubectl-celeriac", () => {
  let dir: string;
  const kubectl = k8sTools().kubectl134 ?? k8sTools().kubectl132 ?? "/usr/bin/kubectl";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-plugin-"));
    symlinkSync(join(ROOT, "bin", "kubectl-celeriac.js"), join(dir, "kubectl-celeriac"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const env = () => ({ PATH: `${dir}:${dirname(process.execPath)}:/usr/bin:/bin`, KUBECONFIG: join(dir, "none") });

  it("is found by kubectl plugin list", async () => {
    const r = await runTool(kubectl, ["plugin", "list"], env());
    assert.match(r.stdout, /kubectl-celeriac/, r.stderr);
  });

  it("runs as kubectl celeriac, its help naming the program so", async () => {
    const r = await runTool(kubectl, ["celeriac", "--help"], env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: kubectl celeriac \[options\] \[command\]/);
    assert.match(r.stdout, /workflow/);
  });

  it("acts in the kubeconfig context's namespace when -n is not given, as kubectl does", async () => {
    const { writeFileSync } = await import("node:fs");
    const kc = join(dir, "kubeconfig");
    writeFileSync(kc, "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u, namespace: team-a}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {}\n");
    assert.equal(await commandNamespace(undefined, { KUBECONFIG: kc }), "team-a");
    assert.equal(await commandNamespace("b", { KUBECONFIG: kc }), "b");
    assert.equal(await commandNamespace(undefined, { KUBECONFIG: kc, CELERIAC_NAMESPACE: "x" }), "x");
    assert.equal(await commandNamespace(undefined, { KUBECONFIG: join(dir, "missing") }), "default");
  });
});
