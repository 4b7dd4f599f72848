// Where the operations commands find NATS (cli/nats-target.ts): flag, variable, the local
// platform's state in --dev-dir, or in the directory of a `celeriac dev up` KUBECONFIG.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { natsTarget } from "../../cli/nats-target.js";
import { writeState } from "../../devcluster/platform/state.js";

describe("natsTarget", () => {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-target-"));
  const cwd = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });
  // a ready platform whose supervisor is this (live) process
  writeState(dir, { pid: process.pid, ready: true, natsUrl: "nats://127.0.0.1:14222", startedAt: new Date().toISOString() });

  it("prefers --nats, then CELERIAC_NATS_URL", async () => {
    assert.deepEqual(await natsTarget("nats://a:1", { CELERIAC_NATS_URL: "nats://b:2" }), { url: "nats://a:1", source: "--nats" });
    assert.deepEqual(await natsTarget(undefined, { CELERIAC_NATS_URL: "nats://b:2" }), { url: "nats://b:2", source: "CELERIAC_NATS_URL" });
  });

  it("reads the platform of --dev-dir", async () => {
    assert.deepEqual(await natsTarget(undefined, {}, dir), { url: "nats://127.0.0.1:14222", source: "dev" });
  });

  it("refuses a --dev-dir with no running platform instead of trying 127.0.0.1:4222", async () => {
    await assert.rejects(natsTarget(undefined, {}, cwd), (err: Error) => err.message.includes(`no running \`celeriac dev up\` platform in ${cwd}`));
  });

  it("finds the platform from its KUBECONFIG when run outside the directory (the default --dev-dir has none)", async () => {
    const prev = process.cwd();
    process.chdir(cwd);
    try {
      assert.deepEqual(await natsTarget(undefined, { KUBECONFIG: `/nonexistent/config:${join(dir, "kubeconfig")}` }), { url: "nats://127.0.0.1:14222", source: "dev" });
      assert.deepEqual(await natsTarget(undefined, {}), { url: "nats://127.0.0.1:4222", source: "default" }, "no KUBECONFIG: the default");
      assert.deepEqual(await natsTarget(undefined, { KUBECONFIG: join(dir, "other-name") }), { url: "nats://127.0.0.1:4222", source: "default" }, "a kubeconfig not written by dev up is not followed");
    } finally {
      process.chdir(prev);
    }
  });
});
