/**
 * Discovery documents: `/api`, `/apis` (plain and aggregated), `/apis/{g}` and the per-group-version
 * APIResourceLists, all derived from the {@link Registry}.
 */
import type { Registry } from "./crd-registry.js";
import type { Json, ResourceType } from "./types.js";

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const SUB_VERBS = ["get", "patch", "update"];

/** Content-Type of an aggregated discovery answer for the requested version (v2 or v2beta1). */
export function aggregatedContentType(accept: string): string {
  const v = /v=v2(?!beta)/.test(accept) || !accept.includes("v2beta1") ? "v2" : "v2beta1";
  return `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`;
}

/** True when the Accept header asks for aggregated discovery. */
export function wantsAggregated(accept: string | undefined): boolean {
  return (accept ?? "").includes("as=APIGroupDiscoveryList");
}

function aggResource(t: ResourceType): Json {
  const r: Json = {
    resource: t.resource,
    responseKind: { group: "", version: "", kind: t.kind },
    scope: t.namespaced ? "Namespaced" : "Cluster",
    singularResource: t.singular,
    verbs: VERBS,
  };
  if (t.shortNames.length) r.shortNames = t.shortNames;
  if (t.categories.length) r.categories = t.categories;
  const subs: Json[] = [];
  if (t.scale) subs.push({ subresource: "scale", responseKind: { group: "autoscaling", version: "v1", kind: "Scale" }, verbs: SUB_VERBS });
  if (t.statusSubresource) subs.push({ subresource: "status", responseKind: { group: "", version: "", kind: t.kind }, verbs: SUB_VERBS });
  if (subs.length) r.subresources = subs;
  return r;
}

function aggGroup(reg: Registry, group: string, versions: string[]): Json {
  return {
    metadata: group === "" ? {} : { name: group, creationTimestamp: null },
    versions: versions.map((v) => ({
      version: v,
      resources: reg
        .groupVersion(group, v)
        .sort((a, b) => (a.resource < b.resource ? -1 : 1))
        .map(aggResource),
      freshness: "Current",
    })),
  };
}

/** `/api` as an APIGroupDiscoveryList (one item, no name). */
export function aggregatedCore(reg: Registry): Json {
  return { kind: "APIGroupDiscoveryList", apiVersion: "apidiscovery.k8s.io/v2", metadata: {}, items: [aggGroup(reg, "", ["v1"])] };
}

/** `/apis` as an APIGroupDiscoveryList. */
export function aggregatedApis(reg: Registry): Json {
  const items = reg
    .groups()
    .filter((g) => g.group !== "")
    .map((g) => aggGroup(reg, g.group, g.versions));
  return { kind: "APIGroupDiscoveryList", apiVersion: "apidiscovery.k8s.io/v2", metadata: {}, items };
}

/** `/api` as APIVersions. @param serverAddress `host:port` clients reach us on */
export function apiVersions(serverAddress: string): Json {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
}

function apiGroup(group: string, versions: string[]): Json {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] };
}

/** `/apis` as APIGroupList. */
export function apiGroupList(reg: Registry): Json {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: reg
      .groups()
      .filter((g) => g.group !== "")
      .map((g) => apiGroup(g.group, g.versions)),
  };
}

/** `/apis/{group}` as APIGroup, or undefined for an unknown group. */
export function apiGroupDoc(reg: Registry, group: string): Json | undefined {
  const g = reg.groups().find((x) => x.group === group && group !== "");
  return g ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(g.group, g.versions) } : undefined;
}

/** `/api/v1` or `/apis/{g}/{v}` as APIResourceList, or undefined for an unknown group-version. */
export function apiResourceList(reg: Registry, group: string, version: string): Json | undefined {
  const types = reg.groupVersion(group, version);
  if (types.length === 0) return undefined;
  const resources: Json[] = [];
  for (const t of types.sort((a, b) => (a.resource < b.resource ? -1 : 1))) {
    const r: Json = { name: t.resource, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: VERBS };
    if (t.shortNames.length) r.shortNames = t.shortNames;
    if (t.categories.length) r.categories = t.categories;
    resources.push(r);
    if (t.statusSubresource) resources.push({ name: `${t.resource}/status`, singularName: "", namespaced: t.namespaced, kind: t.kind, verbs: SUB_VERBS });
    if (t.scale) {
      resources.push({ name: `${t.resource}/scale`, singularName: "", namespaced: t.namespaced, group: "autoscaling", version: "v1", kind: "Scale", verbs: SUB_VERBS });
    }
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group ? `${group}/${version}` : version, resources };
}
