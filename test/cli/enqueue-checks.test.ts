import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { InvalidTaskMessageError } from "../../api/task-message.js";
import { UniqueKeyHeldError } from "../../client/errors.js";
import { checkEnqueueInput, flagOfOption, parseEnqueueFlowFlags, type EnqueueFlowFlags, type EnqueueInput } from "../../cli/enqueue-checks.js";

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

describe("when celeriac enqueue is given flow-control flags", () => {
  it("parses --priority, --concurrency-key, --unique-key and --unique-policy", () => {
    assert.deepEqual(parseEnqueueFlowFlags({}), {});
    assert.deepEqual(parseEnqueueFlowFlags({ priority: "0" }), { priority: 0 });
    assert.deepEqual(parseEnqueueFlowFlags({ priority: "9", concurrencyKey: "tenant a" }), { priority: 9, concurrencyKey: "tenant a" });
    assert.deepEqual(parseEnqueueFlowFlags({ uniqueKey: "nightly" }), { unique: { key: "nightly", policy: "Reject" } });
    assert.deepEqual(parseEnqueueFlowFlags({ uniqueKey: "nightly", uniquePolicy: "Wait" }), { unique: { key: "nightly", policy: "Wait" } });
  });
  const cases: Array<[string, EnqueueFlowFlags, RegExp]> = [
    ["a word as --priority", { priority: "high" }, /^--priority: must be an integer 0–9 below the Queue's spec\.priorities\.levels \(got "high"\)/],
    ["a negative --priority", { priority: "-1" }, /^--priority: must be an integer 0–9/],
    ["--priority 10", { priority: "10" }, /^--priority: must be an integer 0–9 .*\(got "10"\)/],
    ["a fractional --priority", { priority: "1.5" }, /^--priority: must be an integer/],
    ["an empty --concurrency-key", { concurrencyKey: "" }, /^--concurrency-key: "" is invalid: use 1–128 characters/],
    ["a --unique-key with a leading space", { uniqueKey: " k" }, /^--unique-key: " k" is invalid/],
    ["--unique-policy without --unique-key", { uniquePolicy: "Wait" }, /^--unique-policy needs --unique-key/],
    ["an unknown --unique-policy", { uniqueKey: "k", uniquePolicy: "wait" }, /^--unique-policy: "wait" is not a policy: use Reject, Replace, Wait \(default Reject\)$/],
  ];
  for (const [name, flags, want] of cases) it(`refuses ${name}`, () => assert.throws(() => parseEnqueueFlowFlags(flags), { message: want }));

  it("words the client's option errors as flags", () => {
    const e = flagOfOption(new InvalidTaskMessageError("priority", 'priority: 7 is not a level of queue "reports": use an integer 0 … 3'));
    assert.ok(e instanceof Error);
    assert.equal(e.message, '--priority: 7 is not a level of queue "reports": use an integer 0 … 3');
    assert.equal((flagOfOption(new InvalidTaskMessageError("concurrencyKey", "concurrencyKey: queue \"q\" has no spec.concurrencyKeys")) as Error).message, '--concurrency-key: queue "q" has no spec.concurrencyKeys');
    const other = new Error("unrelated");
    assert.equal(flagOfOption(other), other);
  });

  it("gives a held Reject key's advice as the --unique-policy flag", () => {
    const held = new UniqueKeyHeldError({ id: "t2", task: "reports.build" }, { queue: "q", namespace: "default" }, "nightly", "t1");
    const e = flagOfOption(held) as Error;
    assert.match(e.message, /unique key "nightly" is held by task t1/);
    assert.match(e.message, /pass --unique-policy Wait \(run after it\) or Replace/);
    assert.doesNotMatch(e.message, /unique\.policy/);
  });
});
