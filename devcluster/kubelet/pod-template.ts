/**
 * The pods a Deployment should have: the template hash and the Pod built from the template. Pure.
 *
 * Simplification (documented in docs/dev-kubelet.md): real Kubernetes puts a ReplicaSet
 * `<deployment>-<hash>` between the Deployment and its Pods; here Pods are owned by the Deployment
 * directly, and only the `pod-template-hash` label tells template generations apart.
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { rfc3339 } from "./pod-facts.js";

/** The label that carries the template hash, as upstream. */
export const POD_TEMPLATE_HASH = "pod-template-hash";

/** The node name every local pod is bound to. */
export const LOCAL_NODE = "local";

/** Upstream's `rand.SafeEncodeString` alphabet (no vowels, no confusable digits). */
const SAFE = "bcdfghjklmnpqrstvwxz2456789";

/** Canonical JSON: sorted keys, `null`/`undefined` dropped, `Date` as second-precision RFC 3339. */
function canonical(v: unknown): unknown {
  if (v instanceof Date) return rfc3339(v.getTime());
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== null && x !== undefined) out[k] = canonical(x);
    }
    return out;
  }
  return v;
}

/**
 * Hashes a pod template like upstream's `ComputeHash` (FNV-32a, then safe-encoded), over a canonical
 * JSON form so typed and raw copies of one template hash alike.
 * @param template the Deployment's `spec.template`
 * @returns a short string of `[b-z2-9]` characters, stable for equal templates
 */
export function templateHash(template: unknown): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(JSON.stringify(canonical(template) ?? {}), "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return [...String(h)].map((c) => SAFE[c.charCodeAt(0) % SAFE.length]).join("");
}

/**
 * A random name suffix of `[b-z2-9]` characters, as `generateName` uses.
 * @param random a source of numbers in [0, 1) (default `Math.random`)
 */
export function randomSuffix(length = 5, random: () => number = Math.random): string {
  let s = "";
  for (let i = 0; i < length; i++) s += SAFE[Math.floor(random() * SAFE.length)];
  return s;
}

/**
 * Builds the Pod for one replica of a Deployment.
 * @param deployment the Deployment (needs metadata.name, namespace, uid and spec.template)
 * @param hash {@link templateHash} of its template
 * @param suffix the random part of the name
 * @returns a Pod named `<deployment>-<hash>-<suffix>` with the template's labels plus
 *   `pod-template-hash`, the template's annotations, a controller ownerReference to the Deployment,
 *   and the template's spec with `nodeName: "local"`
 */
export function desiredPod(deployment: V1Deployment, hash: string, suffix: string): V1Pod {
  const name = deployment.metadata?.name ?? "";
  const tpl = deployment.spec?.template;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${name}-${hash}-${suffix}`,
      namespace: deployment.metadata?.namespace ?? "default",
      labels: { ...(tpl?.metadata?.labels ?? {}), [POD_TEMPLATE_HASH]: hash },
      ...(tpl?.metadata?.annotations ? { annotations: { ...tpl.metadata.annotations } } : {}),
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name,
          uid: deployment.metadata?.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: { ...(tpl?.spec ?? { containers: [] }), nodeName: LOCAL_NODE },
  };
}

/** True when `pod` has a controller ownerReference to the Deployment with this uid. */
export function isOwnedBy(pod: V1Pod, deploymentUid: string): boolean {
  return (pod.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === deploymentUid);
}
