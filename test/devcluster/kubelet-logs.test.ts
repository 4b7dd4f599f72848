// Tests for `celeriac dev logs`: printing and following a pod's log file written by the dev kubelet.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { printPodLog } from "../../cli/commands/dev-logs.js";

function sink(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let buf = "";
  out.on("data", (c: Buffer) => (buf += c.toString("utf8")));
  return { out, text: () => buf };
}

describe("when printing a dev pod's log", () => {
  it("prints <dir>/logs/<namespace>_<pod>.log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-devlogs-"));
    try {
      mkdirSync(join(dir, "logs"));
      appendFileSync(join(dir, "logs", "ns1_web-abc-12345.log"), "line 1\nline 2\n");
      const s = sink();
      await printPodLog("web-abc-12345", { namespace: "ns1", dir, follow: false, out: s.out });
      assert.equal(s.text(), "line 1\nline 2\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails naming the expected file when there is none", async () => {
    await assert.rejects(printPodLog("nope", { namespace: "default", dir: "/nonexistent", follow: false }), /nonexistent\/logs\/default_nope\.log/);
  });

  it("follows appended output until aborted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-devlogs-"));
    try {
      mkdirSync(join(dir, "logs"));
      const file = join(dir, "logs", "default_p.log");
      const s = sink();
      const ac = new AbortController();
      const done = printPodLog("p", { namespace: "default", dir, follow: true, pollMs: 20, signal: ac.signal, out: s.out });
      appendFileSync(file, "first\n");
      const deadline = Date.now() + 5000;
      while (!s.text().includes("first") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      appendFileSync(file, "second\n");
      while (!s.text().includes("second") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      ac.abort();
      await done;
      assert.equal(s.text(), "first\nsecond\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
