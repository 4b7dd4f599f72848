/**
 * The resource registry: built-in types plus the types that CustomResourceDefinitions add.
 * Also the CRD "controller" logic: CRD validation and the status (acceptedNames, conditions, storedVersions)
 * set synchronously on every CRD write.
 */
import { celCompileCauses } from "../../api/cel.js";
import { checkStructural, type JSONSchemaProps } from "../../api/validation.js";
import { builtinTypes } from "./builtins.js";
import { invalid } from "./errors.js";
import type { KObject, PrinterColumn, ResourceType } from "./types.js";
import { isObject, nowRfc3339 } from "./util.js";

/** A group with its served versions, preferred first. */
export interface GroupInfo {
  group: string;
  versions: string[];
}

/** Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (alphabetical). */
export function compareKubeVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number, string] => {
    const m = v.match(/^v(\d+)(?:(alpha|beta)(\d+))?$/);
    if (!m) return [3, 0, 0, v];
    const stage = m[2] === "alpha" ? 2 : m[2] === "beta" ? 1 : 0;
    return [stage, -Number(m[1]), -Number(m[3] ?? 0), v];
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] as number) - (pb[i] as number);
  return pa[3] < pb[3] ? -1 : pa[3] > pb[3] ? 1 : 0;
}

/** Holds every served resource type; `revision` changes whenever the set changes (discovery/OpenAPI caches key on it). */
export class Registry {
  private readonly builtins = builtinTypes();
  private readonly crds = new Map<string, ResourceType[]>();
  private byGvr = new Map<string, ResourceType>();
  /** Incremented on every change of the served types. */
  revision = 0;

  constructor() {
    this.reindex();
  }

  private reindex(): void {
    this.byGvr = new Map();
    for (const t of this.all()) this.byGvr.set(`${t.group}/${t.version}/${t.resource}`, t);
    this.revision++;
  }

  /** Every served type (built-ins first, then CRD types by CRD name). */
  all(): ResourceType[] {
    return [...this.builtins, ...[...this.crds.values()].flat()];
  }

  /** The type served at `group/version/resource`, or undefined. */
  lookup(group: string, version: string, resource: string): ResourceType | undefined {
    return this.byGvr.get(`${group}/${version}/${resource}`);
  }

  /** Every type of one group-version. */
  groupVersion(group: string, version: string): ResourceType[] {
    return this.all().filter((t) => t.group === group && t.version === version);
  }

  /** Groups (core `""` first, then built-ins in definition order, then CRD groups) with versions sorted by priority. */
  groups(): GroupInfo[] {
    const out = new Map<string, Set<string>>();
    for (const t of this.all()) {
      if (!out.has(t.group)) out.set(t.group, new Set());
      (out.get(t.group) as Set<string>).add(t.version);
    }
    return [...out.entries()].map(([group, vs]) => ({ group, versions: [...vs].sort(compareKubeVersions) }));
  }

  /** Types served for a CRD name (`plural.group`), empty if none. */
  crdTypes(name: string): ResourceType[] {
    return this.crds.get(name) ?? [];
  }

  /** Serves (or re-serves, after an update) the resources a stored CRD defines. */
  setCrd(crd: KObject): void {
    this.crds.set(crd.metadata.name, typesFromCrd(crd));
    this.reindex();
  }

  /** Stops serving a CRD's resources. */
  removeCrd(name: string): void {
    this.crds.delete(name);
    this.reindex();
  }
}

/** The ResourceTypes (one per served version) a CRD defines. */
export function typesFromCrd(crd: KObject): ResourceType[] {
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  const versions: KObject[] = spec.versions ?? [];
  const storage = versions.find((v) => v.storage)?.name ?? versions[0]?.name;
  return versions
    .filter((v) => v.served)
    .map((v) => {
      const sub = v.subresources ?? {};
      const cols: PrinterColumn[] | undefined = v.additionalPrinterColumns;
      return {
        group: spec.group,
        version: v.name,
        storageVersion: storage,
        resource: names.plural,
        singular: names.singular || String(names.kind).toLowerCase(),
        kind: names.kind,
        listKind: names.listKind || `${names.kind}List`,
        namespaced: spec.scope !== "Cluster",
        shortNames: names.shortNames ?? [],
        categories: names.categories ?? [],
        custom: true,
        statusSubresource: isObject(sub.status),
        scale: isObject(sub.scale) ? (sub.scale as ResourceType["scale"]) : undefined,
        schema: v.schema?.openAPIV3Schema ?? { type: "object", "x-kubernetes-preserve-unknown-fields": true },
        printerColumns: cols && cols.length > 0 ? cols : [{ name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }],
        allowUnconditionalUpdate: false,
        generationFrom: "all",
        crdName: crd.metadata.name,
      } satisfies ResourceType;
    });
}

type Cause = { reason: string; message: string; field: string };

/**
 * Validates a CRD object (names, scope, versions, structural schemas).
 * @throws ApiError 422 Invalid naming the offending fields
 */
export function validateCrd(crd: KObject): void {
  const causes: Cause[] = [];
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  const req = (field: string, v: unknown): void => {
    if (v === undefined || v === null || v === "") causes.push({ reason: "FieldValueRequired", message: "Required value", field });
  };
  req("spec.group", spec.group);
  req("spec.names.plural", names.plural);
  req("spec.names.kind", names.kind);
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster") {
    causes.push({ reason: "FieldValueNotSupported", message: `Unsupported value: "${spec.scope ?? ""}": supported values: "Cluster", "Namespaced"`, field: "spec.scope" });
  }
  if (names.plural && spec.group && crd.metadata?.name !== `${names.plural}.${spec.group}`) {
    causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${crd.metadata?.name}": must be spec.names.plural+"."+spec.group`, field: "metadata.name" });
  }
  const versions: KObject[] = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) causes.push({ reason: "FieldValueRequired", message: "Required value", field: "spec.versions" });
  const storageCount = versions.filter((v) => v.storage === true).length;
  if (versions.length > 0 && storageCount !== 1) {
    causes.push({ reason: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(versions.map((v) => v.name))}: must have exactly one version marked as storage version`, field: "spec.versions" });
  }
  versions.forEach((v, i) => {
    const schema = v.schema?.openAPIV3Schema;
    if (!isObject(schema)) {
      causes.push({ reason: "FieldValueRequired", message: "Required value: schemas are required", field: `spec.versions[${i}].schema.openAPIV3Schema` });
      return;
    }
    for (const c of checkStructural(schema as JSONSchemaProps, `spec.versions[${i}].schema.openAPIV3Schema`)) causes.push(c);
    for (const c of celCompileCauses(schema as JSONSchemaProps, `spec.versions[${i}].schema.openAPIV3Schema`)) causes.push(c);
  });
  if (causes.length > 0) throw invalid("apiextensions.k8s.io", "CustomResourceDefinition", crd.metadata?.name ?? "", causes);
}

/** Sets the CRD status the apiextensions controllers would set: acceptedNames, NamesAccepted/Established, storedVersions. */
export function establishCrd(crd: KObject, old?: KObject): void {
  const names = crd.spec?.names ?? {};
  const prev: KObject = old?.status ?? crd.status ?? {};
  const accepted: KObject = { ...names };
  accepted.singular = names.singular || String(names.kind).toLowerCase();
  accepted.listKind = names.listKind || `${names.kind}List`;
  const now = nowRfc3339();
  const cond = (type: string, reason: string, message: string): KObject => {
    const before = (prev.conditions ?? []).find((c: KObject) => c.type === type);
    return { type, status: "True", lastTransitionTime: before?.status === "True" ? before.lastTransitionTime : now, reason, message };
  };
  const storage = (crd.spec?.versions ?? []).find((v: KObject) => v.storage)?.name;
  const stored: string[] = [...(prev.storedVersions ?? [])];
  if (storage && !stored.includes(storage)) stored.push(storage);
  crd.status = {
    acceptedNames: accepted,
    conditions: [cond("NamesAccepted", "NoConflicts", "no conflicts found"), cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
    storedVersions: stored,
  };
}
