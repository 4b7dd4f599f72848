/** Shared setup for the worker's Task status tests: the in-memory API server with the Task CRD of api/. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { TASK_CRD } from "../../api/crd.js";
import { API_VERSION, FIELD_MANAGERS } from "../../api/constants.js";
import { CELERIAC_TYPES, type Task } from "../../api/objects.js";
import { BUILTIN_TYPES, applyStatus, createObject, getObject, listObjects, type KubeObject } from "../../kube/k8s-client.js";
import { loadKubeConfig } from "../../kube/kubeconfig.js";

/** A running in-memory cluster with the Task CRD (generated from api/task.ts, so it is current). */
export interface TaskCluster {
  api: ApiServer;
  kc: KubeConfig;
  /** Creates a Task (spec queue/task as given) with the operator's Accepted condition and phase Queued. */
  createTask(namespace: string, name: string, spec?: Record<string, unknown>): Promise<Task>;
  /** Reads a Task. */
  getTask(namespace: string, name: string): Promise<Task>;
  /** Lists core/v1 Events of a namespace. */
  events(namespace: string): Promise<KubeObject[]>;
  close(): Promise<void>;
}

/** Starts the in-memory API server and installs the Task CRD. */
export async function startTaskCluster(): Promise<TaskCluster> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-worker-k8s-"));
  const kubeconfigPath = join(dir, "kubeconfig");
  const api = await startApiServer({ port: 0, kubeconfigPath });
  const kc = loadKubeConfig({ kubeconfig: kubeconfigPath, env: {} });
  await createObject(kc, BUILTIN_TYPES.CustomResourceDefinition, TASK_CRD as unknown as KubeObject, "test");
  const ref = (namespace: string, name: string) => ({ ...CELERIAC_TYPES.Task, namespace, name });
  return {
    api,
    kc,
    async createTask(namespace, name, spec = {}) {
      const body = { apiVersion: API_VERSION, kind: "Task", metadata: { namespace, name }, spec: { queue: "q", task: "hello", ...spec } };
      for (let i = 0; ; i++) {
        try {
          await createObject(kc, CELERIAC_TYPES.Task, body, "test");
          break;
        } catch (err) {
          // the CRD is served a moment after it is created
          if (i > 50) throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      const accepted = { type: "Accepted", status: "True", reason: "Queued", message: "published", lastTransitionTime: "2026-01-01T00:00:00Z" };
      await applyStatus(kc, CELERIAC_TYPES.Task, { metadata: { namespace, name }, status: { phase: "Queued", conditions: [accepted] } }, FIELD_MANAGERS.operator, { force: true });
      return getObject<Task & KubeObject>(kc, ref(namespace, name));
    },
    getTask: (namespace, name) => getObject<Task & KubeObject>(kc, ref(namespace, name)),
    async events(namespace) {
      return (await listObjects(kc, BUILTIN_TYPES.Event, { namespace })).items;
    },
    async close() {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A logger whose records (parsed JSON) are kept in `lines`. */
export function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: "debug" }, stream), lines };
}
