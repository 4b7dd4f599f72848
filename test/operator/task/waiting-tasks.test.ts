import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Queue, Task } from "../../../api/objects.js";
import { waitingTasks } from "../../../operator/task/waiting-tasks.js";

const queue: Queue = { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "emails", namespace: "shop" }, spec: {} };
const task = (name: string, q: string, phase?: string): Task => ({
  apiVersion: "celeriac.io/v1alpha1",
  kind: "Task",
  metadata: { name, namespace: "shop" },
  spec: { queue: q, task: "emails.send" },
  ...(phase ? { status: { phase: phase as NonNullable<Task["status"]>["phase"] } } : {}),
});

describe("when a Queue appears", () => {
  it("releases the Tasks that wait for it (no phase yet, or Pending) and no others", () => {
    const tasks = [task("new", "emails"), task("pending", "emails", "Pending"), task("queued", "emails", "Queued"), task("done", "emails", "Succeeded"), task("other", "sms", "Pending")];
    assert.deepEqual(waitingTasks(queue, tasks), [
      { namespace: "shop", name: "new" },
      { namespace: "shop", name: "pending" },
    ]);
  });
});
