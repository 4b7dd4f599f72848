/**
 * jsonCopy gives exactly what a JSON round trip gives, for the values
 * it copies (stored objects, request bodies) and the odd ones (undefined, Dates, NaN, "__proto__").
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonCopy as clone } from "../../api/json-copy.js";

const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

describe("when the API server copies a JSON value", () => {
  it("gives what a JSON round trip gives, as a new object graph", () => {
    const values: unknown[] = [
      { metadata: { name: "a", labels: { x: "1" }, finalizers: ["f"] }, spec: { args: [1, "two", null, true, { deep: [[]] }] }, status: {} },
      [1, undefined, () => 1, "x"],
      { keep: 1, dropped: undefined, fn: () => 1, when: new Date("2026-12-02T00:00:00Z"), nan: NaN, inf: -Infinity, nested: { d: new Date(0) } },
      "text",
      42,
      null,
      true,
    ];
    for (const v of values) assert.deepEqual(clone(v), roundTrip(v));
    const o = values[0] as { metadata: { labels: Record<string, string> } };
    const c = clone(o);
    c.metadata.labels.x = "changed";
    assert.equal(o.metadata.labels.x, "1");
    assert.equal(clone(undefined), undefined);
  });

  it("keeps an own __proto__ key as data without changing the copy's prototype", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const c = clone(parsed);
    assert.equal(Object.getPrototypeOf(c), Object.prototype);
    assert.equal((c as { polluted?: unknown }).polluted, undefined);
    assert.deepEqual(Object.keys(c), ["__proto__", "a"]);
    assert.equal(JSON.stringify(c), JSON.stringify(parsed));
  });
});
