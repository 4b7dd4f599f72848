/**
 * `celeriac dev up` supervision (issue 12 item 13): a SIGKILLed operator is restarted by the
 * platform, and `celeriac dev status` shows the restart.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { devDown, devUp } from "../../cli/commands/dev-platform.js";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { isAlive, readState } from "../../devcluster/platform/state.js";
import { runTool, waitFor } from "../helpers/k8s-tools.js";

describe("when an operator of `celeriac dev up` is SIGKILLed", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-devup-"));
  before(async () => {
    await devUp(dir, 60_000);
  });
  after(async () => {
    await devDown(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it("restarts it with back-off, and dev status shows the restart", async () => {
    const pid = readState(dir)!.operatorPids![0]!;
    assert.ok(isAlive(pid));
    process.kill(pid, "SIGKILL");
    const state = await waitFor("operator restarted", () => {
      const s = readState(dir);
      return s?.restarts?.operators[0] === 1 && s.operatorPids?.[0] !== pid && isAlive(s.operatorPids![0]!) ? s : undefined;
    }, 30_000, 100);
    assert.ok(state);
    const st = await runTool(process.execPath, [join(REPO_ROOT, "bin", "celeriac.js"), "dev", "status", "--dir", dir]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /operator-0\s+pid \d+\s+running\s+restarts 1/);
    assert.match(st.stdout, /nats\s+.*restarts 0/);
  });
});
