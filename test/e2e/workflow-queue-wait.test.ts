/**
 * End-to-end: a Workflow applied before its Queue waits Pending, saying so, and runs once the Queue
 * is applied (on the dev platform with the real kubectl). Deletion, cycles and the TTL are in
 * workflow.test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, type E2E } from "./helpers.js";

interface Wf {
  metadata: { uid: string };
  status?: { phase?: string; message?: string; steps?: Array<{ name: string; phase: string; message?: string }>; conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}

describe("when a Workflow is applied, deleted or finished", { skip: LOCAL_ONLY }, () => {
  let e: E2E;
  const get = async (name: string): Promise<Wf | undefined> => {
    const r = await e.kubectl(["get", "workflow", name, "-o", "json"]);
    return r.code === 0 ? (JSON.parse(r.stdout) as Wf) : undefined;
  };
  const workflow = (name: string, body: string) => `apiVersion: celeriac.io/v1alpha1
kind: Workflow
metadata:
  name: ${name}
spec:
${body}`;

  before(async () => {
    e = await startE2E();
  });
  after(async () => {
    await e?.stop();
  });

  it("waits Pending, saying so, until its Queue exists, then runs", async () => {
    const r = await e.apply(workflow("early", "  queue: late\n  steps:\n    - name: only\n      task: e2e.echo\n      args: [1]\n"));
    assert.equal(r.code, 0, r.stderr);
    const pending = await waitFor("Pending with a message", async () => {
      const w = await get("early");
      return w?.status?.phase === "Pending" && /waiting for Queue "late"/.test(w.status.message ?? "") ? w : undefined;
    }, 15_000, 100);
    assert.ok(pending);
    assert.equal((await e.apply(queueYaml("late", e.eventsLog))).code, 0);
    const done = await e.kubectl(["wait", "--for=condition=Succeeded", "workflow/early", "--timeout=60s"]);
    assert.equal(done.code, 0, done.stderr);
  });
});
