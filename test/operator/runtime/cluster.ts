/** Test helper: an in-memory API server in a temp dir, a KubeConfig for it, and the Celeriac CRDs. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import type { KubeConfig } from "@kubernetes/client-node";
import { CELERIAC_TYPES } from "../../../api/objects.js";
import { startApiServer, type ApiServer, type ApiServerOptions } from "../../../devcluster/server/index.js";
import { BUILTIN_TYPES, createObject } from "../../../kube/k8s-client.js";
import { loadKubeConfig } from "../../../kube/kubeconfig.js";
import type { KubeObject, ResourceType } from "../../../kube/k8s-client.js";

/** The Task custom resource type. */
export const TASKS: ResourceType = CELERIAC_TYPES.Task;

/** The Queue custom resource type (its spec is mutable, so tests of spec changes use it). */
export const QUEUES: ResourceType = CELERIAC_TYPES.Queue;

/** A running test cluster. */
export interface TestCluster {
  api: ApiServer;
  kc: KubeConfig;
  dir: string;
  close(): Promise<void>;
}

/** Starts the API server on a free loopback port with a kubeconfig in a temp dir and installs `crds`. */
export async function startCluster(crds: string[] = ["tasks"], opts: ApiServerOptions = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-runtime-"));
  const kubeconfigPath = join(dir, "kubeconfig");
  const api = await startApiServer({ port: 0, kubeconfigPath, ...opts });
  const kc = loadKubeConfig({ kubeconfig: kubeconfigPath, env: {} });
  for (const c of crds) {
    const file = new URL(`../../../../crds/celeriac.io_${c}.yaml`, import.meta.url);
    const crd = parse(readFileSync(file, "utf8")) as KubeObject;
    await createObject(kc, BUILTIN_TYPES.CustomResourceDefinition, crd, "test");
  }
  return {
    api,
    kc,
    dir,
    async close() {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal valid Task. */
export function taskObject(namespace: string, name: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "celeriac.io/v1alpha1",
    kind: "Task",
    metadata: { namespace, name },
    spec: { queue: "default", task: "demo.add", args: [1, 2] },
    ...extra,
  };
}

/** A minimal valid Queue (every spec field defaulted). */
export function queueObject(namespace: string, name: string, spec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { namespace, name }, spec };
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`, { cause: last });
    await new Promise((r) => setTimeout(r, 10));
  }
}
