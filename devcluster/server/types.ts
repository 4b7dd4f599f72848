/**
 * Shared types of the in-memory API server.
 *
 * Kubernetes objects are schemaless JSON documents here; {@link Json} is the one place that says so.
 */

/** A JSON value as decoded from a request body or held in storage (objects are plain, never shared). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- objects are arbitrary JSON documents
export type Json = any;

/** A Kubernetes object (`apiVersion`, `kind`, `metadata`, …) as stored. */
export type KObject = Record<string, Json>;

/** The scale subresource mapping of a resource (CRD `subresources.scale`, or Deployment's built-in one). */
export interface ScaleSpec {
  /** e.g. `.spec.replicas` */
  specReplicasPath: string;
  /** e.g. `.status.replicas` */
  statusReplicasPath: string;
  /** e.g. `.status.selector` (optional) */
  labelSelectorPath?: string;
}

/** One printer column of a Table (CRD `additionalPrinterColumns` shape). */
export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

/** Everything the server knows about one resource in one served group-version. */
export interface ResourceType {
  /** API group, `""` for core. */
  group: string;
  /** Version served, e.g. `v1`. */
  version: string;
  /** The version objects are stored in (CRs with several versions); equals `version` for built-ins. */
  storageVersion: string;
  /** Plural resource name, e.g. `tasks`. */
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** True for custom resources (served from a CRD). */
  custom: boolean;
  /** Whether `/status` is a subresource (then main writes keep status and vice versa). */
  statusSubresource: boolean;
  scale?: ScaleSpec;
  /** openAPIV3Schema of the served version (custom resources only). */
  schema?: Record<string, unknown>;
  /** Table columns after `Name`; undefined = the built-in default for this kind. */
  printerColumns?: PrinterColumn[];
  /** Extra field selector keys beyond metadata.name/metadata.namespace, with how to read them. */
  fieldSelectors?: Record<string, (o: KObject) => string | undefined>;
  /** Whether PUT without resourceVersion is allowed (built-ins mostly yes, CRs no). */
  allowUnconditionalUpdate: boolean;
  /** Lists of which generation is bumped: "spec" = only when .spec changes; "all" = any non-metadata non-status change. */
  generationFrom: "all" | "spec";
  /** Name of the CRD (`plural.group`) for custom resources. */
  crdName?: string;
}

/** `group/resource`: the storage key of a resource, independent of version. */
export function storageKey(group: string, resource: string): string {
  return `${group}/${resource}`;
}

/** `apiVersion` string of a group/version (`v1` for the core group). */
export function apiVersionOf(group: string, version: string): string {
  return group === "" ? version : `${group}/${version}`;
}
