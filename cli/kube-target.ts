/**
 * Which Kubernetes API an operations command reads (the dashboard's Queue, Task, Schedule, Workflow,
 * Event and Pod pages): `--kubeconfig`, else `KUBECONFIG`, else the kubeconfig of a running
 * `celeriac dev up` in the state directory (`<dir>/kubeconfig`), else the in-cluster service
 * account (`KUBERNETES_SERVICE_HOST`), else `~/.kube/config` — kubectl's order, with the local
 * platform before the home file so `celeriac dev up` then `celeriac dashboard` needs no flag. As
 * kubectl, a set `KUBECONFIG` is the whole list: its missing files are skipped, and when none
 * exists there is no Kubernetes API (no fall-through to the local platform or the home file).
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { DEFAULT_DEV_DIR } from "./nats-target.js";

/** Where the kubeconfig came from, for the command's first line. */
export type KubeSource = "--kubeconfig" | "KUBECONFIG" | "dev" | "in-cluster" | "~/.kube/config";

/** A loaded kubeconfig and where it came from. */
export interface KubeTarget {
  kube: KubeConfig;
  source: KubeSource;
  /** The file read (absent in-cluster). */
  file?: string;
}

/** No Kubernetes API, and why (for the command's first line). */
export interface NoKubeTarget {
  kube?: undefined;
  /** e.g. `KUBECONFIG names no existing file (/nonexistent)`. */
  reason: string;
}

/**
 * Finds and loads the kubeconfig, or says why there is none (a set `KUBECONFIG` whose files all
 * miss; or no flag, variable, running local platform, service account or home file): the caller
 * then works without the Kubernetes API and says so.
 * @param flag `--kubeconfig`
 * @param env the environment (default `process.env`): `KUBECONFIG`, `KUBERNETES_SERVICE_HOST`
 * @param devDir the `celeriac dev up` state directory (default `.celeriac`)
 * @throws Error `load kubeconfig <path>: <why>` (with `cause`, e.g. ENOENT for a missing `--kubeconfig`) when a file named by the flag or an existing file of `KUBECONFIG` cannot be loaded
 */
export async function kubeTarget(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, devDir = DEFAULT_DEV_DIR): Promise<KubeTarget | NoKubeTarget> {
  const { loadKubeConfig } = await import("../kube/kubeconfig.js");
  if (flag) return { kube: loadKubeConfig({ kubeconfig: flag, env }), source: "--kubeconfig", file: flag };
  // as kubectl: files of KUBECONFIG that do not exist are skipped, and a KUBECONFIG set replaces ~/.kube/config
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(":").filter((f) => f);
    const fromEnv = files.find((f) => existsSync(f));
    if (fromEnv) return { kube: loadKubeConfig({ kubeconfig: fromEnv, env }), source: "KUBECONFIG", file: fromEnv };
    return { reason: `KUBECONFIG names no existing file (${files.join(":") || "empty"})` };
  }
  const { isAlive, readState } = await import("../devcluster/platform/state.js");
  const dir = resolve(devDir);
  const s = readState(dir);
  const devFile = join(dir, "kubeconfig");
  if (s?.ready && isAlive(s.pid) && existsSync(devFile)) return { kube: loadKubeConfig({ kubeconfig: devFile, env }), source: "dev", file: devFile };
  if (env.KUBERNETES_SERVICE_HOST) return { kube: loadKubeConfig({ env: { ...env, KUBECONFIG: undefined } }), source: "in-cluster" };
  const home = join(homedir(), ".kube", "config");
  if (existsSync(home)) return { kube: loadKubeConfig({ kubeconfig: home, env }), source: "~/.kube/config", file: home };
  return { reason: "none found (no --kubeconfig, KUBECONFIG, local platform, service account or ~/.kube/config)" };
}
