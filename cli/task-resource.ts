/**
 * A Task resource's task id, for commands given its name: a Task's task id is its
 * `metadata.uid` (docs/protocol.md), so `celeriac tasks get monthly-report` reads the Task
 * `monthly-report` of the namespace through the kubeconfig (`KUBECONFIG` or `~/.kube/config`, as
 * kubectl) and uses its uid.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { CELERIAC_TYPES, type Task } from "../api/objects.js";
import { getObject, isNotFound, type KubeClient } from "../kube/k8s-client.js";

/** Longest wait for the API server, in ms: a lookup that cannot finish says nothing rather than hang. */
const LOOKUP_TIMEOUT_MS = 3000;

/** A DNS-1123 subdomain (a Task name); uids and client ids with `_`/`=`/upper case are never looked up. */
const TASK_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Reads Task `name` of `namespace` through `kube`; undefined when `name` cannot be a Task name, there
 * is no such Task, or the API does not answer within 3 s. The dashboard's lookup by name
 * (dashboard/task-resource-view.ts) and {@link taskResourceUid} both use it.
 * @throws Error for API errors other than NotFound
 */
export async function readTaskResource(kube: KubeClient, namespace: string, name: string): Promise<Task | undefined> {
  if (!TASK_NAME.test(name) || name.length > 253) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const get = getObject<Task>(kube, { ...CELERIAC_TYPES.Task, namespace, name });
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS)));
    return await Promise.race([get, timeout]);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The uid of Task `name` in `namespace`, or undefined when there is no kubeconfig, no such Task, or
 * the API server does not answer within 3 s (the caller then reports the id as not found).
 * @param env the environment (default `process.env`): `KUBECONFIG`
 * @returns the uid; never throws
 */
export async function taskResourceUid(namespace: string, name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (!TASK_NAME.test(name) || name.length > 253) return undefined;
  const files = (env.KUBECONFIG ?? join(homedir(), ".kube", "config")).split(":").filter((f) => f && existsSync(f));
  if (files.length === 0) return undefined;
  try {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    kc.loadFromFile(files[0]!);
    return (await readTaskResource(kc, namespace, name))?.metadata?.uid || undefined;
  } catch {
    return undefined;
  }
}
