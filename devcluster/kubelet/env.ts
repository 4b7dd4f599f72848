/**
 * Builds a container's environment the way the kubelet does: `envFrom`, then `env` in order, with
 * `$(VAR)` expansion, Secret/ConfigMap references read through the API, and the downward-API fieldRefs
 * that make sense for a local process.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";

/** Looks Secrets and ConfigMaps up through the API; `undefined` means not found. Secret values are decoded. */
export interface EnvSources {
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

/** A reference could not be resolved; the container waits with reason `CreateContainerConfigError`. */
export class ContainerConfigError extends Error {
  override readonly name = "ContainerConfigError";
}

/**
 * Expands `$(VAR)` references as Kubernetes does: `$$` is an escaped `$`, a reference to an undefined
 * variable is left as written.
 * @param input the string to expand
 * @param vars the variables defined so far
 */
export function expandVars(input: string, vars: Readonly<Record<string, string>>): string {
  return input.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    return name !== undefined && Object.hasOwn(vars, name) ? (vars[name] as string) : m;
  });
}

/**
 * Resolves a downward-API `fieldRef` for a local Pod.
 * @throws ContainerConfigError for a field path the local kubelet does not support
 */
export function podFieldValue(pod: V1Pod, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2] as string] ?? "";
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    case "status.podIP":
    case "status.hostIP":
    case "status.podIPs":
    case "status.hostIPs":
      return "127.0.0.1";
    default:
      throw new ContainerConfigError(`fieldRef ${fieldPath} is not supported by the local kubelet`);
  }
}

/**
 * Computes a container's environment.
 * @param container the container spec
 * @param pod the Pod (for its namespace and fieldRefs)
 * @param sources Secret/ConfigMap lookups
 * @param base variables set before the template's (the kubelet passes `PATH` and `KUBECONFIG`); the
 *   template may override them
 * @returns the environment, in definition order
 * @throws ContainerConfigError when a non-optional Secret, ConfigMap or key is missing, or for an
 *   unsupported `fieldRef`/`resourceFieldRef`
 */
export async function resolveEnv(
  container: V1Container,
  pod: V1Pod,
  sources: EnvSources,
  base: Readonly<Record<string, string>>,
): Promise<Record<string, string>> {
  const ns = pod.metadata?.namespace ?? "default";
  const env: Record<string, string> = { ...base };
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const kind = from.configMapRef ? "configmap" : "secret";
    const data = from.configMapRef ? await sources.configMap(ns, ref.name ?? "") : await sources.secret(ns, ref.name ?? "");
    if (!data) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${kind} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[prefix + k] = v;
  }
  for (const e of container.env ?? []) {
    const vf = e.valueFrom;
    if (!vf) {
      env[e.name] = expandVars(e.value ?? "", env);
    } else if (vf.secretKeyRef || vf.configMapKeyRef) {
      const ref = (vf.secretKeyRef ?? vf.configMapKeyRef) as { name?: string; key: string; optional?: boolean };
      const kind = vf.secretKeyRef ? "secret" : "configmap";
      const data = vf.secretKeyRef ? await sources.secret(ns, ref.name ?? "") : await sources.configMap(ns, ref.name ?? "");
      const value = data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(
          data ? `couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name}` : `${kind} "${ref.name}" not found`,
        );
      }
      env[e.name] = value;
    } else if (vf.fieldRef) {
      env[e.name] = podFieldValue(pod, vf.fieldRef.fieldPath);
    } else {
      throw new ContainerConfigError(`env ${e.name}: resourceFieldRef is not supported by the local kubelet`);
    }
  }
  return env;
}
