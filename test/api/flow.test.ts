/**
 * The flow-control contract's pure parts: Celery's rate syntax (and the CRD pattern refusing what
 * parseRate refuses), concurrency-key resolution and the message flow of a task.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { messageFlow, parseRate, RATE_PATTERN, resolveConcurrencyKey } from "../../api/flow.js";

describe("when a rate is given in Celery's syntax", () => {
  it("reads per second, minute and hour, and a bare number as per second", () => {
    assert.equal(parseRate("10/s"), 10);
    assert.equal(parseRate("120/m"), 2);
    assert.equal(parseRate("3600/h"), 1);
    assert.equal(parseRate("5"), 5);
    assert.equal(parseRate("0.5/s"), 0.5);
  });
  it("refuses zero and malformed rates at apply (the CRD pattern) and in parseRate, naming the field", () => {
    const re = new RegExp(RATE_PATTERN);
    for (const bad of ["0", "0/s", "0.0/m", "00/h", "fast", "10/x", "-1/s", "", "1e3/s"]) {
      assert.equal(re.test(bad), false, `pattern accepts ${JSON.stringify(bad)}`);
      assert.throws(() => parseRate(bad, "spec.rateLimit.rate"), /^Error: spec\.rateLimit\.rate: ".*" is not a rate/);
    }
    for (const good of ["1", "0.1/s", "10/s", "007/m", "1.5/h", "100.0"]) assert.equal(re.test(good), true, good);
  });
});

describe("when a task's concurrency key and flow are resolved", () => {
  it("takes the explicit key first, then the kwarg or argument path, as a string", () => {
    assert.equal(resolveConcurrencyKey("x", "kwargs.tenant", [], { tenant: "t" }), "x");
    assert.equal(resolveConcurrencyKey(undefined, "kwargs.account.id", [], { account: { id: 42 } }), "42");
    assert.equal(resolveConcurrencyKey(undefined, "args[1]", ["a", "b"], {}), "b");
    assert.equal(resolveConcurrencyKey(undefined, "kwargs.tenant", [], {}), undefined);
    assert.equal(resolveConcurrencyKey(undefined, "kwargs.tenant", [], { tenant: { nested: true } }), undefined);
  });
  it("refuses a priority or key the queue cannot honour, never drops it", () => {
    assert.equal(messageFlow("q", undefined, {}, [], {}), undefined);
    assert.throws(() => messageFlow("q", undefined, { priority: 1 }, [], {}), /^Error: priority: queue "q" has no spec\.priorities/);
    const flow = { levels: 3, defaultPriority: 1, keys: true, keyFrom: "kwargs.tenant" };
    assert.deepEqual(messageFlow("q", flow, {}, [], { tenant: "a" }), { priority: 1, key: "a" });
    assert.throws(() => messageFlow("q", flow, { priority: 3 }, [], {}), /priority: 3 is not a level of queue "q": use an integer 0 … 2/);
    assert.throws(() => messageFlow("q", { ...flow, keys: false }, { concurrencyKey: "k" }, [], {}), /concurrencyKey: queue "q" has no spec\.concurrencyKeys/);
  });
});
