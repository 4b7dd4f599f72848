/**
 * End-to-end: a Workflow's life around its steps, on the dev platform with the real kubectl — it
 * waits for its Queue, a deleted running Workflow revokes its unfinished steps (the handler's signal
 * fires) before it goes, a cycle the CRD cannot see fails it with reason InvalidSpec naming the
 * cycle, and ttlSecondsAfterFinished deletes it once finished.
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

  it("revokes its running step when deleted, and is gone once the step was revoked", async () => {
    assert.equal((await e.apply(queueYaml("wfdel", e.eventsLog))).code, 0);
    const r = await e.apply(workflow("doomed", "  queue: wfdel\n  steps:\n    - name: long\n      task: e2e.sleep\n      kwargs: {ms: 120000}\n    - name: after\n      task: e2e.echo\n      dependsOn: [long]\n"));
    assert.equal(r.code, 0, r.stderr);
    const uid = (await get("doomed"))!.metadata.uid;
    const id = `${uid}_long`;
    await waitFor("the long step started", () => e.events().some((x) => x.event === "start" && x.taskId === id), 60_000, 100);
    const del = await e.kubectl(["delete", "workflow", "doomed", "--timeout=30s"]);
    assert.equal(del.code, 0, del.stderr);
    await waitFor("the handler aborted", () => e.events().some((x) => x.event === "aborted" && x.taskId === id), 15_000, 100);
    assert.equal(await get("doomed"), undefined);
    assert.equal(e.events().filter((x) => x.taskId === `${uid}_after`).length, 0, "the dependent never ran");
  });

  it("fails a Workflow whose dependsOn has a cycle the CRD cannot see, naming it (reason InvalidSpec)", async () => {
    const r = await e.apply(workflow("loop", "  queue: wfdel\n  steps:\n    - name: a\n      task: e2e.echo\n      dependsOn: [c]\n    - name: b\n      task: e2e.echo\n      dependsOn: [a]\n    - name: c\n      task: e2e.echo\n      dependsOn: [b]\n"));
    assert.equal(r.code, 0, r.stderr);
    const w = await e.kubectl(["wait", "--for=condition=Failed", "workflow/loop", "--timeout=30s"]);
    assert.equal(w.code, 0, w.stderr);
    const st = (await get("loop"))!.status!;
    assert.equal(st.phase, "Failed");
    assert.match(st.message ?? "", /cycle: [abc] → [abc] → [abc] → [abc]/);
    assert.equal(st.conditions?.find((c) => c.type === "Failed")?.reason, "InvalidSpec");
    const uid = (await get("loop"))!.metadata.uid;
    assert.equal(e.events().filter((x) => x.taskId.startsWith(uid)).length, 0, "nothing ran");
  });

  it("is deleted ttlSecondsAfterFinished after it finished", async () => {
    const r = await e.apply(workflow("brief", "  queue: wfdel\n  ttlSecondsAfterFinished: 1\n  steps:\n    - name: only\n      task: e2e.echo\n"));
    assert.equal(r.code, 0, r.stderr);
    await waitFor("the Workflow succeeded", async () => (await get("brief"))?.status?.phase === "Succeeded" || undefined, 60_000, 100).catch(() => undefined);
    await waitFor("the Workflow deleted", async () => (await get("brief")) === undefined || undefined, 30_000, 200);
  });
});
