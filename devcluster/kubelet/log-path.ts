/** Where the kubelet writes a Pod's output; shared with `celeriac dev logs`. */
import { join } from "node:path";

/**
 * The log file of a Pod: `<logsDir>/<namespace>_<pod>.log`. With the default state dir `.celeriac`,
 * `logsDir` is `.celeriac/logs`.
 * @param logsDir the kubelet's logs directory
 * @param namespace the Pod's namespace
 * @param name the Pod's name
 */
export function podLogPath(logsDir: string, namespace: string, name: string): string {
  return join(logsDir, `${namespace}_${name}.log`);
}

/**
 * The logs directory under a dev state directory (`<dir>/logs`).
 * @param stateDir e.g. `.celeriac`
 */
export function logsDirOf(stateDir: string): string {
  return join(stateDir, "logs");
}
