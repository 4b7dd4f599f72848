/**
 * The Workflow examples (examples/workflows/*.yaml, docs/workflows.md) are valid offline and run as
 * documented on the local platform with the example Queue (examples/queue.yaml, the handlers of
 * examples/tasks.ts): the results docs/workflows.md shows are the ones they produce.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { checkManifest } from "../../api/manifest.js";
import type { WorkflowStatus } from "../../api/workflow.js";
import { LOCAL_ONLY, startE2E, type E2E } from "./helpers.js";

const EXAMPLES = fileURLToPath(new URL("../../../examples/", import.meta.url));
const WORKFLOWS = join(EXAMPLES, "workflows");

describe("when the Workflow examples are checked against the CRD", () => {
  const files = readdirSync(WORKFLOWS).filter((f) => f.endsWith(".yaml"));
  it("finds the diamond and the forEach example", () => {
    assert.deepEqual(files.sort(), ["diamond.yaml", "foreach.yaml"]);
  });
  for (const f of files) {
    it(`accepts ${f}`, () => {
      for (const doc of parseAllDocuments(readFileSync(join(WORKFLOWS, f), "utf8"))) {
        const obj = doc.toJS() as Record<string, unknown>;
        assert.equal(obj.kind, "Workflow");
        const r = checkManifest(obj);
        assert.deepEqual(r.causes, [], JSON.stringify(r.causes));
        assert.deepEqual(r.unknownFields, []);
      }
    });
  }
});

describe("when the Workflow examples are applied to the local platform", { timeout: 120_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
  });
  after(() => e?.stop());

  it("runs both to Succeeded with the results docs/workflows.md shows", async () => {
    const r = await e.kubectl(["apply", "-f", join(EXAMPLES, "queue.yaml"), "-f", join(WORKFLOWS, "diamond.yaml"), "-f", join(WORKFLOWS, "foreach.yaml")]);
    assert.equal(r.code, 0, r.stderr);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "workflow/sales-etl", "workflow/quarterly-reports", "--timeout=90s"]);
    assert.equal(w.code, 0, `${w.stderr}\n${(await e.kubectl(["get", "workflows", "-o", "yaml"])).stdout}`);
    const get = async (name: string) => (JSON.parse((await e.kubectl(["get", "workflow", name, "-o", "json"])).stdout) as { status: WorkflowStatus }).status;
    const etl = await get("sales-etl");
    assert.deepEqual(etl.result, { rowsIn: 20, rowsKept: 18, total: 1042, keptTotal: 1044, top: { id: 9, region: "north", amount: 106 } });
    assert.equal(etl.progress, "4/4");
    const reports = await get("quarterly-reports");
    assert.deepEqual(reports.result, { months: 3, rows: 15000, urls: ["s3://reports/2026-09.pdf", "s3://reports/2026-10.pdf", "s3://reports/2026-11.pdf"] });
    assert.deepEqual(reports.steps?.find((s) => s.name === "reports")?.tasks, { total: 3, succeeded: 3, failed: 0, running: 0 });
    assert.equal(reports.onExit?.phase, "Succeeded");
    // parallelism 2: the third report (500 ms each) starts only after one of the first two finished
    const step = reports.steps!.find((s) => s.name === "reports")!;
    assert.ok(Date.parse(step.completionTime!) - Date.parse(step.startTime!) >= 1000, `3 reports of 0.5 s, 2 at a time, took ${step.startTime} → ${step.completionTime}`);
  });
});
