/** `celeriac dev up` / `dev apiserver` refuse bad numeric or choice flags before starting anything, naming the flag. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { runTool } from "../helpers/k8s-tools.js";

const celeriac = (...args: string[]) => runTool(process.execPath, [join(REPO_ROOT, "bin", "celeriac.js"), ...args], {}, 30_000);

describe("when a dev command gets a bad flag value", () => {
  const cases: Array<[string[], string]> = [
    [["dev", "up", "--operator-replicas", "abc"], "option '--operator-replicas <n>' argument 'abc' is invalid. must be an integer from 1 to 10"],
    [["dev", "up", "--operator-replicas", "0"], "option '--operator-replicas <n>' argument '0' is invalid"],
    [["dev", "up", "--port", "99999"], "option '--port <n>' argument '99999' is invalid. must be an integer from 0 to 65535"],
    [["dev", "up", "--timeout", "soon"], "option '--timeout <seconds>' argument 'soon' is invalid"],
    [["dev", "apiserver", "--port", "99999"], "option '--port <n>' argument '99999' is invalid. must be an integer from 0 to 65535"],
    [["dev", "up", "--nats-auth", "foo"], "option '--nats-auth <mode>' argument 'foo' is invalid. Allowed choices are shared, minted, accounts."],
  ];
  for (const [args, message] of cases) {
    it(`refuses ${args.join(" ")} naming the flag, and starts nothing`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "celeriac-flags-"));
      try {
        const r = await celeriac(...args, ...(args[1] === "up" ? ["--dir", join(dir, "state")] : ["--kubeconfig", join(dir, "kc")]));
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.includes(message), r.stderr);
        assert.ok(!existsSync(join(dir, "state")) && !existsSync(join(dir, "kc")), "nothing was started");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
