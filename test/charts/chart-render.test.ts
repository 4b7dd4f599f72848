/**
 * The Helm chart `charts/celeriac`, rendered with the real helm 4: lint and template for the default
 * values and every value set in `test/fixtures/charts/`, what each set renders, the values schema
 * refusing wrong types and typos, the chart's CRDs matching `crds/`, and the Pod Security Standards
 * "restricted" profile on every pod template — the chart's own and the worker pods the operator
 * renders from the settings the chart gives it.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Deployment, V1EnvVar, V1StatefulSet } from "@kubernetes/client-node";
import { operatorConfigFrom } from "../../operator/config.js";
import { desiredWorkerDeployment } from "../../operator/queue/desired-workers.js";
import { queueWith } from "../operator/queue/fixtures.js";
import { assertRestricted, CHART_DIR, HELM, makeHelm, podTemplatesOf, REPO_ROOT, VALID_VALUE_SETS, VALUES_DIR, type Helm, type K8sObject } from "./chart-helpers.js";

const skip = HELM ? false : "helm 4 not available";


const find = (objs: readonly K8sObject[], kind: string, name?: string): K8sObject | undefined =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const all = (objs: readonly K8sObject[], kind: string): K8sObject[] => objs.filter((o) => o.kind === kind);
const operatorOf = (objs: readonly K8sObject[]): V1Deployment => {
  const d = find(objs, "Deployment", "celeriac");
  assert.ok(d, "the operator Deployment celeriac is rendered");
  return d as unknown as V1Deployment;
};
const envOf = (d: V1Deployment): Map<string, V1EnvVar> => new Map((d.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e]));
const envValue = (d: V1Deployment, name: string): string | undefined => envOf(d).get(name)?.value;

describe("when the chart is linted and rendered", { skip }, () => {
  let helm: Helm;
  const rendered = new Map<string, K8sObject[]>();
  before(async () => {
    helm = makeHelm();
    for (const set of ["default", ...VALID_VALUE_SETS]) rendered.set(set, await helm.render(set === "default" ? [] : [set]));
  });
  after(() => helm?.close());
  const objs = (set: string): K8sObject[] => rendered.get(set) ?? assert.fail(`${set} not rendered`);

  it("passes helm lint --strict with the default values and every value set", async () => {
    for (const set of ["default", ...VALID_VALUE_SETS]) {
      const r = await helm.run("lint", "--strict", CHART_DIR, ...(set === "default" ? [] : ["-f", join(VALUES_DIR, set)]));
      assert.equal(r.code, 0, `helm lint with ${set}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it("renders the operator Deployment with leader election, probes, resources and the pod's name and namespace", () => {
    const d = operatorOf(objs("default"));
    const c = d.spec?.template.spec?.containers[0];
    assert.equal(d.spec?.replicas, 1);
    assert.deepEqual(c?.args, ["operator", "--leader-elect"]);
    assert.equal(c?.image, "ghcr.io/celeriac/operator:0.1.0");
    assert.deepEqual(c?.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(c?.livenessProbe?.httpGet, { path: "/healthz", port: "http" });
    assert.deepEqual(c?.readinessProbe?.httpGet, { path: "/readyz", port: "http" });
    assert.ok(c?.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory);
    const env = envOf(d);
    assert.equal(env.get("POD_NAME")?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
    assert.equal(env.get("POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath, "metadata.namespace");
    assert.equal(envValue(d, "CELERIAC_PORT"), "8080");
    assert.equal(envValue(d, "CELERIAC_LEASE_NAMESPACE"), "celeriac");
    assert.equal(envValue(d, "CELERIAC_NATS_URL"), "nats://nats.celeriac.svc:4222");
    assert.equal(envValue(d, "CELERIAC_WATCH_NAMESPACES"), undefined);
    assert.equal(d.spec?.template.spec?.serviceAccountName, "celeriac");
    assert.ok(find(objs("default"), "ServiceAccount", "celeriac"));
    assert.ok(find(objs("default"), "ClusterRole", "celeriac"));
    assert.ok(find(objs("default"), "ClusterRoleBinding", "celeriac"));
    assert.equal(find(objs("default"), "PodDisruptionBudget"), undefined, "no PDB for one replica");
    assert.equal(find(objs("default"), "ServiceMonitor"), undefined);
    assert.equal(find(objs("default"), "StatefulSet"), undefined);
  });

  it("exposes /metrics through a Service selecting the operator pods", () => {
    const d = operatorOf(objs("default"));
    const svc = find(objs("default"), "Service", "celeriac-metrics");
    const spec = svc?.spec as { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> };
    assert.deepEqual(spec.ports.map((p) => [p.name, p.targetPort]), [["http", "http"]]);
    for (const [k, v] of Object.entries(spec.selector)) assert.equal(d.spec?.template.metadata?.labels?.[k], v, `pod label ${k}`);
  });

  it("renders a PodDisruptionBudget and a ServiceMonitor for two replicas (ha.yaml)", () => {
    const o = objs("ha.yaml");
    const d = operatorOf(o);
    assert.equal(d.spec?.replicas, 2);
    const pdb = find(o, "PodDisruptionBudget", "celeriac")?.spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(pdb.minAvailable, 1);
    assert.deepEqual(pdb.selector.matchLabels, d.spec?.selector.matchLabels);
    const sm = find(o, "ServiceMonitor", "celeriac");
    assert.equal(sm?.metadata.labels?.release, "prometheus");
    const smSpec = sm?.spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string; interval: string }> };
    const svcLabels = find(o, "Service", "celeriac-metrics")?.metadata.labels ?? {};
    for (const [k, v] of Object.entries(smSpec.selector.matchLabels)) assert.equal(svcLabels[k], v, `metrics Service label ${k}`);
    assert.deepEqual(smSpec.endpoints.map((e) => [e.port, e.path, e.interval]), [["http", "/metrics", "15s"]]);
    assert.ok(d.spec?.template.spec?.affinity?.podAntiAffinity, "replicas spread over nodes");
  });

  it("deploys a single-node JetStream NATS with a PVC and points the operator and workers at it (nats-deploy.yaml)", () => {
    const o = objs("nats-deploy.yaml");
    const sts = find(o, "StatefulSet", "celeriac-nats") as unknown as V1StatefulSet;
    assert.ok(sts, "the NATS StatefulSet is rendered");
    assert.equal(sts.spec?.replicas, 1);
    const c = sts.spec?.template.spec?.containers[0];
    assert.equal(c?.image, "nats:2.10-alpine");
    const args = (c?.args ?? []).join(" ");
    assert.match(args, /(^| )-js( |$)/);
    assert.match(args, /-sd \/data/);
    assert.deepEqual(c?.volumeMounts, [{ name: "data", mountPath: "/data" }, { name: "config", mountPath: "/etc/nats", readOnly: true }]);
    const claim = sts.spec?.volumeClaimTemplates?.[0];
    assert.equal(claim?.metadata?.name, "data");
    assert.equal(claim?.spec?.resources?.requests?.storage, "5Gi");
    assert.equal(claim?.spec?.storageClassName, "standard");
    const svc = find(o, "Service", "celeriac-nats")?.spec as { ports: Array<{ name: string; port: number }>; selector: Record<string, string> };
    assert.deepEqual(svc.ports.map((p) => [p.name, p.port]), [["client", 4222], ["monitor", 8222]]);
    for (const [k, v] of Object.entries(svc.selector)) assert.equal(sts.spec?.template.metadata?.labels?.[k], v);
    const d = operatorOf(o);
    assert.equal(envValue(d, "CELERIAC_NATS_URL"), "nats://celeriac-nats.celeriac.svc:4222");
    assert.equal(envValue(d, "CELERIAC_WORKER_NATS_URL"), "nats://celeriac-nats.celeriac.svc:4222");
  });

  it("renders only Roles in the watched namespaces and sets CELERIAC_WATCH_NAMESPACES (namespaced.yaml)", () => {
    const o = objs("namespaced.yaml");
    assert.deepEqual(all(o, "ClusterRole"), []);
    assert.deepEqual(all(o, "ClusterRoleBinding"), []);
    const roles = all(o, "Role").map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort();
    assert.deepEqual(roles, ["celeriac/celeriac-leader-election", "team-a/celeriac", "team-b/celeriac"]);
    for (const rb of all(o, "RoleBinding")) {
      assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: "celeriac", namespace: "celeriac" }]);
    }
    assert.equal(envValue(operatorOf(o), "CELERIAC_WATCH_NAMESPACES"), "team-a,team-b");
  });

  it("takes NATS credentials, user/password and the TLS CA from Secrets, by reference only (existing-nats.yaml)", () => {
    const o = objs("existing-nats.yaml");
    const d = operatorOf(o);
    const env = envOf(d);
    assert.equal(envValue(d, "CELERIAC_NATS_URL"), "tls://nats-0.nats.nats.svc:4222,tls://nats-1.nats.nats.svc:4222,tls://nats-2.nats.nats.svc:4222");
    assert.equal(envValue(d, "CELERIAC_WORKER_NATS_URL"), "tls://nats.nats.svc.cluster.local:4222");
    assert.equal(envValue(d, "CELERIAC_NATS_CREDS"), "/var/run/secrets/celeriac.io/nats-creds/nats.creds");
    assert.equal(envValue(d, "CELERIAC_NATS_CREDS_SECRET"), "celeriac-nats-creds/celeriac.creds");
    assert.deepEqual(env.get("CELERIAC_NATS_USER")?.valueFrom?.secretKeyRef, { name: "celeriac-nats-user", key: "username" });
    assert.deepEqual(env.get("CELERIAC_NATS_PASSWORD")?.valueFrom?.secretKeyRef, { name: "celeriac-nats-user", key: "password" });
    assert.equal(envValue(d, "CELERIAC_NATS_USER_SECRET"), "celeriac-nats-user/username/password");
    assert.equal(envValue(d, "CELERIAC_NATS_TLS_CA"), "/var/run/secrets/celeriac.io/nats-tls-ca/ca.crt");
    assert.equal(envValue(d, "CELERIAC_NATS_TLS_CA_SECRET"), "nats-ca/ca.crt");
    assert.equal(envValue(d, "CELERIAC_WORKER_IMAGE"), "registry.example.com/tasks:2.3.1");
    const pod = d.spec?.template.spec;
    const vols = new Map((pod?.volumes ?? []).map((v) => [v.name, v]));
    assert.deepEqual(vols.get("nats-creds")?.secret, { secretName: "celeriac-nats-creds", items: [{ key: "celeriac.creds", path: "nats.creds" }] });
    assert.deepEqual(vols.get("nats-tls-ca")?.secret, { secretName: "nats-ca", items: [{ key: "ca.crt", path: "ca.crt" }] });
    const mounts = pod?.containers[0]?.volumeMounts ?? [];
    assert.ok(mounts.some((m) => m.name === "nats-creds" && m.mountPath === "/var/run/secrets/celeriac.io/nats-creds" && m.readOnly));
    assert.ok(mounts.some((m) => m.name === "nats-tls-ca" && m.mountPath === "/var/run/secrets/celeriac.io/nats-tls-ca" && m.readOnly));
    assert.equal(pod?.containers[0]?.image, `ghcr.io/celeriac/operator@sha256:${"0".repeat(64)}`);
    assert.deepEqual(all(o, "Secret"), [], "the chart never renders a Secret");
  });

  it("gives the operator only settings it parses, and the worker pods it renders from them are restricted", () => {
    const sources = ["operator/config.ts", "nats/connection.ts", "cli/commands/operator.ts"].map((f) => readFileSync(join(REPO_ROOT, f), "utf8")).join("\n");
    for (const set of ["default", ...VALID_VALUE_SETS]) {
      const d = operatorOf(objs(set));
      const env: NodeJS.ProcessEnv = {};
      for (const [name, e] of envOf(d)) {
        // CELERIAC_WORKER_OTEL_<X> are read by prefix (passed to workers as OTEL_<X>)
        if (name.startsWith("CELERIAC_WORKER_OTEL_")) assert.ok(sources.includes(`"CELERIAC_WORKER_OTEL_"`), `${set}: the operator never reads ${name}`);
        else if (name.startsWith("CELERIAC_")) assert.ok(sources.includes(`env.${name}`), `${set}: the operator never reads ${name}`);
        env[name] = e.value ?? `from-${name.toLowerCase()}`;
      }
      const config = operatorConfigFrom({ leaderElect: d.spec?.template.spec?.containers[0]?.args?.includes("--leader-elect") ?? false }, env);
      assert.equal(config.leaderElect, true);
      assert.equal(config.port, 8080);
      const workers = desiredWorkerDeployment(queueWith({}), { nats: config.workerNats, workerImage: config.workerImage, defaultEnv: config.workerOtelEnv });
      assertRestricted(workers.spec?.template.spec, `${set}: worker Deployment ${workers.metadata?.name}`);
      const json = JSON.stringify(workers);
      assert.ok(!json.includes("from-celeriac_nats_password") && !json.includes("from-celeriac_nats_user"), `${set}: no credential value copied into worker pods`);
    }
  });

  it("exports traces from the operator and its workers with tracing.otlpEndpoint, and not by default", () => {
    const endpoint = "http://otel-collector.observability:4318";
    const d = operatorOf(objs("ha.yaml"));
    assert.equal(envValue(d, "OTEL_EXPORTER_OTLP_ENDPOINT"), endpoint);
    assert.equal(envValue(d, "OTEL_TRACES_SAMPLER"), "parentbased_traceidratio");
    assert.equal(envValue(d, "OTEL_TRACES_SAMPLER_ARG"), "0.1");
    const env = Object.fromEntries([...envOf(d)].map(([k, e]) => [k, e.value ?? ""]));
    const config = operatorConfigFrom({}, env);
    assert.deepEqual(config.workerOtelEnv, { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" });
    const workerEnv = (q: Parameters<typeof queueWith>[0]) => new Map((desiredWorkerDeployment(queueWith(q), { nats: config.workerNats, workerImage: config.workerImage, defaultEnv: config.workerOtelEnv }).spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(workerEnv({}).get("OTEL_EXPORTER_OTLP_ENDPOINT"), endpoint);
    // a Queue's own value wins
    const own = workerEnv({ worker: { env: [{ name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://mine:4318" }] } } as Parameters<typeof queueWith>[0]);
    assert.equal(own.get("OTEL_EXPORTER_OTLP_ENDPOINT"), "http://mine:4318");
    assert.equal(own.get("OTEL_TRACES_SAMPLER_ARG"), "0.1");
    for (const set of ["default", "nats-deploy.yaml", "namespaced.yaml", "existing-nats.yaml"]) {
      assert.ok(![...envOf(operatorOf(objs(set))).keys()].some((k) => k.includes("OTEL_")), `${set}: no OTEL_* env without tracing.otlpEndpoint`);
    }
  });

  it("meets the restricted Pod Security Standard on every pod template it renders", () => {
    let templates = 0;
    for (const [set, o] of rendered) {
      for (const [where, tpl] of podTemplatesOf(o)) {
        assertRestricted(tpl.spec, `${set}: ${where}`);
        templates++;
      }
    }
    // 5 operator Deployments + the NATS StatefulSets of nats-deploy.yaml and namespaced.yaml
    assert.equal(templates, 7);
  });
});

describe("when values break the schema or contradict each other", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm();
  });
  after(() => helm?.close());

  const refused = async (args: string[], message: RegExp): Promise<void> => {
    const r = await helm.run("template", "celeriac", CHART_DIR, ...args);
    assert.notEqual(r.code, 0, `accepted: ${args.join(" ")}`);
    assert.match(r.stderr, message);
  };

  it("refuses a wrong type and names the field (replicas: \"two\")", async () => {
    await refused(["-f", join(VALUES_DIR, "invalid-replicas-type.yaml")], /at '\/replicas': got string, want integer/);
  });

  it("refuses a misspelt key and names it", async () => {
    await refused(["-f", join(VALUES_DIR, "invalid-typo.yaml")], /additional properties 'replica' not allowed/);
  });

  it("refuses nested mistakes with the path of the field", async () => {
    await refused(["--set", "nats.deploy=yes"], /at '\/nats\/deploy': got string, want boolean/);
    await refused(["--set", "nats.url=http://nats:4222"], /\/nats\/url/);
    await refused(["--set", "watchNamespaces[0]=Team_A"], /\/watchNamespaces\/0/);
    await refused(["--set", "metrics.serviceMonitor.enabld=true"], /additional properties 'enabld' not allowed/);
  });

  it("refuses two replicas without leader election, and nats.deploy together with nats.url", async () => {
    await refused(["--set", "replicas=2", "--set", "leaderElect=false"], /replicas > 1 needs leaderElect: true/);
    await refused(["--set", "nats.deploy=true", "--set", "nats.url=nats://x:4222"], /either nats.deploy .* or nats.url/);
  });
});

describe("when the chart's CRDs are compared with crds/", () => {
  it("holds byte-identical copies of every generated CRD", () => {
    const repo = readdirSync(join(REPO_ROOT, "crds")).filter((f) => f.endsWith(".yaml")).sort();
    const chart = readdirSync(join(CHART_DIR, "crds")).sort();
    assert.deepEqual(chart, repo, "the chart's crds/ lists the same files (copy crds/*.yaml to charts/celeriac/crds/ after npm run generate)");
    for (const f of repo) {
      assert.ok(readFileSync(join(CHART_DIR, "crds", f)).equals(readFileSync(join(REPO_ROOT, "crds", f))), `charts/celeriac/crds/${f} differs from crds/${f}: copy it again`);
    }
  });
});
