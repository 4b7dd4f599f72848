/**
 * Small TypeBox builders that produce *structural* OpenAPI v3 schemas, the subset Kubernetes CRDs accept:
 * every node typed, enums as `type: string` + `enum` (not TypeBox's `anyOf` of literals), maps as
 * `additionalProperties`, free-form JSON as `x-kubernetes-preserve-unknown-fields`.
 *
 * Rules follow the Kubernetes docs, "Specifying a structural schema"
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
 */
import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from "@sinclair/typebox";

/**
 * A string enum: `{type: "string", enum: [...]}`.
 * @param values the allowed values, in the order `kubectl explain` shows them
 * @param options description, default, …
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

/** Pattern of a Go `time.ParseDuration` string such as `90s`, `1h30m`, `500ms`. */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/**
 * A duration string in Go syntax (`30s`, `1h30m`, `500ms`), validated by pattern.
 * @param options description (say what the duration measures), default
 */
export function Duration(options: SchemaOptions = {}): TUnsafe<string> {
  return Type.Unsafe<string>({ ...options, type: "string", pattern: DURATION_PATTERN });
}

/** A map of string to string (`additionalProperties: {type: string}`), e.g. labels, nodeSelector. */
export function StringMap(options: SchemaOptions = {}): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({ ...options, type: "object", additionalProperties: { type: "string" } });
}

/**
 * A map of string to `value` (`additionalProperties: <value>`), for CRD fields: a structural schema
 * cannot use `patternProperties` (what TypeBox's `Type.Record` emits), and kube-apiserver refuses
 * such a CRD and prunes such fields (CRD docs, "Specifying a structural schema").
 */
export function MapOf<T extends TSchema>(value: T, options: SchemaOptions = {}): TUnsafe<Record<string, Static<T>>> {
  return Type.Unsafe<Record<string, Static<T>>>({ ...options, type: "object", additionalProperties: value });
}

/**
 * Any JSON value, null included, kept as is (`x-kubernetes-preserve-unknown-fields: true`, no type,
 * `nullable: true`). kube-apiserver drops a `null` whose schema is not nullable and has no default
 * (`PruneNonNullableNullsWithoutDefaults`); `nullable` keeps `result: null` and `args: [null]`, and
 * nulls deeper inside are kept because the preserved subtree has no schema.
 */
export function AnyJson(options: SchemaOptions = {}): TUnsafe<unknown> {
  return Type.Unsafe<unknown>({ ...options, nullable: true, "x-kubernetes-preserve-unknown-fields": true });
}

/** A JSON object whose fields are kept as they are (typed `object`, unknown fields preserved). */
export function FreeObject<T = Record<string, unknown>>(options: SchemaOptions = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ ...options, type: "object", "x-kubernetes-preserve-unknown-fields": true });
}

/** Kubernetes resource quantity (`x-kubernetes-int-or-string`), e.g. `500m`, `1Gi`, `2`. */
export function Quantity(options: SchemaOptions = {}): TUnsafe<string | number> {
  return Type.Unsafe<string | number>({
    ...options,
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
    pattern: "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
  });
}

/** An RFC 3339 timestamp string (`format: date-time`), e.g. `2026-11-23T10:00:00Z`. */
export function Timestamp(options: SchemaOptions = {}): TUnsafe<string> {
  return Type.Unsafe<string>({ ...options, type: "string", format: "date-time" });
}

/**
 * The `metav1.Condition` shape, as a list-map keyed by `type`
 * (Kubernetes API conventions, "Typical status properties").
 */
export function Conditions(description: string) {
  return Type.Array(
    Type.Object(
      {
        type: Type.String({ description: "Condition type, e.g. Ready.", maxLength: 316 }),
        status: StringEnum(["True", "False", "Unknown"] as const, { description: "True, False or Unknown." }),
        reason: Type.String({ description: "CamelCase reason for the last transition.", maxLength: 1024 }),
        message: Type.String({ description: "Human-readable detail of the last transition.", maxLength: 32768 }),
        lastTransitionTime: Timestamp({ description: "When status last changed (RFC 3339)." }),
        observedGeneration: Type.Optional(
          Type.Integer({ minimum: 0, description: "The .metadata.generation the condition was computed from." }),
        ),
      },
      { description: "One condition (metav1.Condition)." },
    ),
    { description, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
  );
}

/** Type-level helper: the JSON type a schema describes. Re-exported from TypeBox. */
export type { Static } from "@sinclair/typebox";
/** Any TypeBox schema. */
export type Schema = TSchema;
