/**
 * Evaluation of a CRD schema's `x-kubernetes-validations` CEL rules, the way kube-apiserver does it
 * (apiextensions-apiserver `pkg/apiserver/schema/cel/validation.go`):
 *
 * - a rule is evaluated with `self` bound to the value at its schema node, only where that value is present;
 * - a rule that mentions `oldSelf` is a transition rule: evaluated on update only, where the old object has a
 *   value at the same path, with `oldSelf` bound to it;
 * - a failed rule is a `FieldValueInvalid` cause at the node's path (`<nil>` for the root), valued by the
 *   schema type: `spec: Invalid value: "object": <message>`; the default message is `failed rule: <rule>`;
 * - an evaluation error is reported as `<error> evaluating rule: <message or rule>`;
 * - integers (`type: integer`) are CEL `int`, numbers are `double`; at the root only `metadata.name`,
 *   `metadata.generateName`, `apiVersion` and `kind` are visible besides the schema's own fields.
 *
 * Expressions are parsed and evaluated by @marcbachmann/cel-js; parsed programs are cached per rule text.
 */
import { Environment } from "@marcbachmann/cel-js";
import type { FieldCause, JSONSchemaProps } from "./validation.js";

/** One `x-kubernetes-validations` entry. */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  fieldPath?: string;
}

const env = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });
const programs = new Map<string, ReturnType<Environment["parse"]>>();

function program(expr: string): ReturnType<Environment["parse"]> {
  let p = programs.get(expr);
  if (!p) {
    p = env.parse(expr);
    programs.set(expr, p);
  }
  return p;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Converts a JSON value to CEL values guided by the schema: integers become bigint (CEL int). */
function toCel(schema: JSONSchemaProps | undefined, v: unknown): unknown {
  if (typeof v === "number") return schema?.type === "integer" && Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map((x) => toCel(isObject(schema?.items) ? (schema.items as JSONSchemaProps) : undefined, x));
  if (isObject(v)) {
    const props = (schema?.properties ?? {}) as Record<string, JSONSchemaProps>;
    const ap = isObject(schema?.additionalProperties) ? (schema.additionalProperties as JSONSchemaProps) : undefined;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toCel(props[k] ?? ap, x);
    return out;
  }
  return v;
}

/** What kube shows for a node in `Invalid value: "<type>"`. */
function typeName(schema: JSONSchemaProps): string {
  if (typeof schema.type === "string" && schema.type) return schema.type;
  return "object";
}

function joinPath(prefix: string, segment: string | number): string {
  if (typeof segment === "number") return `${prefix}[${segment}]`;
  return prefix ? `${prefix}.${segment}` : segment;
}

function rulesOf(schema: JSONSchemaProps): ValidationRule[] {
  const r = schema["x-kubernetes-validations"];
  return Array.isArray(r) ? (r as ValidationRule[]) : [];
}

function isTransition(rule: ValidationRule): boolean {
  return /\boldSelf\b/.test(rule.rule);
}

function messageOf(rule: ValidationRule, vars: Record<string, unknown>): string {
  if (rule.messageExpression) {
    try {
      const m = program(rule.messageExpression)(vars);
      if (typeof m === "string" && m.trim() !== "") return m;
    } catch {
      // Falls back to message/rule, as kube-apiserver does when messageExpression fails.
    }
  }
  return rule.message ?? `failed rule: ${rule.rule}`;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();
}

function walk(schema: JSONSchemaProps, value: unknown, old: unknown, hasOld: boolean, path: string, root: boolean, causes: FieldCause[]): void {
  if (value === undefined || value === null) return;
  const rules = rulesOf(schema);
  if (rules.length > 0) {
    let self = toCel(schema, value);
    let oldSelf = hasOld ? toCel(schema, old) : undefined;
    if (root) {
      self = rootView(self);
      if (hasOld) oldSelf = rootView(oldSelf);
    }
    for (const rule of rules) {
      if (isTransition(rule) && !hasOld) continue;
      const vars: Record<string, unknown> = hasOld ? { self, oldSelf } : { self };
      const field = rule.fieldPath ? joinPath(path, rule.fieldPath.replace(/^\./, "")) : path || "<nil>";
      const reason = rule.reason ?? "FieldValueInvalid";
      let ok: unknown;
      try {
        ok = program(rule.rule)(vars);
      } catch (e) {
        causes.push({ reason: "FieldValueInvalid", field, message: `Invalid value: "${typeName(schema)}": ${firstLine(e)} evaluating rule: ${rule.message ?? rule.rule}` });
        continue;
      }
      if (ok !== true) {
        const msg = messageOf(rule, vars);
        const body = reason === "FieldValueForbidden" ? `Forbidden: ${msg}` : reason === "FieldValueRequired" ? `Required value: ${msg}` : reason === "FieldValueDuplicate" ? `Duplicate value: ${msg}` : `Invalid value: "${typeName(schema)}": ${msg}`;
        causes.push({ reason, field, message: body });
      }
    }
  }
  if (isObject(value)) {
    const props = (schema.properties ?? {}) as Record<string, JSONSchemaProps>;
    const ap = isObject(schema.additionalProperties) ? (schema.additionalProperties as JSONSchemaProps) : undefined;
    for (const [k, v] of Object.entries(value)) {
      if (root && (k === "metadata" || k === "apiVersion" || k === "kind")) continue;
      const sub = props[k] ?? ap;
      if (!sub) continue;
      const oldHas = hasOld && isObject(old) && k in old;
      walk(sub, v, oldHas ? (old as Record<string, unknown>)[k] : undefined, oldHas, joinPath(path, k), false, causes);
    }
  } else if (Array.isArray(value) && isObject(schema.items)) {
    // Old list items correlate only for map/set lists in kube; atomic lists get no oldSelf.
    value.forEach((item, i) => walk(schema.items as JSONSchemaProps, item, undefined, false, joinPath(path, i), false, causes));
  }
}

/** At the root, kube exposes only apiVersion, kind, metadata.name and metadata.generateName of ObjectMeta. */
function rootView(v: unknown): unknown {
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = { ...v };
  const m = isObject(v.metadata) ? v.metadata : {};
  const meta: Record<string, unknown> = {};
  if (m.name !== undefined) meta.name = m.name;
  if (m.generateName !== undefined) meta.generateName = m.generateName;
  out.metadata = meta;
  return out;
}

/**
 * Evaluates every `x-kubernetes-validations` rule of a CRD version's schema.
 * @param schema the openAPIV3Schema (root)
 * @param obj the whole object after defaulting (apiVersion, kind, metadata, spec, status)
 * @param old the stored object on update (enables transition rules), undefined on create
 * @returns causes in kube-apiserver format; empty when every rule holds
 * @throws ParseError from the CEL library for a rule that does not parse (a malformed CRD, not bad input)
 */
export function celCauses(schema: JSONSchemaProps, obj: unknown, old?: unknown): FieldCause[] {
  const causes: FieldCause[] = [];
  walk(schema, obj, old, old !== undefined, "", true, causes);
  return causes;
}

/**
 * Checks that every rule of a schema parses, for CRD admission.
 * @param path field path of the schema in the CRD
 * @returns causes naming the rule that does not compile
 */
export function celCompileCauses(schema: JSONSchemaProps, path: string): FieldCause[] {
  const causes: FieldCause[] = [];
  const visit = (node: unknown, p: string): void => {
    if (!isObject(node)) return;
    rulesOf(node).forEach((r, i) => {
      try {
        program(r.rule);
      } catch (e) {
        causes.push({ reason: "FieldValueInvalid", field: `${p}.x-kubernetes-validations[${i}].rule`, message: `Invalid value: ${JSON.stringify(r.rule)}: compilation failed: ${firstLine(e)}` });
      }
    });
    if (isObject(node.properties)) for (const [k, sub] of Object.entries(node.properties)) visit(sub, `${p}.properties[${k}]`);
    if (isObject(node.items)) visit(node.items, `${p}.items`);
    if (isObject(node.additionalProperties)) visit(node.additionalProperties, `${p}.additionalProperties`);
  };
  visit(schema, path);
  return causes;
}
