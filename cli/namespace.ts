/**
 * The namespace a command acts in when `-n/--namespace` is not given, as kubectl picks it:
 * `CELERIAC_NAMESPACE`, else the namespace of the kubeconfig's current context (`KUBECONFIG` or
 * `~/.kube/config`), else `default`. So `kubectl celeriac …` (the plugin) acts where `kubectl …` does.
 */
import { existsSync } from "node:fs";
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
  if (files.length === 0) return "default";
  try {
    const { KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    kc.loadFromFile(files[0]!);
    return kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  } catch {
    return "default";
  }
}
