/**
 * How the operations commands (`celeriac tasks`, `celeriac dlq`, …) print: `-o table` (the default,
 * kubectl's layout: upper-case headers, columns padded by three spaces, `<none>` for an empty
 * cell), `-o json` or `-o yaml` (the objects themselves, stable field names documented with each
 * command in docs/cli.md, for scripts). One list of items is printed as `{"items": [...]}` in
 * json/yaml, as kubectl's `List` is; one item (`get`, `show`) as the object itself.
 */
import type { Command } from "commander";
import { stringify } from "yaml";

/** The `-o` formats. */
export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
/** An `-o` format. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A table column: its header and how to get the cell's text from an item. */
export interface Column<T> {
  header: string;
  cell(item: T): string | number | undefined;
}

/**
 * Parses an `-o` value.
 * @throws Error naming the value and the formats that exist (`-o wide` → "use one of table, json, yaml")
 */
export function outputFormat(value: string | undefined): OutputFormat {
  const v = value ?? "table";
  if ((OUTPUT_FORMATS as readonly string[]).includes(v)) return v as OutputFormat;
  throw new Error(`-o ${v}: unknown output format: use one of ${OUTPUT_FORMATS.join(", ")}`);
}

/** Renders rows as a kubectl-style table (no trailing spaces). Pure. */
export function renderTable<T>(items: readonly T[], columns: ReadonlyArray<Column<T>>): string {
  const rows = [columns.map((c) => c.header.toUpperCase()), ...items.map((it) => columns.map((c) => {
    const v = c.cell(it);
    return v === undefined || v === "" ? "<none>" : String(v);
  }))];
  const widths = columns.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]! + 3))).join("")).join("\n");
}

/**
 * Renders a list in `format`: a table of `columns`, or `{"items": [...]}` as JSON (2-space indent) or YAML.
 * @returns the text, ending in a newline
 */
export function renderList<T>(items: readonly T[], columns: ReadonlyArray<Column<T>>, format: OutputFormat): string {
  if (format === "json") return `${JSON.stringify({ items }, null, 2)}\n`;
  if (format === "yaml") return stringify({ items }, { lineWidth: 0 });
  return `${renderTable(items, columns)}\n`;
}

/**
 * Renders one object in `format`: `table` gives `table(item)` (a command's own layout), json/yaml
 * the object itself.
 * @returns the text, ending in a newline
 */
export function renderOne<T>(item: T, format: OutputFormat, table: (item: T) => string): string {
  if (format === "json") return `${JSON.stringify(item, null, 2)}\n`;
  if (format === "yaml") return stringify(item, { lineWidth: 0 });
  const t = table(item);
  return t.endsWith("\n") ? t : `${t}\n`;
}

/**
 * Adds the flags every operations command takes: `-n/--namespace`, `--queue` (its help text given,
 * as commands differ on a missing queue), `--nats`, `--dev-dir` and `-o/--output`.
 * @returns the same command, for chaining
 */
export function opsFlags(c: Command, queueHelp = "queue [CELERIAC_QUEUE]"): Command {
  return c
    .option("-n, --namespace <ns>", "namespace (default: CELERIAC_NAMESPACE, else the kubeconfig context's, else default)")
    .option("--queue <q>", queueHelp)
    .option("--nats <url>", "NATS URL(s) [CELERIAC_NATS_URL] (default: the NATS of a running `celeriac dev up`, else nats://127.0.0.1:4222)")
    .option("--dev-dir <dir>", "state directory of `celeriac dev up` to find NATS in", ".celeriac")
    .option("-o, --output <format>", "output format: table, json or yaml", "table");
}
