/**
 * Checks a Celeriac manifest the way the API server admits it: defaulting, pruning of unknown fields
 * (reported, as `fieldValidation=Strict` does for kubectl), then the name (a DNS-1123 subdomain), schema
 * validation and the CRD's `x-kubernetes-validations` CEL rules (transition rules need the stored object
 * and are not checked offline).
 */
import { API_VERSION, GROUP } from "./constants.js";
import { schemaForKind, ALL_CRDS } from "./crd.js";
import { celCauses } from "./cel.js";
import { applyDefaults, dns1123SubdomainCauses, prune, validateValue, type FieldCause } from "./validation.js";

/** Outcome of checking one manifest. */
export interface ManifestCheck {
  /** Kind from the manifest (may be unknown). */
  kind: string;
  /** `metadata.name` (or `""`). */
  name: string;
  /** The object after defaulting and pruning (what the server would store). */
  object: Record<string, unknown>;
  /** Schema violations, field paths as kube-apiserver reports them. */
  causes: FieldCause[];
  /** Fields the schema does not declare (`spec.bogus`): kubectl's Strict field validation refuses these. */
  unknownFields: string[];
}

/** Celeriac kinds (Queue, Task, Schedule). */
export const CELERIAC_KINDS: readonly string[] = ALL_CRDS.map((c) => c.crd.spec.names.kind);

/**
 * Checks one manifest object.
 * @param obj a parsed manifest with apiVersion `celeriac.io/v1alpha1` and kind Queue, Task, Schedule or Workflow
 * @throws Error naming the field when apiVersion or kind is not a Celeriac one
 */
export function checkManifest(obj: Record<string, unknown>): ManifestCheck {
  const kind = String(obj.kind ?? "");
  const name = String((obj.metadata as { name?: unknown } | undefined)?.name ?? "");
  if (obj.apiVersion !== API_VERSION) {
    throw new Error(`apiVersion: Unsupported value: ${JSON.stringify(obj.apiVersion)}: use "${API_VERSION}" for ${GROUP} kinds`);
  }
  if (!CELERIAC_KINDS.includes(kind)) {
    throw new Error(`kind: Unsupported value: ${JSON.stringify(obj.kind)}: supported values: ${CELERIAC_KINDS.map((k) => `"${k}"`).join(", ")}`);
  }
  const schema = schemaForKind(kind);
  const pruned = prune(schema, obj);
  const object = applyDefaults(schema, pruned.value);
  const body = { ...object };
  delete body.metadata;
  delete body.apiVersion;
  delete body.kind;
  const causes = [...validateValue(schema, body), ...celCauses(schema, object)];
  const generateName = (obj.metadata as { generateName?: unknown } | undefined)?.generateName;
  if (name) causes.unshift(...dns1123SubdomainCauses(name));
  else if (!generateName) causes.unshift({ reason: "FieldValueRequired", field: "metadata.name", message: "Required value: name or generateName is required" });
  return { kind, name, object, causes, unknownFields: pruned.unknownFields };
}
