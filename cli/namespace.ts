/**
 * The namespace a command acts in when `-n/--namespace` is not given, as kubectl picks it:
 * `CELERIAC_NAMESPACE`, else the namespace of the kubeconfig's current context (`KUBECONFIG` or
 * `~/.kube/config`), else in a pod (`KUBERNETES_SERVICE_HOST`) its service account's namespace, else `default`. So `kubectl celeriac …` (the plugin) acts where `kubectl …` does.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Resolves a command's namespace.
 * @param flag the `-n/--namespace` value, when given
 * @param env the environment (default `process.env`)
 * @returns the namespace; never throws (an unreadable kubeconfig gives `default`)
 */
export async function commandNamespace(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (flag) return flag;
  if (env.CELERIAC_NAMESPACE) return env.CELERIAC_NAMESPACE;
  const files = (env.KUBECONFIG ?? join(homedir(), ".kube", "config")).split(":").filter((f) => f && existsSync(f));
  if (files.length === 0) return (env.KUBERNETES_SERVICE_HOST ? podNamespace() : undefined) ?? "default";
  try {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    kc.loadFromFile(files[0]!);
    return kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  } catch {
    return "default";
  }
}

/** The service account's namespace file of a pod (as kubectl reads it in-cluster). */
export const POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** The pod's namespace from {@link POD_NAMESPACE_FILE}, or undefined when it cannot be read. */
function podNamespace(): string | undefined {
  try {
    return readFileSync(POD_NAMESPACE_FILE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
