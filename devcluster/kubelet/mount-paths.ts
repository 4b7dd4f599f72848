/**
 * The stand-in for mount namespaces. A local process sees the host's file system, so a container's
 * `volumeMounts[].mountPath` (say `/var/run/secrets/celeriac.io/nats-creds`) cannot exist for it.
 * Instead the kubelet rewrites every env value, `command` and `args` element that names a path under a
 * mountPath to the same path under the volume's materialised directory on the host:
 *
 * - a value equal to a mountPath, or starting with `<mountPath>/`, is rewritten;
 * - so is the value part of a `--flag=<path>` argument (an argument starting with `-` that contains `=`);
 * - the longest matching mountPath wins (a mount nested in another one);
 * - nothing else is touched: a path a program builds itself, or reads from a config file, is not seen;
 * - a mount the caller says to share (the kubelet: an emptyDir whose mountPath is an existing host
 *   directory, such as the worker template's `/tmp`) is left out: the process uses the host directory.
 *
 * Pure: the container and the volume directories come in, the mount table and rewritten strings go out.
 */
import type { V1Container } from "@kubernetes/client-node";
import { join, posix } from "node:path";
import { ContainerConfigError, expandVars } from "./env.js";

/** One mount of a container: where the container expects it and where it really is. */
export interface HostMount {
  /** `volumeMounts[].mountPath`, normalised (no trailing slash). */
  mountPath: string;
  /** The host directory (or file, with `subPath`) standing in for it. */
  hostPath: string;
  readOnly: boolean;
}

/**
 * The container's mounts, longest mountPath first.
 * @param container the container spec
 * @param volumeDirs volume name → its materialised host directory
 * @param env the container's environment, for `subPathExpr`
 * @param shareHostDir true for a mount to leave out (its mountPath then means the host path itself)
 * @throws ContainerConfigError when a mount names a volume the Pod does not have, or its subPath
 *   leaves the volume
 */
export function containerMounts(
  container: V1Container,
  volumeDirs: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string>> = {},
  shareHostDir: (mountPath: string, volume: string) => boolean = () => false,
): HostMount[] {
  const out: HostMount[] = [];
  for (const [i, m] of (container.volumeMounts ?? []).entries()) {
    const dir = volumeDirs[m.name];
    if (dir === undefined) {
      throw new ContainerConfigError(`container "${container.name}": volumeMounts[${i}] names volume "${m.name}", which is not in spec.volumes: add it there or fix the name`);
    }
    if (!m.mountPath || !m.mountPath.startsWith("/")) {
      throw new ContainerConfigError(`container "${container.name}": volumeMounts[${i}].mountPath "${m.mountPath ?? ""}" must be an absolute path`);
    }
    const sub = m.subPathExpr ? expandVars(m.subPathExpr, env) : (m.subPath ?? "");
    const cleanSub = posix.normalize(sub || ".");
    if (cleanSub.startsWith("..") || posix.isAbsolute(cleanSub)) {
      throw new ContainerConfigError(`container "${container.name}": volumeMounts[${i}].subPath "${sub}" must be a relative path inside the volume`);
    }
    const mountPath = posix.normalize(m.mountPath).replace(/(.)\/+$/, "$1");
    if (shareHostDir(mountPath, m.name)) continue;
    out.push({ mountPath, hostPath: cleanSub === "." ? dir : join(dir, cleanSub), readOnly: m.readOnly === true });
  }
  return out.sort((a, b) => b.mountPath.length - a.mountPath.length);
}

/**
 * Rewrites one path-like string from container view to host view.
 * @param value an env value or argument
 * @param mounts from {@link containerMounts} (longest first)
 * @returns the host path, or `value` unchanged when it is not under a mountPath
 */
export function toHostPath(value: string, mounts: readonly HostMount[]): string {
  for (const m of mounts) {
    if (value === m.mountPath) return m.hostPath;
    if (m.mountPath === "/" ? value.startsWith("/") : value.startsWith(`${m.mountPath}/`)) {
      return join(m.hostPath, value.slice(m.mountPath === "/" ? 1 : m.mountPath.length + 1));
    }
  }
  return value;
}

/**
 * Rewrites an argument: the whole argument, or the value of a `--flag=<path>` argument.
 * @returns the rewritten argument
 */
export function rewriteArg(arg: string, mounts: readonly HostMount[]): string {
  const whole = toHostPath(arg, mounts);
  if (whole !== arg) return whole;
  const eq = arg.indexOf("=");
  if (arg.startsWith("-") && eq > 0) {
    const v = arg.slice(eq + 1);
    const host = toHostPath(v, mounts);
    if (host !== v) return `${arg.slice(0, eq + 1)}${host}`;
  }
  return arg;
}

/**
 * Rewrites every value of an environment.
 * @returns a new object; names are unchanged
 */
export function rewriteEnv(env: Readonly<Record<string, string>>, mounts: readonly HostMount[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = toHostPath(v, mounts);
  return out;
}
