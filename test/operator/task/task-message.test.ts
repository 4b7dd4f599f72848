import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseTaskMessage } from "../../../api/message.js";
import type { Task } from "../../../api/objects.js";
import { InvalidTaskMessageError, argsTooLarge, newTaskMessage, taskMessageInput, type NewTaskMessageInput } from "../../../api/task-message.js";

const now = new Date("2026-01-01T00:00:00Z");
const base: NewTaskMessageInput = { id: "id-1", task: "a.b", queue: "q", namespace: "default", origin: { kind: "Client" } };

describe("when a task message is built", () => {
  const table: Array<[string, Partial<NewTaskMessageInput>, { eta?: string; expires?: string }]> = [
    ["no timing", {}, {}],
    ["a countdown", { countdownSeconds: 10 }, { eta: "2026-01-01T00:00:10.000Z" }],
    ["a zero countdown (at once)", { countdownSeconds: 0 }, {}],
    ["an eta string", { eta: "2026-01-02T00:00:00Z" }, { eta: "2026-01-02T00:00:00.000Z" }],
    ["relative expiry", { expiresSeconds: 60 }, { expires: "2026-01-01T00:01:00.000Z" }],
    ["both expiries (the earlier wins)", { expiresSeconds: 60, expires: "2026-01-01T00:00:30Z" }, { expires: "2026-01-01T00:00:30.000Z" }],
  ];
  for (const [what, input, want] of table) {
    it(`encodes ${what}`, () => {
      const m = newTaskMessage({ ...base, ...input }, now);
      assert.equal(m.eta, want.eta);
      assert.equal(m.expires, want.expires);
      assert.equal(m.createdAt, now.toISOString());
      assert.equal(parseTaskMessage(JSON.stringify(m)).ok, true);
    });
  }

  it("resolves timeout and retry task → queue → defaults", () => {
    const m = newTaskMessage({ ...base, retry: { maxAttempts: 5 }, queueSpec: { timeoutSeconds: 60, retry: { maxAttempts: 2, backoff: { initialSeconds: 3 } } } }, now);
    assert.equal(m.timeoutSeconds, 60);
    assert.equal(m.retry.maxAttempts, 5);
    assert.equal(m.retry.backoff.initialSeconds, 3);
  });

  it("rejects args over 256 KiB, naming the field", () => {
    assert.throws(() => newTaskMessage({ ...base, args: ["x".repeat(300_000)] }, now), (err: unknown) => err instanceof InvalidTaskMessageError && err.field === "args" && /at most 262144/.test(err.message));
    assert.equal(argsTooLarge(["x"], {}), undefined);
  });

  it("builds a Task's message from its spec: id and origin from the Task", () => {
    const task: Task = {
      apiVersion: "celeriac.io/v1alpha1", kind: "Task",
      metadata: { name: "t", namespace: "shop", uid: "0b7f5e1c-1111-4222-8333-944455556666" },
      spec: { queue: "emails", task: "emails.send", countdownSeconds: 5 },
    };
    const m = newTaskMessage(taskMessageInput(task), now);
    assert.equal(m.id, task.metadata.uid);
    assert.deepEqual(m.origin, { kind: "Task", namespace: "shop", name: "t", uid: task.metadata.uid });
    assert.equal(m.eta, "2026-01-01T00:00:05.000Z");
    assert.deepEqual([m.args, m.kwargs], [[], {}]);
  });
});
