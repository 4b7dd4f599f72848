/**
 * Server-side apply field ownership in the in-memory API server, as structured-merge-diff does it: a manager that
 * stops applying an object loses it as a whole unless another manager owns a field inside it, list-maps are owned
 * per key, atomic lists and maps are replaced whole, and managedFields look like kube-apiserver's.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ALL_CRDS } from "../../api/crd.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are arbitrary JSON
type J = any;

const WIDGETS = "/apis/ssa.test.io/v1/namespaces/default/widgets";
const TASKS = "/apis/celeriac.io/v1alpha1/namespaces/default/tasks";

const WIDGET_CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.ssa.test.io" },
  spec: {
    group: "ssa.test.io",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                properties: {
                  a: { type: "object", required: ["x"], properties: { x: { type: "integer" }, y: { type: "integer" }, z: { type: "integer" } } },
                  b: { type: "integer" },
                  tags: { type: "array", items: { type: "string" } },
                  selector: { type: "object", "x-kubernetes-map-type": "atomic", additionalProperties: { type: "string" } },
                  byName: { type: "object", additionalProperties: { type: "object", properties: { x: { type: "integer" }, y: { type: "integer" } } } },
                  conditions: {
                    type: "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                    items: { type: "object", required: ["type"], properties: { type: { type: "string" }, status: { type: "string" }, reason: { type: "string" } } },
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};

/** One write: an apply (default) or a merge patch (an Update-operation manager). */
interface Step {
  manager: string;
  spec?: J;
  merge?: boolean;
  force?: boolean;
}

interface Case {
  name: string;
  steps: Step[];
  /** the HTTP status of the last step */
  code?: number;
  /** the expected spec after the last step */
  spec?: J;
  /** expected fieldsV1 by manager (Apply or Update entry of that name); null = no entry */
  fields?: Record<string, J>;
}

const CASES: Case[] = [
  {
    name: "removes a nested object the same manager applied before and now leaves out",
    steps: [
      { manager: "m1", spec: { a: { x: 1, y: 2 }, b: 1 } },
      { manager: "m1", spec: { b: 1 } },
    ],
    spec: { b: 1 },
    fields: { m1: { "f:spec": { "f:b": {} } } },
  },
  {
    name: "keeps the object, with only the other applier's field, when another applier owns a field in it",
    steps: [
      { manager: "m1", spec: { a: { x: 1, y: 2 } } },
      { manager: "m2", spec: { a: { x: 1, z: 3 } } },
      { manager: "m1", spec: { b: 1 } },
    ],
    spec: { a: { x: 1, z: 3 }, b: 1 },
    fields: { m1: { "f:spec": { "f:b": {} } }, m2: { "f:spec": { "f:a": { "f:x": {}, "f:z": {} } } } },
  },
  {
    name: "keeps a field in the object that an Update manager changed",
    steps: [
      { manager: "m1", spec: { a: { x: 1, y: 2 } } },
      { manager: "editor", merge: true, spec: { a: { x: 5 } } },
      { manager: "m1", spec: { b: 1 } },
    ],
    spec: { a: { x: 5 }, b: 1 },
    fields: { m1: { "f:spec": { "f:b": {} } }, editor: { "f:spec": { "f:a": { "f:x": {} } } } },
  },
  {
    name: "owns list-map items per key and removes only the items the applier dropped",
    steps: [
      { manager: "m1", spec: { conditions: [{ type: "A", status: "True" }, { type: "B", status: "True" }] } },
      { manager: "m2", spec: { conditions: [{ type: "C", status: "False" }] } },
      { manager: "m1", spec: { conditions: [{ type: "A", status: "True" }] } },
    ],
    spec: { conditions: [{ type: "A", status: "True" }, { type: "C", status: "False" }] },
    fields: {
      m1: { "f:spec": { "f:conditions": { 'k:{"type":"A"}': { ".": {}, "f:status": {}, "f:type": {} } } } },
      m2: { "f:spec": { "f:conditions": { 'k:{"type":"C"}': { ".": {}, "f:status": {}, "f:type": {} } } } },
    },
  },
  {
    name: "removes a field of a list-map item and keeps the item",
    steps: [
      { manager: "m1", spec: { conditions: [{ type: "A", status: "True", reason: "R" }] } },
      { manager: "m1", spec: { conditions: [{ type: "A", status: "True" }] } },
    ],
    spec: { conditions: [{ type: "A", status: "True" }] },
  },
  {
    name: "lets two appliers own different fields of one list-map item without a conflict",
    steps: [
      { manager: "m1", spec: { conditions: [{ type: "A", status: "True" }] } },
      { manager: "m2", spec: { conditions: [{ type: "A", reason: "R" }] } },
    ],
    code: 200,
    spec: { conditions: [{ type: "A", status: "True", reason: "R" }] },
  },
  {
    name: "refuses with 409 a change to a list-map item field another applier owns",
    steps: [
      { manager: "m1", spec: { conditions: [{ type: "A", status: "True" }] } },
      { manager: "m2", spec: { conditions: [{ type: "A", status: "False" }] } },
    ],
    code: 409,
  },
  {
    name: "replaces an atomic list whole, with one owner once forced",
    steps: [
      { manager: "m1", spec: { tags: ["a", "b"], b: 1 } },
      { manager: "m2", spec: { tags: ["c"] }, force: true },
    ],
    spec: { tags: ["c"], b: 1 },
    fields: { m1: { "f:spec": { "f:b": {} } }, m2: { "f:spec": { "f:tags": {} } } },
  },
  {
    name: "replaces an atomic map whole instead of merging its keys",
    steps: [
      { manager: "m1", spec: { selector: { a: "1", b: "2" }, b: 1 } },
      { manager: "m2", spec: { selector: { c: "3" } }, force: true },
    ],
    spec: { selector: { c: "3" }, b: 1 },
    fields: { m1: { "f:spec": { "f:b": {} } }, m2: { "f:spec": { "f:selector": {} } } },
  },
  {
    name: "owns an object under a map key as a whole (.) and removes it whole",
    steps: [
      { manager: "m1", spec: { byName: { foo: { x: 1 }, bar: { y: 2 } } } },
      { manager: "m1", spec: { byName: { bar: { y: 2 } } } },
    ],
    spec: { byName: { bar: { y: 2 } } },
    fields: { m1: { "f:spec": { "f:byName": { "f:bar": { ".": {}, "f:y": {} } } } } },
  },
];

describe("when managers server-side apply a custom resource", () => {
  let api: ApiServer;
  let dir: string;
  const call = async (method: string, path: string, body?: unknown, ct = "application/json"): Promise<{ status: number; body: J }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": ct }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const fieldsOf = (obj: J, manager: string): J => (obj.metadata.managedFields ?? []).find((e: J) => e.manager === manager)?.fieldsV1 ?? null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-ssa-"));
    api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
    assert.equal((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)).status, 201);
    for (const { crd } of ALL_CRDS) assert.equal((await call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status, 201);
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const name = `w${i}`;
      let last: { status: number; body: J } = { status: 0, body: undefined };
      for (const [n, s] of c.steps.entries()) {
        const body = { apiVersion: "ssa.test.io/v1", kind: "Widget", metadata: { name }, spec: s.spec ?? {} };
        last = s.merge
          ? await call("PATCH", `${WIDGETS}/${name}?fieldManager=${s.manager}`, { spec: s.spec }, "application/merge-patch+json")
          : await call("PATCH", `${WIDGETS}/${name}?fieldManager=${s.manager}${s.force ? "&force=true" : ""}`, body, "application/apply-patch+yaml");
        if (n < c.steps.length - 1) assert.ok(last.status === 200 || last.status === 201, `step ${n}: ${JSON.stringify(last.body)}`);
      }
      assert.equal(last.status, c.code ?? 200, JSON.stringify(last.body));
      if (c.spec !== undefined) assert.deepEqual(last.body.spec, c.spec);
      for (const [m, f] of Object.entries(c.fields ?? {})) assert.deepEqual(fieldsOf(last.body, m), f, `fieldsV1 of ${m}`);
      if (c.code === undefined) assert.deepEqual((await call("GET", `${WIDGETS}/${name}`)).body.spec, c.spec, "stored object");
    });
  });

  it("records a created object's fields as an Update, an object it added owned as a whole (.)", async () => {
    const r = await call("POST", `${WIDGETS}?fieldManager=creator`, { apiVersion: "ssa.test.io/v1", kind: "Widget", metadata: { name: "created", labels: { app: "x" } }, spec: { a: { x: 1 } } });
    assert.equal(r.status, 201);
    const e = r.body.metadata.managedFields.find((x: J) => x.manager === "creator");
    assert.equal(e.operation, "Update");
    assert.deepEqual(e.fieldsV1, { "f:metadata": { "f:labels": { ".": {}, "f:app": {} } }, "f:spec": { ".": {}, "f:a": { ".": {}, "f:x": {} } } });
    assert.deepEqual(Object.keys(e), ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]);
  });

  describe("when the worker applies a Task's status", () => {
    const applyStatus = (status: J) =>
      call("PATCH", `${TASKS}/retried/status?fieldManager=celeriac-worker`, { apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "retried" }, status }, "application/apply-patch+yaml");

    it("removes status.error when a later apply by the same manager leaves it out, and the write succeeds", async () => {
      const created = await call("POST", TASKS, { apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { name: "retried" }, spec: { queue: "default", task: "reports.generate" } });
      assert.equal(created.status, 201);
      const failed = await applyStatus({ phase: "Failed", error: { type: "TypeError", message: "boom" } });
      assert.equal(failed.status, 200, JSON.stringify(failed.body));
      assert.deepEqual(failed.body.status.error, { type: "TypeError", message: "boom" });
      const entry = failed.body.metadata.managedFields.find((e: J) => e.manager === "celeriac-worker");
      assert.deepEqual(
        { operation: entry.operation, subresource: entry.subresource, fieldsV1: entry.fieldsV1 },
        { operation: "Apply", subresource: "status", fieldsV1: { "f:status": { "f:error": { "f:message": {}, "f:type": {} }, "f:phase": {} } } },
      );
      const succeeded = await applyStatus({ phase: "Succeeded" });
      assert.equal(succeeded.status, 200, JSON.stringify(succeeded.body));
      assert.deepEqual(succeeded.body.status, { phase: "Succeeded" });
      assert.equal((await call("GET", `${TASKS}/retried`)).body.status.error, undefined);
    });
  });
});
