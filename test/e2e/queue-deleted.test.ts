/**
 * End-to-end (issue 12 item 4, second half): deleting a Queue that still holds Queued Tasks marks
 * them (Accepted=False reason QueueDeleted and a Warning Event naming the Queue).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

describe("when a Queue with Queued Tasks is deleted", { timeout: 180_000 }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
  });
  after(() => e?.stop());

  it("marks each Queued Task QueueDeleted with a Warning Event naming the Queue", async () => {
    // Suspended: no workers, so the Task stays Queued.
    assert.equal((await e.apply(queueYaml("doomed", e.eventsLog, "  suspend: true\n"))).code, 0);
    assert.equal((await e.apply(taskYaml("stranded", "doomed", "e2e.echo"))).code, 0);
    await waitFor("Task Queued", async () => (await e.kubectl(["get", "task", "stranded", "-o", "jsonpath={.status.phase}"])).stdout === "Queued", 60_000, 100);
    const d = await e.kubectl(["delete", "queue", "doomed", "--wait=true", "--timeout=60s"]);
    assert.equal(d.code, 0, d.stderr);
    const reason = await waitFor("Accepted QueueDeleted", async () => {
      const r = await e.kubectl(["get", "task", "stranded", "-o", "jsonpath={.status.conditions[?(@.type==\"Accepted\")].reason}"]);
      return r.stdout === "QueueDeleted" ? r.stdout : undefined;
    }, 30_000, 100);
    assert.equal(reason, "QueueDeleted");
    const ev = await waitFor("QueueDeleted event", async () => {
      const r = await e.kubectl(["get", "events", "--field-selector", "involvedObject.name=stranded,reason=QueueDeleted", "-o", "jsonpath={.items[*].type} {.items[*].message}"]);
      return r.stdout.includes("doomed") ? r.stdout : undefined;
    }, 30_000, 100);
    assert.match(ev!, /^Warning .*queue "doomed" was deleted/);
  });
});
