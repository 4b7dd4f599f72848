/**
 * `x-kubernetes-list-type` in the in-memory API server's validation (api/validation.ts), as
 * kube-apiserver checks it: a duplicate in a `set` or a repeated key in a `map` list is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { schemaForKind } from "../../api/crd.js";
import { validateValue } from "../../api/validation.js";

const wf = (steps: unknown[], status?: unknown) => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Workflow", metadata: { name: "x" }, spec: { queue: "q", steps }, ...(status ? { status } : {}) });

describe("list types", () => {
  it("refuses a repeated item of a set list (dependsOn), naming the index", () => {
    const causes = validateValue(schemaForKind("Workflow"), wf([{ name: "a", task: "t" }, { name: "b", task: "t", dependsOn: ["a", "a"] }]));
    assert.deepEqual(causes, [{ reason: "FieldValueDuplicate", field: "spec.steps[1].dependsOn[1]", message: 'Duplicate value: "a"' }]);
  });
  it("refuses a repeated key of a map list (status.steps by name, conditions by type)", () => {
    const step = { name: "a", phase: "Pending", tasks: { total: 0, succeeded: 0, failed: 0, running: 0 } };
    const causes = validateValue(schemaForKind("Workflow"), wf([{ name: "a", task: "t" }], { steps: [step, step] }));
    assert.deepEqual(causes, [{ reason: "FieldValueDuplicate", field: "status.steps[1]", message: 'Duplicate value: map[string]interface {}{"name":"a"}' }]);
  });
  it("accepts distinct items", () => {
    assert.deepEqual(validateValue(schemaForKind("Workflow"), wf([{ name: "a", task: "t" }, { name: "b", task: "t", dependsOn: ["a"] }])), []);
  });
});
