/**
 * Helpers of the Grafana and alert-rule tests: the metric names the worker and the operator really
 * export (read from their prom-client registries), and the metric names a PromQL expression selects.
 */
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

/** Words of PromQL that are not metric names where an identifier may stand. */
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2", "start", "end"]);

/**
 * The metric names an expression selects (PromQL, with Grafana variables such as `$namespace`,
 * `${datasource}` and `$__rate_interval` allowed; a Grafana `label_values(metric{…}, label)` query
 * gives its metric). Strings, label matchers, ranges, grouping clauses, numbers and durations are
 * removed first; every identifier left that is not a keyword and not called as a function is a
 * metric name. A `{__name__="…"}` selector is not supported: it yields no name.
 */
export function metricNamesIn(expr: string): string[] {
  let s = expr.replace(/\$\{[^}]*\}|\$\w+/g, " ");
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ");
  s = s.replace(/label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)[^)]*\)/g, " $1 ");
  s = s.replace(/\{[^}]*\}/g, " ");
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  s = s.replace(/\boffset\s+-?[0-9][0-9a-z]*/gi, " ");
  s = s.replace(/(^|[^A-Za-z0-9_:.])(0x[0-9a-f]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)(?![A-Za-z0-9_:])/gi, "$1 ");
  const out: string[] = [];
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = m[0];
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (s.slice((m.index ?? 0) + name.length).trimStart().startsWith("(")) continue;
    out.push(name);
  }
  return out;
}
