/**
 * The admission half of every write: decoding checks, ObjectMeta cleanup, pruning with `fieldValidation`
 * (Strict/Warn/Ignore), defaulting and validation (through `api/validation.ts` for custom resources), name and
 * label syntax, and the built-in types' own normalisation (Secret `stringData`, Deployment defaults).
 */
import { celCauses } from "../../api/cel.js";
import { applyDefaults, dns1123LabelCauses, dns1123SubdomainCauses, prune, validateValue, type JSONSchemaProps } from "../../api/validation.js";
import { badRequest, invalid } from "./errors.js";
import type { Json, KObject, ResourceType } from "./types.js";
import { apiVersionOf } from "./types.js";
import { clone, isObject } from "./util.js";

/** Fields ObjectMeta has; anything else under `metadata` is unknown and pruned. */
export const OBJECT_META_FIELDS = new Set([
  "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
  "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
]);

/** `Strict`, `Warn` (default) or `Ignore`. */
export type FieldValidation = "Strict" | "Warn" | "Ignore";

/**
 * Parses the `fieldValidation` query value.
 * @throws ApiError 400 on anything but Strict/Warn/Ignore (or empty)
 */
export function parseFieldValidation(v: string | null): FieldValidation {
  if (v === null || v === "") return "Warn";
  if (v === "Strict" || v === "Warn" || v === "Ignore") return v;
  throw badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict", got "${v}"`);
}

type Cause = { reason: string; message: string; field: string };

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
// kube-apiserver: Namespace and Service names are DNS labels; Deployment, ReplicaSet, StatefulSet and
// DaemonSet names are DNS subdomains (apps validation uses NameIsDNSSubdomain); Jobs are held to 63
// by their job-name label.
const LABEL_NAMES = new Set(["namespaces", "services", "jobs"]);

/** Name, label and annotation syntax checks. Returns causes (empty = fine). */
export function metadataCauses(rt: ResourceType, o: KObject): Cause[] {
  const causes: Cause[] = [];
  const name: string = o.metadata?.name ?? "";
  // Custom resources: NameIsDNSSubdomain, as apiextensions-apiserver's customResourceValidator does.
  if (LABEL_NAMES.has(rt.resource) && !rt.custom) causes.push(...dns1123LabelCauses(name));
  else if (!(rt.resource === "events" && !rt.custom && /^[a-z0-9.:-]+$/i.test(name))) {
    // Events allow more, but every name clients generate fits a subdomain.
    causes.push(...dns1123SubdomainCauses(name));
  }
  for (const [k, v] of Object.entries(o.metadata?.labels ?? {})) {
    if (!LABEL_KEY.test(k) || k.split("/").pop()!.length > 63) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`, field: "metadata.labels" });
    if (typeof v !== "string" || !LABEL_VALUE.test(v) || v.length > 63) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`, field: `metadata.labels` });
  }
  for (const [k, v] of Object.entries(o.metadata?.annotations ?? {})) {
    if (typeof v !== "string") causes.push({ reason: "FieldValueTypeInvalid", message: `Invalid value: ${JSON.stringify(v)}: must be a string`, field: `metadata.annotations.${k}` });
  }
  return causes;
}

/** Result of {@link admitObject}: the object to store and the warnings to send. */
export interface Admitted {
  obj: KObject;
  warnings: string[];
}

/**
 * Checks and normalises a body-shaped object before the verb logic: kind/apiVersion, unknown-field pruning per
 * `fieldValidation`, CR defaulting. Does not validate (see {@link validateObject}); call it after the verb has
 * merged server-owned fields.
 * @throws ApiError 400 on a kind/apiVersion mismatch or (Strict) unknown fields
 */
export function admitObject(rt: ResourceType, body: KObject, fv: FieldValidation): Admitted {
  if (!isObject(body)) throw badRequest("the object provided is not a JSON object");
  const o = clone(body);
  const want = apiVersionOf(rt.group, rt.version);
  if (o.kind !== undefined && o.kind !== "" && o.kind !== rt.kind) {
    throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: the object kind "${o.kind}" does not match the resource kind "${rt.kind}"`);
  }
  if (o.apiVersion !== undefined && o.apiVersion !== "" && o.apiVersion !== want) {
    throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: the API version in the data (${o.apiVersion}) does not match the expected API version (${want})`);
  }
  o.apiVersion = want;
  o.kind = rt.kind;
  if (!isObject(o.metadata)) o.metadata = {};
  const unknown: string[] = [];
  for (const k of Object.keys(o.metadata)) {
    if (!OBJECT_META_FIELDS.has(k)) {
      unknown.push(`metadata.${k}`);
      delete o.metadata[k];
    }
  }
  let out = o;
  if (rt.custom && rt.schema) {
    const pruned = prune(rt.schema as JSONSchemaProps, o);
    out = pruned.value as KObject;
    unknown.push(...pruned.unknownFields);
  }
  if (unknown.length > 0 && fv === "Strict") {
    throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(", ")}`);
  }
  const warnings = fv === "Warn" ? unknown.map((u) => `unknown field "${u}"`) : [];
  if (rt.custom && rt.schema) out = applyDefaults(rt.schema as JSONSchemaProps, out);
  normaliseBuiltin(rt, out);
  return { obj: out, warnings };
}

/** Built-in normalisation: Secret stringData → data; Deployment `spec.replicas` default. */
function normaliseBuiltin(rt: ResourceType, o: KObject): void {
  if (rt.group === "" && rt.resource === "secrets") {
    if (isObject(o.stringData)) {
      o.data = { ...(o.data ?? {}) };
      for (const [k, v] of Object.entries(o.stringData)) o.data[k] = Buffer.from(String(v), "utf8").toString("base64");
    }
    delete o.stringData;
    o.type ??= "Opaque";
  }
  if (rt.group === "apps" && ["deployments", "replicasets", "statefulsets"].includes(rt.resource) && isObject(o.spec)) o.spec.replicas ??= 1;
  if (rt.group === "" && rt.resource === "namespaces") {
    o.spec = { finalizers: ["kubernetes"], ...(o.spec ?? {}) };
  }
}

/** Applies schema defaults to a stored custom resource on read (defaults added to a CRD later show up). */
export function defaultOnRead(rt: ResourceType, o: KObject): KObject {
  return rt.custom && rt.schema ? applyDefaults(rt.schema as JSONSchemaProps, o) : clone(o);
}

/**
 * Validates the final object: metadata syntax, then (CRs) the openAPIV3Schema and its
 * `x-kubernetes-validations` CEL rules (transition rules only when `old` is given).
 * @param old the stored object, on update
 * @throws ApiError 422 Invalid with field causes
 */
export function validateObject(rt: ResourceType, o: KObject, old?: KObject): void {
  const causes: Cause[] = metadataCauses(rt, o);
  if (rt.custom && rt.schema) {
    const body: Json = { ...o };
    delete body.metadata;
    delete body.apiVersion;
    delete body.kind;
    causes.push(...validateValue(rt.schema as JSONSchemaProps, body, ""));
    causes.push(...celCauses(rt.schema as JSONSchemaProps, o, old && applyDefaults(rt.schema as JSONSchemaProps, old)));
  }
  if (causes.length > 0) throw invalid(rt.group, rt.kind, o.metadata?.name ?? "", causes);
}
