import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Queue } from "../../../api/objects.js";
import { specNamesTasksModule } from "../../../operator/queue/desired-workers.js";
import { lastErrorLine, workerPodProblem, workersCondition } from "../../../operator/queue/queue-status.js";

const pod = (name: string, cs: Record<string, unknown>) => ({ metadata: { name }, status: { containerStatuses: [{ name: "worker", ...cs }] } });

describe("when worker Pods are read for WorkersReady", () => {
  const table: Array<[string, ReturnType<typeof pod>[], string | undefined, RegExp | undefined]> = [
    ["no pods", [], undefined, undefined],
    ["a running pod", [pod("a", { restartCount: 0, state: { running: {} } })], undefined, undefined],
    [
      "a crash loop with a termination message",
      [pod("a", { restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 1, message: "load tasks module x.js: boom\n    at foo (x.js:1)\n" } } })],
      "WorkersCrashLooping",
      /^pod a: container worker is crash-looping \(3 restarts, last exit code 1\): load tasks module x\.js: boom$/,
    ],
    [
      "a container config error",
      [pod("b", { restartCount: 0, state: { waiting: { reason: "CreateContainerConfigError", message: 'secret "s" not found' } } })],
      "WorkersCannotStart",
      /cannot start \(CreateContainerConfigError\): secret "s" not found/,
    ],
  ];
  for (const [what, pods, reason, message] of table) {
    it(`reports ${what}`, () => {
      const p = workerPodProblem(pods);
      assert.equal(p?.reason, reason);
      if (message) assert.match(p!.message, message);
    });
  }

  it("puts the problem in WorkersReady: False with its reason when none is ready, True with the note otherwise", () => {
    const problem = { reason: "WorkersCrashLooping", message: "pod a: boom" };
    const base = { provider: "builtin" as const, kedaMissing: false, suspended: false, desired: 2, problem };
    assert.deepEqual(workersCondition({ ...base, ready: 0 }), { type: "WorkersReady", status: "False", reason: "WorkersCrashLooping", message: "0 of 2 workers ready; pod a: boom" });
    assert.equal(workersCondition({ ...base, ready: 1 }).status, "True");
    assert.equal(lastErrorLine("Error: x\n    at y\n"), "Error: x");
  });

  it("tells whether the spec names a tasks module", () => {
    const q = (worker: Record<string, unknown>) => ({ metadata: { name: "q", namespace: "d", uid: "u" }, spec: { worker } }) as unknown as Queue;
    assert.equal(specNamesTasksModule(q({})), false);
    assert.equal(specNamesTasksModule(q({ env: [{ name: "CELERIAC_TASKS", value: "t.js" }] })), true);
    assert.equal(specNamesTasksModule(q({ args: ["worker", "--tasks=t.js"] })), true);
    assert.equal(specNamesTasksModule(q({ envFrom: [{ configMapRef: { name: "c" } }] })), true);
    assert.equal(specNamesTasksModule(q({ template: { spec: { containers: [{ name: "w", env: [{ name: "CELERIAC_TASKS", value: "t.js" }] }] } } })), true);
  });
});
