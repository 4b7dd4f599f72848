/**
 * Loading cluster access with `@kubernetes/client-node` (operator, CLI, tests). Kept apart from
 * kube/k8s-client.ts so that importing the request helpers does not load client-node (~70 MiB of
 * RSS); the worker uses kube/light-client.ts and loads this only for a kubeconfig the light client
 * cannot serve (exec or auth-provider credentials).
 */
import { KubeConfig } from "@kubernetes/client-node";

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Path from `--kubeconfig`; wins over everything else. */
  kubeconfig?: string;
  /** Environment to read `KUBECONFIG` and `KUBERNETES_SERVICE_HOST` from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads a KubeConfig: `--kubeconfig` path, else `$KUBECONFIG`, else the in-cluster service account
 * (when `KUBERNETES_SERVICE_HOST` is set), else `~/.kube/config`.
 *
 * @throws Error `load kubeconfig <path>: <the cause's message>` (with `cause`, e.g. ENOENT) when the file cannot be read or parsed, or
 *   `load kubeconfig` when no source yields a current cluster
 */
export function loadKubeConfig(opts: LoadKubeConfigOptions = {}): KubeConfig {
  const env = opts.env ?? process.env;
  const kc = new KubeConfig();
  const file = opts.kubeconfig ?? (env.KUBECONFIG ? env.KUBECONFIG.split(":").find((f) => f) : undefined);
  try {
    if (file) kc.loadFromFile(file);
    else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (cause) {
    throw new Error(`load kubeconfig${file ? ` ${file}` : ""}: ${(cause as Error).message}`, { cause });
  }
  if (!kc.getCurrentCluster()) throw new Error(`load kubeconfig ${file ?? ""}: no current cluster`.trim());
  return kc;
}
