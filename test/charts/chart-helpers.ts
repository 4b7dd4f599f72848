/**
 * Helpers of the chart tests: the real helm 4 binary with its cache, config and data homes in a temp
 * directory, rendering `charts/celeriac` into parsed objects, and the Pod Security Standards
 * "restricted" checks every rendered pod template must pass.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { V1Container, V1PodSpec, V1PodTemplateSpec } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";

/** Repository root (tests run from `dist/test/charts`). */
export const REPO_ROOT = resolve(import.meta.dirname, "..", "..", "..");
/** The chart under test. */
export const CHART_DIR = join(REPO_ROOT, "charts", "celeriac");
/** Value sets the tests render and install (`test/fixtures/charts/*.yaml`). */
export const VALUES_DIR = join(REPO_ROOT, "test", "fixtures", "charts");
/** The value sets that must lint, render and install; `invalid-*.yaml` must be refused. */
export const VALID_VALUE_SETS = ["nats-deploy.yaml", "ha.yaml", "namespaced.yaml", "existing-nats.yaml"] as const;

/** A rendered Kubernetes object. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  rules?: Array<{ apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }>;
  [key: string]: unknown;
}

/** Real helm 4 with private homes; `close()` removes them. */
export interface Helm {
  /** Temp directory owned by this instance (homes, kubeconfig, kubectl cache). */
  dir: string;
  /** Environment every helm and kubectl call gets. */
  env: Record<string, string>;
  /** Runs helm (never throws on a non-zero exit). */
  run(...args: string[]): Promise<ToolRun>;
  /** `helm template` of the chart with value files (names in {@link VALUES_DIR}) and `--set`s; throws with helm's stderr on failure. */
  render(valueFiles?: readonly string[], sets?: readonly string[], namespace?: string): Promise<K8sObject[]>;
  close(): void;
}

/** Path of helm 4, or undefined when it is unavailable (tests skip with a reason). */
export const HELM = k8sTools().helm4;

/**
 * Creates a helm runner with its own temp homes.
 * @throws Error when helm 4 is unavailable
 */
export function makeHelm(prefix = "celeriac-chart-"): Helm {
  if (!HELM) throw new Error("helm 4 is not available");
  const helmBin = HELM;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const env = {
    HELM_CACHE_HOME: join(dir, "helm-cache"),
    HELM_CONFIG_HOME: join(dir, "helm-config"),
    HELM_DATA_HOME: join(dir, "helm-data"),
    KUBECACHEDIR: join(dir, "kube-cache"),
  };
  const run = (...args: string[]): Promise<ToolRun> => runTool(helmBin, args, env, 60_000);
  return {
    dir,
    env,
    run,
    async render(valueFiles = [], sets = [], namespace = "celeriac") {
      const args = ["template", "celeriac", CHART_DIR, "--namespace", namespace];
      for (const f of valueFiles) args.push("-f", join(VALUES_DIR, f));
      for (const s of sets) args.push("--set", s);
      const r = await run(...args);
      if (r.code !== 0) throw new Error(`helm template ${valueFiles.join(" ")} ${sets.join(" ")}: ${r.stderr}`);
      return parseObjects(r.stdout);
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Parses a multi-document YAML stream into objects, skipping empty documents. */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`parse rendered YAML: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === "object");
}

/** Every pod template among the objects, labelled `Kind/name`. */
export function podTemplatesOf(objects: readonly K8sObject[]): Array<[string, V1PodTemplateSpec]> {
  const out: Array<[string, V1PodTemplateSpec]> = [];
  for (const o of objects) {
    const spec = o.spec as { template?: V1PodTemplateSpec; jobTemplate?: { spec?: { template?: V1PodTemplateSpec } } } | undefined;
    const tpl = spec?.template ?? spec?.jobTemplate?.spec?.template;
    if (tpl) out.push([`${o.kind}/${o.metadata.name}`, tpl]);
    if (o.kind === "Pod") out.push([`Pod/${o.metadata.name}`, { metadata: o.metadata, spec: o.spec as unknown as V1PodSpec }]);
  }
  return out;
}

/**
 * Asserts the Pod Security Standards "restricted" profile on a pod spec: runAsNonRoot and a
 * RuntimeDefault (or Localhost) seccomp profile on the pod (or on every container), and on every
 * container and init container allowPrivilegeEscalation false, capabilities drop ALL (adding back at
 * most NET_BIND_SERVICE), not privileged, no runAsUser 0, no host namespaces, ports or hostPath.
 * Also asserts a read-only root filesystem, which "restricted" does not require but our images allow.
 */
export function assertRestricted(spec: V1PodSpec | undefined, where: string): void {
  assert.ok(spec, `${where}: no pod spec`);
  const pod = spec.securityContext ?? {};
  for (const k of ["hostNetwork", "hostPID", "hostIPC"] as const) assert.notEqual(spec[k], true, `${where}: ${k}`);
  for (const v of spec.volumes ?? []) assert.equal(v.hostPath, undefined, `${where}: hostPath volume ${v.name}`);
  assert.notEqual(pod.runAsUser, 0, `${where}: pod runAsUser 0`);
  const containers: V1Container[] = [...(spec.containers ?? []), ...(spec.initContainers ?? [])];
  assert.ok(containers.length > 0, `${where}: no containers`);
  for (const c of containers) {
    const at = `${where} container ${c.name}`;
    const sc = c.securityContext ?? {};
    assert.equal(sc.runAsNonRoot ?? pod.runAsNonRoot, true, `${at}: runAsNonRoot`);
    assert.notEqual(sc.runAsUser ?? pod.runAsUser, 0, `${at}: runAsUser 0`);
    const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
    assert.ok(seccomp === "RuntimeDefault" || seccomp === "Localhost", `${at}: seccompProfile ${seccomp}`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${at}: allowPrivilegeEscalation`);
    assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${at}: capabilities drop ALL`);
    assert.ok((sc.capabilities?.add ?? []).every((cap) => cap === "NET_BIND_SERVICE"), `${at}: added capabilities`);
    assert.notEqual(sc.privileged, true, `${at}: privileged`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${at}: readOnlyRootFilesystem`);
    for (const p of c.ports ?? []) assert.ok(!p.hostPort, `${at}: hostPort ${p.hostPort}`);
  }
}
