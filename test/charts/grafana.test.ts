/**
 * The Grafana dashboard and the PrometheusRule the chart ships (charts/celeriac/dashboards/celeriac.json,
 * templates/grafana-dashboard.yaml, templates/prometheusrule.yaml), rendered with the real helm 4:
 * both off by default; on, they render valid YAML, the dashboard ConfigMap carries the sidecar's
 * label and JSON Grafana loads, and every metric a panel, a variable or an alert uses is one the
 * worker or the operator exports (read from their registries); every alert has a `for`, a severity
 * and a summary.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CHART_DIR, HELM, makeHelm, type Helm, type K8sObject } from "./chart-helpers.js";
import { exportedMetricNames, metricNamesIn, promqlErrors } from "./metric-names.js";

const skip = HELM ? false : "helm 4 not available";

/** A Grafana panel (rows hold their collapsed panels in `panels`). */
interface Panel {
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Array<{ expr?: string; datasource?: { type?: string; uid?: string } }>;
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  definition?: string;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}
interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const ENABLED = ["grafana.dashboards.enabled=true", "prometheusRule.enabled=true", "metrics.workerPodMonitor.enabled=true", "metrics.serviceMonitor.enabled=true"];

/** Every panel, rows' nested panels included. */
const allPanels = (panels: readonly Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const variableQuery = (v: Variable): string => (typeof v.query === "string" ? v.query : v.query?.query ?? v.definition ?? "");

/** The expressions of a dashboard, each with where it is: every panel target and every query variable. */
function dashboardExpressions(d: Dashboard): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const p of allPanels(d.panels)) for (const t of p.targets ?? []) if (t.expr) out.push([`panel "${p.title}"`, t.expr]);
  for (const v of d.templating.list) if (v.type === "query") out.push([`variable ${v.name}`, variableQuery(v)]);
  return out;
}

/** The expressions that use a metric the components do not export, as `where: name`. */
function unknownMetrics(exprs: ReadonlyArray<[string, string]>, exported: ReadonlySet<string>): string[] {
  return exprs.flatMap(([where, expr]) => metricNamesIn(expr).filter((n) => !exported.has(n)).map((n) => `${where}: ${n}`));
}

describe("when the metric names of a PromQL expression are read", () => {
  it("finds selected metrics and skips functions, labels, grouping, ranges, numbers and Grafana variables", () => {
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.95, sum by (le, queue) (rate(celeriac_task_duration_seconds_bucket{namespace=~"$namespace", queue=~"${queue}"}[$__rate_interval])))'),
      ["celeriac_task_duration_seconds_bucket"],
    );
    assert.deepEqual(metricNamesIn("a_total / on(queue) group_left(x) b offset 5m > bool 1e3 and c[5m:1m]"), ["a_total", "b", "c"]);
    assert.deepEqual(metricNamesIn('label_values(celeriac_queue_backlog{namespace=~"$namespace"}, queue)'), ["celeriac_queue_backlog"]);
  });

  it("finds PromQL syntax errors by Prometheus's grammar, with Grafana variables allowed", () => {
    assert.deepEqual(promqlErrors('sum by (queue) (rate(celeriac_tasks_total{namespace=~"$namespace"}[$__rate_interval])) > $threshold'), []);
    assert.deepEqual(promqlErrors('label_values(celeriac_queue_backlog{namespace=~"$namespace"}, queue)'), []);
    assert.notDeepEqual(promqlErrors("sum(rate(celeriac_tasks_total[5m])"), []);
    assert.notDeepEqual(promqlErrors("rate(celeriac_tasks_total{queue=}[5m])"), []);
  });

  it("reports a panel on a metric nobody exports", async () => {
    const exported = await exportedMetricNames();
    assert.deepEqual(unknownMetrics([["panel \"made up\"", 'sum(rate(celeriac_tasks_total[5m])) / sum(rate(celeriac_made_up_total{queue="x"}[5m]))']], exported), ['panel "made up": celeriac_made_up_total']);
  });
});

describe("when the chart renders the Grafana dashboard and the alert rules", { skip }, () => {
  let helm: Helm;
  let objs: K8sObject[];
  let exported: Set<string>;
  before(async () => {
    helm = makeHelm();
    objs = await helm.render([], ENABLED);
    exported = await exportedMetricNames();
  });
  after(() => helm?.close());

  const dashboardMap = (): K8sObject => objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === "celeriac-dashboard") ?? assert.fail("dashboard ConfigMap rendered");
  const dashboard = (): Dashboard => JSON.parse((dashboardMap().data as Record<string, string>)["celeriac.json"] ?? "") as Dashboard;
  const rules = (): Rule[] => {
    const pr = objs.find((o) => o.kind === "PrometheusRule") ?? assert.fail("PrometheusRule rendered");
    assert.equal(pr.apiVersion, "monitoring.coreos.com/v1");
    return (pr.spec as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
  };

  it("renders none of them with the default values", async () => {
    const d = await helm.render();
    assert.equal(d.find((o) => o.kind === "PrometheusRule" || o.kind === "PodMonitor"), undefined);
    assert.equal(d.find((o) => o.kind === "ConfigMap" && o.metadata.name === "celeriac-dashboard"), undefined);
  });

  it("passes helm lint --strict with them on", async () => {
    const r = await helm.run("lint", "--strict", CHART_DIR, ...ENABLED.flatMap((s) => ["--set", s]));
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  });

  it("ships the dashboard file as it is, in a ConfigMap with the sidecar's label", () => {
    const cm = dashboardMap();
    assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
    assert.equal((cm.data as Record<string, string>)["celeriac.json"], readFileSync(join(CHART_DIR, "dashboards", "celeriac.json"), "utf8").trimEnd());
  });

  it("takes the sidecar's label key and value, namespace and folder annotation from the values", async () => {
    const o = await helm.render([], ["grafana.dashboards.enabled=true", "grafana.dashboards.label=my_dashboards", "grafana.dashboards.labelValue=yes", "grafana.dashboards.namespace=monitoring", "grafana.dashboards.annotations.grafana_folder=Celeriac"]);
    const cm = o.find((x) => x.kind === "ConfigMap" && x.metadata.name === "celeriac-dashboard");
    assert.equal(cm?.metadata.labels?.my_dashboards, "yes");
    assert.equal(cm?.metadata.labels?.grafana_dashboard, undefined);
    assert.equal(cm?.metadata.namespace, "monitoring");
    assert.equal((cm?.metadata as { annotations?: Record<string, string> }).annotations?.grafana_folder, "Celeriac");
  });

  it("is a dashboard Grafana loads: schemaVersion 39 or later, a Prometheus datasource variable every panel uses, namespace and queue variables", () => {
    const d = dashboard();
    assert.ok(d.schemaVersion >= 39, `schemaVersion ${d.schemaVersion}`);
    assert.ok(d.uid && d.title);
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    const ds = vars.get("datasource");
    assert.equal(ds?.type, "datasource");
    assert.equal(ds?.query, "prometheus");
    for (const name of ["namespace", "queue"]) {
      const v = vars.get(name);
      assert.equal(v?.type, "query", name);
      assert.match(variableQuery(v!), new RegExp(`^label_values\\(.*, ${name}\\)$`), name);
    }
    const panels = allPanels(d.panels).filter((p) => p.type !== "row");
    assert.ok(panels.length >= 12, `${panels.length} panels`);
    for (const p of panels) {
      assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has queries`);
      for (const s of [p.datasource, ...p.targets.map((t) => t.datasource)]) assert.deepEqual(s, { type: "prometheus", uid: "${datasource}" }, `panel "${p.title}" datasource`);
    }
  });

  it("draws the figures the platform team asks for", () => {
    const used = new Set(dashboardExpressions(dashboard()).flatMap(([, e]) => metricNamesIn(e)));
    for (const m of [
      "celeriac_queue_backlog", "celeriac_queue_oldest_task_age_seconds", "celeriac_tasks_total", "celeriac_task_duration_seconds_bucket",
      "celeriac_task_queue_wait_seconds_bucket", "celeriac_tasks_in_flight", "celeriac_worker_slots", "celeriac_queue_desired_replicas",
      "celeriac_queue_ready_replicas", "celeriac_schedule_lateness_seconds_bucket", "celeriac_queue_dead_letter_messages",
    ]) assert.ok(used.has(m), `a panel draws ${m}`);
  });

  it("uses in its panels and variables only metrics the worker or the operator exports", () => {
    const exprs = dashboardExpressions(dashboard());
    assert.ok(exprs.length > 0);
    assert.deepEqual(unknownMetrics(exprs, exported), []);
  });

  it("has panels, variables and alerts whose expressions are valid PromQL", () => {
    const exprs: Array<[string, string]> = [...dashboardExpressions(dashboard()), ...rules().map((r): [string, string] => [`alert ${r.alert}`, r.expr])];
    assert.deepEqual(exprs.flatMap(([where, e]) => promqlErrors(e).map((x) => `${where} ${x}`)), []);
  });

  it("uses in its alerts only exported metrics, and every alert has a for, a severity, a summary and a description", () => {
    const rs = rules();
    assert.deepEqual(rs.map((r) => r.alert).sort(), ["CeleriacQueueBacklogGrowing", "CeleriacQueueDeadLettersIncreasing", "CeleriacQueueOldestTaskTooOld", "CeleriacQueueWorkersNotReady"]);
    assert.deepEqual(unknownMetrics(rs.map((r) => [`alert ${r.alert}`, r.expr]), exported), []);
    for (const r of rs) {
      assert.match(r.for ?? "", /^[0-9]+(ms|s|m|h|d)$/, `${r.alert}: for`);
      assert.match(r.labels?.severity ?? "", /^(info|warning|critical)$/, `${r.alert}: severity`);
      assert.ok(r.annotations?.summary, `${r.alert}: summary`);
      assert.ok(r.annotations?.description, `${r.alert}: description`);
      assert.match(r.expr, /by \(namespace, queue\)/, `${r.alert}: one alert per Queue`);
    }
  });

  it("takes thresholds, durations and severities from the values", async () => {
    const o = await helm.render([], ["prometheusRule.enabled=true", "prometheusRule.backlogGrowing.threshold=5000", "prometheusRule.oldestTaskTooOld.thresholdSeconds=120", "prometheusRule.workersNotReady.for=30m", "prometheusRule.workersNotReady.severity=warning", "prometheusRule.additionalAlertLabels.team=platform"]);
    const rs = ((o.find((x) => x.kind === "PrometheusRule")?.spec as { groups: Array<{ rules: Rule[] }> }).groups).flatMap((g) => g.rules);
    const by = new Map(rs.map((r) => [r.alert, r]));
    assert.match(by.get("CeleriacQueueBacklogGrowing")?.expr ?? "", /> 5000$/);
    assert.match(by.get("CeleriacQueueOldestTaskTooOld")?.expr ?? "", /> 120$/);
    assert.equal(by.get("CeleriacQueueWorkersNotReady")?.for, "30m");
    assert.equal(by.get("CeleriacQueueWorkersNotReady")?.labels?.severity, "warning");
    for (const r of rs) assert.equal(r.labels?.team, "platform", `${r.alert}: additional label`);
  });

  it("scrapes the workers with a PodMonitor in every namespace and keeps the operator's namespace label", () => {
    const pm = objs.find((o) => o.kind === "PodMonitor") ?? assert.fail("PodMonitor rendered");
    const spec = pm.spec as { namespaceSelector: { any: boolean }; selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string; path: string }> };
    assert.equal(spec.namespaceSelector.any, true);
    assert.deepEqual(spec.selector.matchLabels, { "app.kubernetes.io/managed-by": "celeriac-operator", "app.kubernetes.io/component": "worker" });
    assert.deepEqual(spec.podMetricsEndpoints.map((e) => [e.port, e.path]), [["http", "/metrics"]]);
    const sm = objs.find((o) => o.kind === "ServiceMonitor") ?? assert.fail("ServiceMonitor rendered");
    assert.equal((sm.spec as { endpoints: Array<{ honorLabels?: boolean }> }).endpoints[0]?.honorLabels, true);
  });
});
