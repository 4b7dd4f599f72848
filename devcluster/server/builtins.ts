/**
 * The built-in resource types the server serves, and the objects that exist at boot.
 */
import type { KObject, ResourceType } from "./types.js";
import { getPath, newUid, nowRfc3339 } from "./util.js";

interface Def {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  scale?: boolean;
  fieldSelectors?: Record<string, (o: KObject) => string | undefined>;
  generationFrom?: "all" | "spec";
}

const str = (path: string) => (o: KObject): string | undefined => {
  const v = getPath(o, path);
  return v === undefined || v === null ? undefined : String(v);
};

const DEFS: Def[] = [
  { group: "", version: "v1", resource: "namespaces", kind: "Namespace", namespaced: false, shortNames: ["ns"], status: true, fieldSelectors: { "status.phase": str("status.phase") }, generationFrom: "spec" },
  { group: "", version: "v1", resource: "configmaps", kind: "ConfigMap", namespaced: true, shortNames: ["cm"] },
  { group: "", version: "v1", resource: "secrets", kind: "Secret", namespaced: true, fieldSelectors: { type: str("type") } },
  { group: "", version: "v1", resource: "serviceaccounts", kind: "ServiceAccount", namespaced: true, shortNames: ["sa"] },
  { group: "", version: "v1", resource: "services", kind: "Service", namespaced: true, shortNames: ["svc"], categories: ["all"], status: true, generationFrom: "spec" },
  { group: "", version: "v1", resource: "endpoints", kind: "Endpoints", namespaced: true, shortNames: ["ep"] },
  { group: "", version: "v1", resource: "persistentvolumeclaims", kind: "PersistentVolumeClaim", namespaced: true, shortNames: ["pvc"], status: true, generationFrom: "spec" },
  {
    group: "", version: "v1", resource: "pods", kind: "Pod", namespaced: true, shortNames: ["po"], categories: ["all"], status: true, generationFrom: "spec",
    fieldSelectors: {
      "spec.nodeName": str("spec.nodeName"),
      "spec.restartPolicy": str("spec.restartPolicy"),
      "spec.schedulerName": str("spec.schedulerName"),
      "spec.serviceAccountName": str("spec.serviceAccountName"),
      "status.phase": str("status.phase"),
      "status.podIP": str("status.podIP"),
      "status.nominatedNodeName": str("status.nominatedNodeName"),
    },
  },
  {
    group: "", version: "v1", resource: "events", kind: "Event", namespaced: true, shortNames: ["ev"],
    fieldSelectors: {
      "involvedObject.kind": str("involvedObject.kind"),
      "involvedObject.namespace": str("involvedObject.namespace"),
      "involvedObject.name": str("involvedObject.name"),
      "involvedObject.uid": str("involvedObject.uid"),
      "involvedObject.apiVersion": str("involvedObject.apiVersion"),
      "involvedObject.resourceVersion": str("involvedObject.resourceVersion"),
      "involvedObject.fieldPath": str("involvedObject.fieldPath"),
      reason: str("reason"),
      reportingComponent: str("reportingComponent"),
      source: str("source.component"),
      type: str("type"),
    },
  },
  { group: "apps", version: "v1", resource: "deployments", kind: "Deployment", namespaced: true, shortNames: ["deploy"], categories: ["all"], status: true, scale: true, generationFrom: "spec" },
  { group: "apps", version: "v1", resource: "replicasets", kind: "ReplicaSet", namespaced: true, shortNames: ["rs"], categories: ["all"], status: true, scale: true, generationFrom: "spec" },
  { group: "apps", version: "v1", resource: "statefulsets", kind: "StatefulSet", namespaced: true, shortNames: ["sts"], categories: ["all"], status: true, scale: true, generationFrom: "spec" },
  { group: "apps", version: "v1", resource: "daemonsets", kind: "DaemonSet", namespaced: true, shortNames: ["ds"], categories: ["all"], status: true, generationFrom: "spec" },
  { group: "batch", version: "v1", resource: "jobs", kind: "Job", namespaced: true, categories: ["all"], status: true, generationFrom: "spec" },
  { group: "coordination.k8s.io", version: "v1", resource: "leases", kind: "Lease", namespaced: true },
  {
    group: "events.k8s.io", version: "v1", resource: "events", kind: "Event", namespaced: true, shortNames: ["ev"],
    fieldSelectors: {
      "regarding.kind": str("regarding.kind"),
      "regarding.name": str("regarding.name"),
      "regarding.namespace": str("regarding.namespace"),
      "regarding.uid": str("regarding.uid"),
      reason: str("reason"),
      type: str("type"),
      reportingController: str("reportingController"),
    },
  },
  { group: "rbac.authorization.k8s.io", version: "v1", resource: "roles", kind: "Role", namespaced: true },
  { group: "rbac.authorization.k8s.io", version: "v1", resource: "rolebindings", kind: "RoleBinding", namespaced: true },
  { group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles", kind: "ClusterRole", namespaced: false },
  { group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false },
  { group: "policy", version: "v1", resource: "poddisruptionbudgets", kind: "PodDisruptionBudget", namespaced: true, shortNames: ["pdb"], status: true, generationFrom: "spec" },
  { group: "networking.k8s.io", version: "v1", resource: "networkpolicies", kind: "NetworkPolicy", namespaced: true, shortNames: ["netpol"] },
  { group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions", kind: "CustomResourceDefinition", namespaced: false, shortNames: ["crd", "crds"], status: true },
];

/** The built-in resource types, one per group/version/resource. */
export function builtinTypes(): ResourceType[] {
  return DEFS.map((d) => ({
    group: d.group,
    version: d.version,
    storageVersion: d.version,
    resource: d.resource,
    singular: d.kind.toLowerCase(),
    kind: d.kind,
    listKind: `${d.kind}List`,
    namespaced: d.namespaced,
    shortNames: d.shortNames ?? [],
    categories: d.categories ?? [],
    custom: false,
    statusSubresource: d.status ?? false,
    scale: d.scale ? { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" } : undefined,
    fieldSelectors: d.fieldSelectors,
    // CRDs are served like CRs in this respect: PUT must carry a resourceVersion.
    allowUnconditionalUpdate: d.resource !== "customresourcedefinitions",
    generationFrom: d.generationFrom ?? "all",
  }));
}

/** The namespaces that exist at boot: default, kube-system, kube-public, kube-node-lease. */
export function bootNamespaces(): KObject[] {
  return ["default", "kube-system", "kube-public", "kube-node-lease"].map((name) => ({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, uid: newUid(), creationTimestamp: nowRfc3339(), labels: { "kubernetes.io/metadata.name": name } },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  }));
}
