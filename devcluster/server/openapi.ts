/**
 * OpenAPI v3: the `/openapi/v3` index and one document per group-version. The documents carry exactly what
 * kubectl, helm and `kubectl explain` need: per-GVK path items whose operations declare `fieldValidation`, and
 * full CRD schemas under `components.schemas`. Built-in schemas are loose. Documents are cached per registry
 * revision and the index `hash` is derived from each document's content.
 */
import { createHash } from "node:crypto";
import type { Registry } from "./crd-registry.js";
import type { Json, ResourceType } from "./types.js";
import { clone } from "./util.js";

const OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

const OBJECT_META_SCHEMA: Json = {
  description: "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
  type: "object",
  properties: {
    name: { type: "string", description: "Name must be unique within a namespace." },
    generateName: { type: "string" },
    namespace: { type: "string" },
    labels: { type: "object", additionalProperties: { type: "string", default: "" } },
    annotations: { type: "object", additionalProperties: { type: "string", default: "" } },
    finalizers: { type: "array", items: { type: "string", default: "" }, "x-kubernetes-list-type": "set" },
    resourceVersion: { type: "string" },
    uid: { type: "string" },
    generation: { type: "integer", format: "int64" },
    creationTimestamp: { type: "string", format: "date-time" },
    deletionTimestamp: { type: "string", format: "date-time" },
    deletionGracePeriodSeconds: { type: "integer", format: "int64" },
    ownerReferences: { type: "array", items: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
    managedFields: { type: "array", items: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
  },
};

const param = (name: string, type = "string"): Json => ({ name, in: "query", schema: { type, uniqueItems: true } });
const WRITE_PARAMS = [param("dryRun"), param("fieldManager"), param("fieldValidation")];

/** `com.example.v1.Task` / `io.k8s.api.apps.v1.Deployment`: the components.schemas key of a type. */
export function schemaName(t: ResourceType): string {
  if (t.custom) return `${t.group.split(".").reverse().join(".")}.${t.version}.${t.kind}`;
  if (t.group === "apiextensions.k8s.io") return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${t.version}.${t.kind}`;
  const g = t.group === "" ? "core" : t.group.replace(/\.k8s\.io$/, "").replace(/\./g, "");
  return `io.k8s.api.${g}.${t.version}.${t.kind}`;
}

function typeSchema(t: ResourceType): Json {
  const gvk = [{ group: t.group, version: t.version, kind: t.kind }];
  const base: Json = t.custom ? clone(t.schema ?? {}) : { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  base.type ??= "object";
  base.properties = {
    apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this representation of an object." },
    kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
    metadata: { allOf: [{ $ref: `#/components/schemas/${OBJECT_META}` }], default: {} },
    ...(base.properties ?? {}),
  };
  if (!t.custom) base.description ??= `${t.kind} (schema not published by the in-memory API server)`;
  base["x-kubernetes-group-version-kind"] = gvk;
  return base;
}

function pathItems(t: ResourceType): Record<string, Json> {
  const prefix = t.group === "" ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`;
  const coll = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.resource}` : `${prefix}/${t.resource}`;
  const gvk = { group: t.group, version: t.version, kind: t.kind };
  const ref = { $ref: `#/components/schemas/${schemaName(t)}` };
  const ok = { "200": { description: "OK", content: { "application/json": { schema: ref } } } };
  const body = { content: { "application/json": { schema: ref } } };
  const patchBody = {
    content: {
      "application/json-patch+json": { schema: { type: "object" } },
      "application/merge-patch+json": { schema: { type: "object" } },
      "application/apply-patch+yaml": { schema: { type: "object" } },
    },
  };
  const op = (action: string, id: string, extra: Json = {}): Json => ({
    operationId: `${id}${t.kind}`,
    "x-kubernetes-action": action,
    "x-kubernetes-group-version-kind": gvk,
    responses: ok,
    ...extra,
  });
  const items: Record<string, Json> = {
    [coll]: { get: op("list", "list"), post: op("post", "create", { parameters: WRITE_PARAMS, requestBody: body }) },
    [`${coll}/{name}`]: {
      get: op("get", "read"),
      put: op("put", "replace", { parameters: WRITE_PARAMS, requestBody: body }),
      patch: op("patch", "patch", { parameters: [...WRITE_PARAMS, param("force", "boolean")], requestBody: patchBody }),
      delete: op("delete", "delete", { parameters: [param("dryRun"), param("propagationPolicy")] }),
    },
  };
  if (t.statusSubresource) {
    items[`${coll}/{name}/status`] = {
      get: op("get", "readStatus"),
      put: op("put", "replaceStatus", { parameters: WRITE_PARAMS, requestBody: body }),
      patch: op("patch", "patchStatus", { parameters: [...WRITE_PARAMS, param("force", "boolean")], requestBody: patchBody }),
    };
  }
  return items;
}

/** Builds the OpenAPI v3 document of one group-version, or undefined when nothing is served there. */
export function groupVersionDoc(reg: Registry, group: string, version: string): Json | undefined {
  const types = reg.groupVersion(group, version);
  if (types.length === 0) return undefined;
  const paths: Record<string, Json> = {};
  const schemas: Record<string, Json> = { [OBJECT_META]: OBJECT_META_SCHEMA };
  for (const t of types) {
    Object.assign(paths, pathItems(t));
    schemas[schemaName(t)] = typeSchema(t);
  }
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths, components: { schemas } };
}

/** OpenAPI v3 documents and their hashes, rebuilt when the registry revision changes. */
export class OpenApiCache {
  private rev = -1;
  private docs = new Map<string, { body: string; hash: string }>();

  /** @param reg the registry the documents describe */
  constructor(private readonly reg: Registry) {}

  private refresh(): void {
    if (this.rev === this.reg.revision) return;
    this.rev = this.reg.revision;
    this.docs = new Map();
    for (const g of this.reg.groups()) {
      for (const v of g.versions) {
        const key = g.group === "" ? `api/${v}` : `apis/${g.group}/${v}`;
        const body = JSON.stringify(groupVersionDoc(this.reg, g.group, v));
        const hash = createHash("sha512").update(body).digest("hex").slice(0, 16).toUpperCase();
        this.docs.set(key, { body, hash });
      }
    }
  }

  /** The `/openapi/v3` index body. */
  index(): Json {
    this.refresh();
    const paths: Record<string, Json> = {};
    for (const [k, d] of this.docs) paths[k] = { serverRelativeURL: `/openapi/v3/${k}?hash=${d.hash}` };
    return { paths };
  }

  /** The serialized document for `api/v1` / `apis/g/v`, or undefined. */
  doc(key: string): string | undefined {
    this.refresh();
    return this.docs.get(key)?.body;
  }
}

/** Content-Type of the protobuf `/openapi/v2` answer, as kube-openapi serves it (kubectl's Accept spells it `…v2@v1.0+protobuf`). */
export const OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

function pbString(field: number, value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(bytes.length), bytes]);
}

function pbMessage(field: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(body.length), body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/**
 * An empty OpenAPI v2 document (no paths, no definitions), in protobuf (gnostic `openapi_v2.Document`: 1 swagger,
 * 2 info{1 title, 2 version}, 8 paths) or JSON. kubectl fetches it when a kind is missing from OpenAPI v3: a 404
 * there makes `kubectl apply` fail with "failed to download openapi"; an empty document lets it go on to the REST
 * mapping and print the usual `no matches for kind`. Built-in patch strategies then come from kubectl's compiled-in
 * types, as they do when a type is absent from the document.
 */
export function openApiV2(protobuf: boolean): { body: Buffer; contentType: string } {
  if (protobuf) return { body: Buffer.concat([pbString(1, "2.0"), pbMessage(2, Buffer.concat([pbString(1, "Kubernetes"), pbString(2, "v1.32.0")])), pbMessage(8, Buffer.alloc(0))]), contentType: OPENAPI_V2_PROTOBUF };
  return { body: Buffer.from(JSON.stringify({ swagger: "2.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths: {}, definitions: {} })), contentType: "application/json" };
}
