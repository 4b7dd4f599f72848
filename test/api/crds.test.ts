import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ALL_CRDS } from "../../api/crd.js";
import { checkManifest } from "../../api/manifest.js";
import { checkStructural, type JSONSchemaProps } from "../../api/validation.js";
import { generatedFiles } from "../../scripts/generate.js";

const root = join(import.meta.dirname, "..", "..", "..");

function fieldsWithoutDescription(s: JSONSchemaProps, path: string, out: string[]): void {
  if (!s.description) out.push(path);
  for (const [k, sub] of Object.entries((s.properties ?? {}) as Record<string, JSONSchemaProps>)) {
    if (path === "" && (k === "metadata")) continue;
    fieldsWithoutDescription(sub, path ? `${path}.${k}` : k, out);
  }
  const items = s.items as JSONSchemaProps | undefined;
  if (items?.properties) for (const [k, sub] of Object.entries(items.properties as Record<string, JSONSchemaProps>)) fieldsWithoutDescription(sub, `${path}[].${k}`, out);
}

describe("when the CRDs are generated from the schemas", () => {
  it("matches the committed crds/ and docs/api.md (run npm run generate when this fails)", () => {
    for (const [rel, content] of generatedFiles()) {
      assert.equal(readFileSync(join(root, rel), "utf8"), content, `${rel} is stale: run npm run generate`);
    }
  });
  it("refuses, as kube-apiserver does, schema keywords a CRD cannot use (patternProperties: what TypeBox's Type.Record emits)", () => {
    const schema = { type: "object", properties: { spec: { type: "object", properties: { weights: { type: "object", patternProperties: { "^.*$": { type: "integer" } } } } } } } as unknown as JSONSchemaProps;
    assert.deepEqual(checkStructural(schema, "s"), [
      { reason: "FieldValueForbidden", field: "s.properties[spec].properties[weights].patternProperties", message: "Forbidden: patternProperties is not supported" },
    ]);
  });
  for (const { crd } of ALL_CRDS) {
    const v = crd.spec.versions[0]!;
    it(`gives ${crd.spec.names.kind} a structural schema`, () => {
      assert.deepEqual(checkStructural(v.schema.openAPIV3Schema, "spec.validation.openAPIV3Schema"), []);
    });
    it(`describes every ${crd.spec.names.kind} field for kubectl explain`, () => {
      const missing: string[] = [];
      fieldsWithoutDescription(v.schema.openAPIV3Schema, "", missing);
      assert.deepEqual(missing, []);
    });
    it(`makes ${crd.spec.names.kind} namespaced, with status subresource and category celeriac`, () => {
      assert.equal(crd.spec.scope, "Namespaced");
      assert.deepEqual(v.subresources, { status: {} });
      assert.ok(crd.spec.names.categories.includes("celeriac"));
      assert.ok(v.additionalPrinterColumns.length >= 4);
    });
  }
});

describe("when the examples are checked against the CRDs", () => {
  const dir = join(root, "examples");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  it("finds a Queue, Tasks and a Schedule", () => {
    const kinds = new Set(files.flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => (d.toJS() as { kind: string }).kind)));
    assert.deepEqual([...kinds].sort(), ["Queue", "Schedule", "Task"]);
  });
  for (const f of files) {
    it(`accepts ${f}`, () => {
      for (const doc of parseAllDocuments(readFileSync(join(dir, f), "utf8"))) {
        const r = checkManifest(doc.toJS() as Record<string, unknown>);
        assert.deepEqual(r.causes, [], JSON.stringify(r.causes));
        assert.deepEqual(r.unknownFields, []);
      }
    });
  }
});
