/**
 * Helpers of the Grafana and alert-rule tests: the metric names the worker and the operator really
 * export (read from their prom-client registries), and the metric names a PromQL expression selects
 * and its syntax errors, both by Prometheus's own PromQL grammar (`@prometheus-io/lezer-promql`).
 */
import { parser } from "@prometheus-io/lezer-promql";
import { createOperatorMetrics } from "../../operator/metrics.js";
import { createWorkerMetrics } from "../../worker/metrics.js";

/**
 * Every series name the worker and the operator export, Node's default process metrics included:
 * each metric's name, plus `_bucket`, `_sum` and `_count` for a histogram and `_sum`, `_count` for
 * a summary (prom-client counters already end in `_total`).
 */
export async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [createWorkerMetrics(true).registry, createOperatorMetrics(true).registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      const type = String(m.type);
      if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
      if (type === "summary") for (const s of ["_sum", "_count"]) names.add(m.name + s);
    }
  }
  return names;
}

/**
 * A PromQL expression with Grafana's variables made parseable: `$__rate_interval`, `$__interval`
 * and the like (durations in Grafana) become `5m`, every other `$var` / `${var…}` becomes `1` (they
 * stand in label values, strings or numbers); a Grafana `label_values(metric{…}, label)` query is
 * reduced to its selector.
 */
function promqlOf(expr: string): string {
  const lv = /^\s*label_values\(\s*(.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/s.exec(expr);
  const e = lv ? lv[1]! : expr;
  return e.replace(/\$__\w+|\$\{__[^}]*\}/g, "5m").replace(/\$\{[^}]*\}|\$\w+/g, "1");
}

/**
 * Where an expression is not valid PromQL, by Prometheus's own grammar (`@prometheus-io/lezer-promql`,
 * the parser of the Prometheus UI), with Grafana variables allowed as in {@link promqlOf}: each
 * error as `at <offset>: <text around it>`; empty when it parses.
 */
export function promqlErrors(expr: string): string[] {
  const e = promqlOf(expr);
  const out: string[] = [];
  const c = parser.parse(e).cursor();
  do if (c.type.isError) out.push(`at ${c.from}: ${JSON.stringify(e.slice(Math.max(0, c.from - 20), c.from + 20))}`);
  while (c.next());
  return out;
}

/**
 * The metric names an expression selects, read from its Prometheus parse tree (every
 * `VectorSelector`'s metric identifier), with Grafana variables allowed as in {@link promqlOf}. A
 * `{__name__="…"}` selector is not supported: it yields no name.
 */
export function metricNamesIn(expr: string): string[] {
  const e = promqlOf(expr);
  const out: string[] = [];
  const c = parser.parse(e).cursor();
  do {
    if (c.type.name === "VectorSelector") {
      const sel = c.node.getChild("Identifier");
      if (sel) out.push(e.slice(sel.from, sel.to));
    }
  } while (c.next());
  return out;
}
