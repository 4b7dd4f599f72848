import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkEnqueueInput, type EnqueueInput } from "../../cli/enqueue-checks.js";

describe("when celeriac enqueue is given a bad task name or flag", () => {
  const cases: Array<[string, EnqueueInput, RegExp]> = [
    ["a task name with a space", { task: "send email" }, /^task name "send email" is invalid: use letters, digits and _ \. : -/],
    ["a task name starting with a digit", { task: "1job" }, /^task name "1job" is invalid/],
    ["--eta as a word", { task: "a.b", eta: "tomorrow" }, /^--eta: "tomorrow" is not a time: use RFC 3339 with a zone, e\.g\. --eta 2026-01-02T15:04:05Z$/],
    ["--eta without a zone", { task: "a.b", eta: "2026-01-02T15:04:05" }, /^--eta: "2026-01-02T15:04:05" is not a time/],
    ["--expires as a word", { task: "a.b", expires: "nope" }, /^--expires: "nope" is not a time/],
    ["--countdown with --eta", { task: "a.b", countdown: "5", eta: "2026-01-02T15:04:05Z" }, /^--countdown and --eta are exclusive: give one/],
    ["--task-id with a dot", { task: "a.b", taskId: "a.b" }, /^--task-id "a\.b" is invalid: use 1-256 of A-Z a-z 0-9 _ = -/],
  ];
  for (const [name, input, want] of cases) it(`refuses ${name}`, () => assert.throws(() => checkEnqueueInput(input), { message: want }));
  it("accepts good values", () => {
    assert.doesNotThrow(() => checkEnqueueInput({ task: "reports.generate", eta: "2026-01-02T15:04:05+01:00", expires: "2026-01-02T16:04:05.5Z", taskId: "abc_1-2=" }));
  });
});
