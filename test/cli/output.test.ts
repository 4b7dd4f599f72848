/** The operations commands' output (cli/output.ts): kubectl-style tables, json/yaml lists, format names. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { outputFormat, renderList, renderOne, renderTable } from "../../cli/output.js";

const cols = [{ header: "Id", cell: (x: { id: string; n?: number }) => x.id }, { header: "n", cell: (x: { id: string; n?: number }) => x.n }];

describe("cli output", () => {
  it("pads columns by three spaces under upper-case headers, <none> for an empty cell, no trailing space", () => {
    assert.equal(renderTable([{ id: "a", n: 1 }, { id: "long-id" }], cols), "ID        N\na         1\nlong-id   <none>");
  });
  it("prints a list as {items} in json and yaml, one object as itself", () => {
    const items = [{ id: "a", n: 1 }];
    assert.deepEqual(JSON.parse(renderList(items, cols, "json")), { items });
    assert.deepEqual(parse(renderList(items, cols, "yaml")), { items });
    assert.deepEqual(JSON.parse(renderOne(items[0], "json", () => "x")), items[0]);
    assert.equal(renderOne(items[0], "table", () => "x"), "x\n");
  });
  it("refuses an unknown -o value, saying which exist", () => {
    assert.equal(outputFormat(undefined), "table");
    assert.throws(() => outputFormat("wide"), /-o wide: unknown output format: use one of table, json, yaml/);
  });
});
