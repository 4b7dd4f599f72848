/**
 * Validation, defaulting and pruning of JSON values against a structural OpenAPI v3 schema (a CRD's
 * `openAPIV3Schema` or the task message schema), reporting errors the way kube-apiserver does:
 * `spec.retry.maxAttempts: Invalid value: 0: spec.retry.maxAttempts in body should be greater than or equal to 1`.
 *
 * Validation is done by Ajv (draft-07 keywords plus OpenAPI's `nullable` and boolean `exclusive*`,
 * which are rewritten before compiling); defaulting and pruning follow the Kubernetes rules in
 * "Defaulting and nullable" and "Field pruning" of the CRD docs
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/).
 * Pure except for an internal cache of compiled schemas.
 */
import { jsonCopy } from "./json-copy.js";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { durationHint, scheduleHint } from "./hints.js";
import { SCHEDULE_PATTERN } from "./schedule.js";
import { DURATION_PATTERN } from "./schema-helpers.js";

/** One node of an OpenAPI v3 (CRD) schema. */
export interface JSONSchemaProps {
  [k: string]: unknown;
}

/** A field-level validation error, shaped like `metav1.StatusCause`. */
export interface FieldCause {
  /** Upstream cause reason. */
  reason:
    | "FieldValueRequired"
    | "FieldValueInvalid"
    | "FieldValueNotSupported"
    | "FieldValueTypeInvalid"
    | "FieldValueTooLong"
    | "FieldValueTooMany"
    | "FieldValueDuplicate"
    | "FieldValueForbidden";
  /** Field path, dotted with `[i]` for array items, e.g. `spec.args[0]`; `""` for the root. */
  field: string;
  /** Message without the field prefix, e.g. `Required value`. */
  message: string;
}

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;

const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false, useDefaults: false, coerceTypes: false });
addFormats(ajv);
// Kubernetes accepts these formats; validate the common ones, accept the rest as annotations.
for (const f of ["int32", "int64", "float", "double", "byte", "binary", "password", "quantity", "cidr", "mac", "datetime", "bsonobjectid", "isbn", "creditcard", "ssn", "hexcolor", "rgbcolor"]) {
  ajv.addFormat(f, true);
}

const compiled = new WeakMap<object, ValidateFunction>();

/** Rewrites OpenAPI 3.0 boolean `exclusiveMaximum`/`exclusiveMinimum` into draft-07 numeric form. */
function toAjvSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toAjvSchema);
  if (node === null || typeof node !== "object") return node;
  const src = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === "default" || k === "example" || k === "enum") out[k] = v;
    else out[k] = toAjvSchema(v);
  }
  if (src.exclusiveMaximum === true && typeof src.maximum === "number") {
    out.exclusiveMaximum = src.maximum;
    delete out.maximum;
  } else if (typeof src.exclusiveMaximum === "boolean") delete out.exclusiveMaximum;
  if (src.exclusiveMinimum === true && typeof src.minimum === "number") {
    out.exclusiveMinimum = src.minimum;
    delete out.minimum;
  } else if (typeof src.exclusiveMinimum === "boolean") delete out.exclusiveMinimum;
  // Untyped nodes admit any value, null included; Ajv refuses `nullable` without `type`.
  if (src.nullable !== undefined && src.type === undefined) delete out.nullable;
  // An enum on a nullable field must admit null, as Kubernetes does.
  if (src.nullable === true && Array.isArray(src.enum) && !src.enum.includes(null)) out.enum = [...src.enum, null];
  return out;
}

function validatorFor(schema: JSONSchemaProps): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(toAjvSchema(schema) as object);
    compiled.set(schema, fn);
  }
  return fn;
}

function joinPath(prefix: string, segment: string | number): string {
  if (typeof segment === "number") return `${prefix}[${segment}]`;
  return prefix ? `${prefix}.${segment}` : segment;
}

function instancePathToField(prefix: string, instancePath: string): string {
  let field = prefix;
  if (!instancePath) return field;
  for (const raw of instancePath.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    field = /^\d+$/.test(seg) ? joinPath(field, Number(seg)) : joinPath(field, seg);
  }
  return field;
}

function valueAt(root: unknown, instancePath: string): unknown {
  let cur = root;
  if (!instancePath) return cur;
  for (const raw of instancePath.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** Go-style rendering of a value in an error message: strings quoted, numbers bare, compound values by type. */
function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return '"array"';
  return '"object"';
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** A hint for a value refused by one of Celeriac's own patterns (durations, schedules); see hints.ts. */
function patternHint(pattern: string, value: string): string | undefined {
  if (pattern === DURATION_PATTERN) return durationHint(value);
  if (pattern === SCHEDULE_PATTERN) return scheduleHint(value);
  return undefined;
}

function causeFor(err: ErrorObject, prefix: string, root: unknown): FieldCause | undefined {
  const field = instancePathToField(prefix, err.instancePath);
  const v = valueAt(root, err.instancePath);
  const p = err.params as Record<string, unknown>;
  const inBody = `${field || "body"} in body`;
  switch (err.keyword) {
    case "required":
      return { reason: "FieldValueRequired", field: joinPath(field, String(p.missingProperty)), message: "Required value" };
    case "type":
      return { reason: "FieldValueTypeInvalid", field, message: `Invalid value: "${jsonType(v)}": ${inBody} must be of type ${String(p.type)}: "${jsonType(v)}"` };
    case "enum": {
      const allowed = (p.allowedValues as unknown[]).filter((x) => x !== null).map((x) => JSON.stringify(x)).join(", ");
      return { reason: "FieldValueNotSupported", field, message: `Unsupported value: ${show(v)}: supported values: ${allowed}` };
    }
    case "const":
      return { reason: "FieldValueNotSupported", field, message: `Unsupported value: ${show(v)}: supported values: ${JSON.stringify(p.allowedValue)}` };
    case "maximum":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should be less than or equal to ${String(p.limit)}` };
    case "minimum":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should be greater than or equal to ${String(p.limit)}` };
    case "exclusiveMaximum":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should be less than ${String(p.limit)}` };
    case "exclusiveMinimum":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should be greater than ${String(p.limit)}` };
    case "multipleOf":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should be a multiple of ${String(p.multipleOf)}` };
    case "maxLength":
      return { reason: "FieldValueTooLong", field, message: `Too long: may not be more than ${String(p.limit)} bytes` };
    case "minLength":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should be at least ${String(p.limit)} chars long` };
    case "pattern": {
      const hint = typeof v === "string" ? patternHint(String(p.pattern), v) : undefined;
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should match '${String(p.pattern)}'${hint ? `: ${hint}` : ""}` };
    }
    case "format":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} must be of type ${String(p.format)}: ${show(v)}` };
    case "maxItems":
      return { reason: "FieldValueTooMany", field, message: `Too many: ${Array.isArray(v) ? v.length : "?"}: must have at most ${String(p.limit)} items` };
    case "minItems":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should have at least ${String(p.limit)} items` };
    case "uniqueItems":
      return { reason: "FieldValueDuplicate", field: joinPath(field, Number(p.j)), message: `Duplicate value: ${show(Array.isArray(v) ? v[Number(p.j)] : v)}` };
    case "maxProperties":
      return { reason: "FieldValueTooMany", field, message: `Too many: must have at most ${String(p.limit)} items` };
    case "minProperties":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} should have at least ${String(p.limit)} properties` };
    case "not":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: must not validate the schema (not)` };
    case "anyOf":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} must validate at least one schema (anyOf)` };
    case "oneOf":
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${inBody} must validate one and only one schema (oneOf)` };
    case "additionalProperties":
      return { reason: "FieldValueForbidden", field: joinPath(field, String(p.additionalProperty)), message: "Forbidden: unknown field" };
    default:
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${show(v)}: ${err.message ?? err.keyword}` };
  }
}

/**
 * Validates `value` against `schema`.
 * @param schema a structural OpenAPI v3 schema node (compiled once per object identity, then cached)
 * @param value any JSON value
 * @param path field path of `value` itself, prefixed to every cause (default `""`)
 * @returns the causes in upstream format; an empty array means valid
 * @throws Error if Ajv cannot compile the schema (a malformed schema, not bad input)
 */
export function validateValue(schema: JSONSchemaProps, value: unknown, path = ""): FieldCause[] {
  const fn = validatorFor(schema);
  if (fn(value)) return listTypeCauses(schema, value, path);
  const causes: FieldCause[] = [];
  const seen = new Set<string>();
  for (const err of fn.errors ?? []) {
    // Errors inside an anyOf/oneOf/not branch are explained by the combinator's own error.
    if (/\/(anyOf|oneOf|not)\/.+/.test(err.schemaPath)) continue;
    const cause = causeFor(err, path, value);
    if (!cause) continue;
    const key = `${cause.field}\u0000${cause.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      causes.push(cause);
    }
  }
  return [...causes, ...listTypeCauses(schema, value, path)];
}

/**
 * Duplicates in lists the schema marks `x-kubernetes-list-type: set` (equal items) or `map` (items
 * equal in their `x-kubernetes-list-map-keys`), as kube-apiserver reports them
 * (apiextensions-apiserver `listtype` validation): `<field>[i]: Duplicate value: "a"` for a set,
 * `Duplicate value: map[string]interface {}{"name":"a"}` for a map.
 */
function listTypeCauses(schema: JSONSchemaProps, value: unknown, path: string): FieldCause[] {
  const out: FieldCause[] = [];
  const walk = (s: JSONSchemaProps | undefined, v: unknown, field: string): void => {
    if (!s) return;
    if (Array.isArray(v)) {
      const type = s["x-kubernetes-list-type"];
      if (type === "set" || type === "map") {
        const keys = (s["x-kubernetes-list-map-keys"] as string[] | undefined) ?? [];
        const seen = new Set<string>();
        v.forEach((item, i) => {
          const id = type === "set" ? JSON.stringify(item) : JSON.stringify(keys.map((k) => (isObject(item) ? item[k] : undefined)));
          if (seen.has(id)) {
            const shown = type === "set" ? show(item) : `map[string]interface {}{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(isObject(item) ? item[k] : null)}`).join(", ")}}`;
            out.push({ reason: "FieldValueDuplicate", field: joinPath(field, i), message: `Duplicate value: ${shown}` });
          }
          seen.add(id);
        });
      }
      if (isObject(s.items)) v.forEach((item, i) => walk(s.items as JSONSchemaProps, item, joinPath(field, i)));
    } else if (isObject(v)) {
      const props = s.properties as Record<string, JSONSchemaProps> | undefined;
      for (const [k, x] of Object.entries(v)) walk(props?.[k] ?? (isObject(s.additionalProperties) ? (s.additionalProperties as JSONSchemaProps) : undefined), x, joinPath(field, k));
    }
  };
  walk(schema, value, path);
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

const clone = jsonCopy;

function defaultInto(schema: JSONSchemaProps | undefined, value: unknown): void {
  if (!schema) return;
  if (isObject(value)) {
    const props = schema.properties as Record<string, JSONSchemaProps> | undefined;
    if (props) {
      for (const [k, sub] of Object.entries(props)) {
        if (value[k] === undefined && sub.default !== undefined) value[k] = clone(sub.default);
        defaultInto(sub, value[k]);
      }
    }
    const ap = schema.additionalProperties;
    if (isObject(ap)) for (const k of Object.keys(value)) if (!props || !(k in props)) defaultInto(ap, value[k]);
  } else if (Array.isArray(value) && isObject(schema.items)) {
    for (const item of value) defaultInto(schema.items as JSONSchemaProps, item);
  }
}

/**
 * Applies `default`s for absent fields, Kubernetes style: a default applies only where its parent
 * object exists (give the parent `default: {}` to create it), recursively, after any outer default.
 * @returns a deep copy of `value` with defaults applied; `value` is not modified
 */
export function applyDefaults<T>(schema: JSONSchemaProps, value: T): T {
  const out = clone(value);
  defaultInto(schema, out);
  return out;
}

function pruneInto(schema: JSONSchemaProps, value: unknown, path: string, removed: string[], isRoot: boolean): unknown {
  if (schema["x-kubernetes-preserve-unknown-fields"] === true && !schema.properties && !schema.items && !schema.additionalProperties) {
    return value;
  }
  // A value of the wrong type is left whole for validation to name ("must be of type array"), rather than
  // reported field by field as unknown (`unknown field "spec.args.image"` would point the wrong way).
  if (isObject(value) && schema.type !== undefined && schema.type !== "object") return value;
  if (isObject(value)) {
    const props = (schema.properties ?? {}) as Record<string, JSONSchemaProps>;
    const ap = schema.additionalProperties;
    const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const fieldPath = joinPath(path, k);
      if (isRoot && (k === "apiVersion" || k === "kind" || k === "metadata")) {
        out[k] = v;
        continue;
      }
      const sub = props[k] ?? (isObject(ap) ? (ap as JSONSchemaProps) : undefined);
      if (sub) {
        if (v === null && sub.nullable !== true) continue; // Kubernetes drops nulls on non-nullable fields
        out[k] = pruneInto(sub, v, fieldPath, removed, false);
      } else if (ap === true || preserve) {
        out[k] = v;
      } else {
        removed.push(fieldPath);
      }
    }
    return out;
  }
  if (Array.isArray(value) && isObject(schema.items)) {
    return value.map((item, i) => pruneInto(schema.items as JSONSchemaProps, item, joinPath(path, i), removed, false));
  }
  return value;
}

/**
 * Removes fields the structural schema does not declare (Kubernetes pruning). Kept: root
 * `apiVersion`/`kind`/`metadata`, `x-kubernetes-preserve-unknown-fields` subtrees, `additionalProperties`
 * maps. Nulls on non-nullable fields are dropped too. `metadata` internals are not touched.
 * @param schema the root schema (the CRD version's openAPIV3Schema)
 * @returns a pruned deep copy and the dotted paths of the removed fields (e.g. `spec.bogus`)
 */
export function prune<T>(schema: JSONSchemaProps, value: T): { value: T; unknownFields: string[] } {
  const removed: string[] = [];
  const out = pruneInto(schema, clone(value), "", removed, true) as T;
  return { value: out, unknownFields: removed };
}

/** Schema keywords kube-apiserver refuses in a CRD (`patternProperties is not supported`, …). */
const UNSUPPORTED_IN_CRD = ["patternProperties", "additionalItems", "dependencies", "$ref", "definitions"];

const STRUCTURAL_FORBIDDEN_IN_JUNCTORS = ["description", "type", "default", "additionalProperties", "nullable"];

function checkNode(node: JSONSchemaProps, path: string, causes: FieldCause[], inJunctor: boolean): void {
  if (!isObject(node)) return;
  const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
  const intOrString = node["x-kubernetes-int-or-string"] === true;
  if (!inJunctor && !node.type && !preserve && !intOrString) {
    causes.push({ reason: "FieldValueRequired", field: `${path}.type`, message: "Required value: must not be empty for specified object fields" });
  }
  if (inJunctor) {
    for (const k of STRUCTURAL_FORBIDDEN_IN_JUNCTORS) {
      if (k in node) causes.push({ reason: "FieldValueForbidden", field: `${path}.${k}`, message: "Forbidden: must be empty to be structural" });
    }
  }
  if (node.properties && node.additionalProperties !== undefined && node.additionalProperties !== false) {
    causes.push({ reason: "FieldValueForbidden", field: `${path}.additionalProperties`, message: "Forbidden: additionalProperties and properties are mutual exclusive" });
  }
  // kube-apiserver's ValidateCustomResourceDefinitionOpenAPISchema: keywords a CRD schema may not use
  for (const k of UNSUPPORTED_IN_CRD) {
    if (k in node) causes.push({ reason: "FieldValueForbidden", field: `${path}.${k}`, message: `Forbidden: ${k} is not supported` });
  }
  if (node.type === "array" && !node.items) {
    causes.push({ reason: "FieldValueRequired", field: `${path}.items`, message: "Required value: must be specified" });
  }
  const props = node.properties as Record<string, JSONSchemaProps> | undefined;
  if (props) for (const [k, sub] of Object.entries(props)) checkNode(sub, `${path}.properties[${k}]`, causes, inJunctor);
  if (isObject(node.items)) checkNode(node.items as JSONSchemaProps, `${path}.items`, causes, inJunctor);
  if (isObject(node.additionalProperties)) checkNode(node.additionalProperties as JSONSchemaProps, `${path}.additionalProperties`, causes, inJunctor);
  for (const j of ["allOf", "anyOf", "oneOf"]) {
    const list = node[j];
    if (Array.isArray(list)) list.forEach((sub, i) => checkNode(sub as JSONSchemaProps, `${path}.${j}[${i}]`, causes, !intOrString));
  }
  if (isObject(node.not)) checkNode(node.not as JSONSchemaProps, `${path}.not`, causes, true);
}

/**
 * Checks that a CRD version's schema is structural (every node typed unless it preserves unknown
 * fields or is int-or-string; no type/description/default/nullable/additionalProperties inside
 * allOf/anyOf/oneOf/not; arrays have items; properties and additionalProperties not both).
 * @param schema the `openAPIV3Schema`
 * @param path field path of the schema in the CRD, e.g. `spec.versions[0].schema.openAPIV3Schema`
 * @returns causes; empty when structural
 */
export function checkStructural(schema: JSONSchemaProps, path: string): FieldCause[] {
  const causes: FieldCause[] = [];
  checkNode(schema, path, causes, false);
  return causes;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * `metadata.name` causes for a name that is not a DNS-1123 subdomain, worded as kube-apiserver's
 * `ValidateObjectMeta` with `NameIsDNSSubdomain` (what it uses for custom resources and most built-ins):
 * one cause for the length (over 253), one for the syntax.
 * @param name the object's name (non-empty; emptiness is reported separately)
 */
export function dns1123SubdomainCauses(name: string, field = "metadata.name"): FieldCause[] {
  const causes: FieldCause[] = [];
  if (name.length > 253) causes.push({ reason: "FieldValueInvalid", field, message: `Invalid value: ${JSON.stringify(name)}: must be no more than 253 characters` });
  if (!DNS1123_SUBDOMAIN.test(name)) {
    causes.push({
      reason: "FieldValueInvalid",
      field,
      message: `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    });
  }
  return causes;
}

/**
 * `metadata.name` causes for a name that is not a DNS-1123 label (`NameIsDNSLabel`: namespaces, Deployments…).
 * @param name the object's name
 */
export function dns1123LabelCauses(name: string, field = "metadata.name"): FieldCause[] {
  const causes: FieldCause[] = [];
  if (name.length > 63) causes.push({ reason: "FieldValueInvalid", field, message: `Invalid value: ${JSON.stringify(name)}: must be no more than 63 characters` });
  if (!DNS1123_LABEL.test(name)) {
    causes.push({
      reason: "FieldValueInvalid",
      field,
      message: `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
    });
  }
  return causes;
}

/**
 * The message of a 422 Invalid `Status`, upstream format:
 * `Task.celeriac.io "x" is invalid: spec.queue: Required value`, or `…is invalid: [a, b]` for several.
 * @param kind the Kind, e.g. `Task`
 * @param group the API group (`""` for core)
 * @param name the object's name
 * @param causes at least one cause
 */
export function formatInvalidMessage(kind: string, group: string, name: string, causes: FieldCause[]): string {
  const qualified = group ? `${kind}.${group}` : kind;
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const body = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
  return `${qualified} "${name}" is invalid: ${body}`;
}
