/**
 * Conformance: helm 4 install, upgrade, list, uninstall and `--wait` (watch-list) against the in-memory server,
 * with protobuf release Secrets and server-side apply of every chart object.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { K8S_FIXTURES, k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";

const tools = k8sTools();
const CHARTS = join(K8S_FIXTURES, "charts");

describe("when helm 4 manages releases", { skip: tools.helm4 && tools.kubectl132 ? false : "helm 4 or kubectl not available" }, () => {
  let api: ApiServer;
  let dir: string;
  const env = (): Record<string, string> => ({ HELM_CACHE_HOME: join(dir, "hc"), HELM_CONFIG_HOME: join(dir, "hcfg"), HELM_DATA_HOME: join(dir, "hd"), KUBECACHEDIR: join(dir, "kc") });
  const helm = (...args: string[]): Promise<ToolRun> => runTool(tools.helm4 as string, ["--kubeconfig", join(dir, "kubeconfig"), ...args], env(), 60_000);
  const kubectl = (...args: string[]): Promise<ToolRun> => runTool(tools.kubectl132 as string, ["--kubeconfig", join(dir, "kubeconfig"), "--cache-dir", join(dir, "kc"), ...args]);
  const ok = async (r: Promise<ToolRun>): Promise<string> => {
    const x = await r;
    assert.equal(x.code, 0, x.stderr);
    return x.stdout;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-helm-"));
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    await ok(kubectl("apply", "-f", join(K8S_FIXTURES, "manifests", "crd.yaml")));
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("installs, lists, upgrades and uninstalls a release", async () => {
    assert.match(await ok(helm("install", "demo", join(CHARTS, "demo"))), /STATUS: deployed/);
    assert.match(await ok(helm("list")), /demo\s+default\s+1\s.*deployed/);
    assert.match(await ok(kubectl("get", "cm", "demo-cfg", "-o", "jsonpath={.data.image}")), /busybox:1\.36/);
    assert.match(await ok(helm("upgrade", "demo", join(CHARTS, "demo"), "--set", "image=busybox:1.37")), /REVISION: 2/);
    assert.match(await ok(kubectl("get", "cm", "demo-cfg", "-o", "jsonpath={.data.image}")), /busybox:1\.37/);
    assert.match(await ok(kubectl("get", "secrets", "-l", "owner=helm")), /sh\.helm\.release\.v1\.demo\.v2/);
    assert.match(await ok(helm("uninstall", "demo")), /uninstalled/);
    assert.doesNotMatch(await ok(helm("list")), /demo/);
    const gone = await kubectl("get", "cm", "demo-cfg");
    assert.match(gone.stderr, /NotFound/);
  });

  it("waits for a Deployment through the watch-list protocol", async () => {
    assert.match(await ok(helm("install", "d2", join(CHARTS, "demo2"), "--wait", "--timeout", "20s")), /STATUS: deployed/);
    assert.match(await ok(kubectl("get", "deploy", "d2-worker")), /d2-worker\s+2\/2/);
    await ok(helm("uninstall", "d2"));
  });

  it("times out --wait when the Deployment never becomes ready", async () => {
    api.controllers.deploymentStatus = false;
    try {
      const r = await helm("install", "d3", join(CHARTS, "demo2"), "--wait", "--timeout", "2s");
      assert.notEqual(r.code, 0);
    } finally {
      api.controllers.deploymentStatus = true;
    }
  });
});
