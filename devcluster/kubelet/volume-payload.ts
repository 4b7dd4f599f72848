/**
 * What the files of a Secret, ConfigMap, downward-API or projected volume should be: path → bytes and
 * mode. Pure: the Secret/ConfigMap data (or its absence) and the Pod come in, the payload comes out.
 *
 * The rules are upstream's (`pkg/volume/secret`, `pkg/volume/configmap`, `pkg/volume/downwardapi`,
 * `pkg/volume/projected`, `MakePayload` in each): without `items` every key becomes a file named after
 * the key; with `items` only the listed keys, at their `path`; a listed key that is missing fails the
 * mount unless the source is `optional`; a missing Secret/ConfigMap fails the mount unless `optional`,
 * in which case the volume is empty; file mode = the item's `mode`, else the source's `defaultMode`,
 * else 0644. Paths are validated like the atomic writer's `validatePath`.
 */
import type {
  V1ConfigMapVolumeSource,
  V1DownwardAPIVolumeSource,
  V1KeyToPath,
  V1Pod,
  V1ProjectedVolumeSource,
  V1SecretVolumeSource,
} from "@kubernetes/client-node";
import { ContainerConfigError, podFieldValue } from "./env.js";

/** One file of a volume: its bytes and its permission bits (e.g. 0o644). */
export interface FileProjection {
  data: Buffer;
  mode: number;
}

/** A volume's files, keyed by relative path (`a`, `dir/b`). */
export type Payload = Map<string, FileProjection>;

/** Data of a Secret or ConfigMap as bytes (Secret `data` decoded; ConfigMap `data` + `binaryData`); undefined = not found. */
export type SourceData = Record<string, Buffer> | undefined;

/** Upstream's default `defaultMode` for secret, configMap, downwardAPI and projected volumes (0644). */
export const DEFAULT_VOLUME_MODE = 0o644;

/**
 * A volume could not be set up; the Pod keeps waiting (`ContainerCreating`) and a `FailedMount` Event
 * carries `MountVolume.SetUp failed for volume "<volume>" : <message>`.
 */
export class VolumeSetupError extends Error {
  override readonly name = "VolumeSetupError";
  constructor(
    /** The volume's name in `spec.volumes`. */
    readonly volume: string,
    message: string,
  ) {
    super(message);
  }

  /** The Event message, as the kubelet words it. */
  eventMessage(): string {
    return `MountVolume.SetUp failed for volume "${this.volume}" : ${this.message}`;
  }
}

/**
 * Checks a file mode from the spec (`defaultMode` or an item's `mode`; decimal in JSON, e.g. 420 = 0644).
 * @throws VolumeSetupError outside 0–0777, naming the field
 */
function checkMode(volume: string, field: string, mode: number | undefined, dflt: number): number {
  if (mode === undefined || mode === null) return dflt;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new VolumeSetupError(volume, `${field} ${mode} is not a file mode: use a value between 0 and 0777 (decimal 0–511)`);
  }
  return mode;
}

/**
 * Validates a path inside a volume like upstream's atomic writer: relative, non-empty, no `..` element,
 * not starting with `..` (reserved for the writer's own `..data` and timestamped dirs), elements ≤ 255
 * characters, the whole ≤ 4096.
 * @returns the path with `.` elements and duplicate slashes removed
 * @throws VolumeSetupError naming the path and the rule
 */
export function validateVolumePath(volume: string, path: string): string {
  if (path === "") throw new VolumeSetupError(volume, "invalid path: must not be empty");
  if (path.startsWith("/")) throw new VolumeSetupError(volume, `invalid path: must be relative path: ${path}`);
  if (path.length > 4096) throw new VolumeSetupError(volume, "invalid path: must be less than or equal to 4096 characters");
  const items = path.split("/").filter((s) => s !== "" && s !== ".");
  for (const item of items) {
    if (item === "..") throw new VolumeSetupError(volume, `invalid path: must not contain '..': ${path}`);
    if (item.length > 255) throw new VolumeSetupError(volume, "invalid path: filenames must be less than or equal to 255 characters");
  }
  if (items.length === 0) throw new VolumeSetupError(volume, `invalid path: must name a file: ${path}`);
  if ((items[0] as string).startsWith("..")) throw new VolumeSetupError(volume, `invalid path: must not start with '..': ${path}`);
  return items.join("/");
}

function put(volume: string, out: Payload, path: string, file: FileProjection): void {
  out.set(validateVolumePath(volume, path), file);
}

/** Secret/ConfigMap keys → files (upstream `MakePayload`). */
function keyedPayload(
  volume: string,
  kind: "secret" | "configmap",
  data: Record<string, Buffer>,
  items: V1KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean,
  out: Payload,
): void {
  if (!items || items.length === 0) {
    for (const [key, bytes] of Object.entries(data)) put(volume, out, key, { data: bytes, mode: defaultMode });
    return;
  }
  for (const [i, item] of items.entries()) {
    const bytes = data[item.key];
    if (bytes === undefined) {
      if (optional) continue;
      throw new VolumeSetupError(volume, kind === "secret" ? `references non-existent secret key: ${item.key}` : `configmap references non-existent config key: ${item.key}`);
    }
    put(volume, out, item.path, { data: bytes, mode: checkMode(volume, `items[${i}].mode`, item.mode, defaultMode) });
  }
}

/**
 * The files of a `secret` volume.
 * @param volume the volume's name (for errors)
 * @param src `spec.volumes[].secret`
 * @param secret the Secret's decoded data, or undefined when it does not exist
 * @throws VolumeSetupError for a missing non-optional Secret or key, a bad mode or path
 */
export function secretPayload(volume: string, src: V1SecretVolumeSource, secret: SourceData): Payload {
  const out: Payload = new Map();
  const mode = checkMode(volume, "secret.defaultMode", src.defaultMode, DEFAULT_VOLUME_MODE);
  if (!secret) {
    if (src.optional) return out;
    throw new VolumeSetupError(volume, `secret "${src.secretName ?? ""}" not found`);
  }
  keyedPayload(volume, "secret", secret, src.items, mode, src.optional === true, out);
  return out;
}

/**
 * The files of a `configMap` volume (`data` and `binaryData` keys alike).
 * @throws VolumeSetupError for a missing non-optional ConfigMap or key, a bad mode or path
 */
export function configMapPayload(volume: string, src: V1ConfigMapVolumeSource, configMap: SourceData): Payload {
  const out: Payload = new Map();
  const mode = checkMode(volume, "configMap.defaultMode", src.defaultMode, DEFAULT_VOLUME_MODE);
  if (!configMap) {
    if (src.optional) return out;
    throw new VolumeSetupError(volume, `configmap "${src.name ?? ""}" not found`);
  }
  keyedPayload(volume, "configmap", configMap, src.items, mode, src.optional === true, out);
  return out;
}

/** `metadata.labels`/`annotations` as upstream's `fieldpath.FormatMap`: sorted `key="value"` lines. */
function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify((m as Record<string, string>)[k])}`)
    .join("\n");
}

/** A downward-API field's file content. */
function downwardValue(volume: string, pod: V1Pod, fieldPath: string): string {
  if (fieldPath === "metadata.labels") return formatMap(pod.metadata?.labels);
  if (fieldPath === "metadata.annotations") return formatMap(pod.metadata?.annotations);
  try {
    return podFieldValue(pod, fieldPath);
  } catch (err) {
    if (err instanceof ContainerConfigError) throw new VolumeSetupError(volume, err.message);
    throw err;
  }
}

/**
 * The files of a `downwardAPI` volume: each item's `fieldRef` (`metadata.name`, `namespace`, `uid`,
 * `labels`, `annotations`, `labels['k']`, `annotations['k']`, and the fields env supports).
 * `resourceFieldRef` is not supported.
 * @throws VolumeSetupError for an unsupported field, a bad mode or path
 */
export function downwardApiPayload(volume: string, src: V1DownwardAPIVolumeSource, pod: V1Pod, out: Payload = new Map()): Payload {
  const mode = checkMode(volume, "downwardAPI.defaultMode", src.defaultMode, DEFAULT_VOLUME_MODE);
  for (const [i, item] of (src.items ?? []).entries()) {
    if (!item.fieldRef) throw new VolumeSetupError(volume, `items[${i}] (${item.path}): only fieldRef is supported by the local kubelet, not resourceFieldRef`);
    put(volume, out, item.path, { data: Buffer.from(downwardValue(volume, pod, item.fieldRef.fieldPath)), mode: checkMode(volume, `items[${i}].mode`, item.mode, mode) });
  }
  return out;
}

/** Lookups a projected volume needs, by name in the Pod's namespace. */
export interface ProjectedInputs {
  secrets: Record<string, SourceData>;
  configMaps: Record<string, SourceData>;
  pod: V1Pod;
}

/**
 * The files of a `projected` volume: its `secret`, `configMap` and `downwardAPI` sources merged in
 * order (a later source's path wins). `serviceAccountToken` and `clusterTrustBundle` sources are not
 * supported.
 * @throws VolumeSetupError as the single-source payloads do, or for an unsupported source
 */
export function projectedPayload(volume: string, src: V1ProjectedVolumeSource, inputs: ProjectedInputs): Payload {
  const out: Payload = new Map();
  const mode = checkMode(volume, "projected.defaultMode", src.defaultMode ?? undefined, DEFAULT_VOLUME_MODE);
  for (const [i, s] of (src.sources ?? []).entries()) {
    if (s.secret) {
      const name = s.secret.name ?? "";
      const p = secretPayload(volume, { secretName: name, items: s.secret.items, optional: s.secret.optional, defaultMode: mode }, inputs.secrets[name]);
      for (const [k, v] of p) out.set(k, v);
    } else if (s.configMap) {
      const name = s.configMap.name ?? "";
      const p = configMapPayload(volume, { name, items: s.configMap.items, optional: s.configMap.optional, defaultMode: mode }, inputs.configMaps[name]);
      for (const [k, v] of p) out.set(k, v);
    } else if (s.downwardAPI) {
      downwardApiPayload(volume, { items: s.downwardAPI.items, defaultMode: mode }, inputs.pod, out);
    } else {
      throw new VolumeSetupError(volume, `sources[${i}]: only secret, configMap and downwardAPI projections are supported by the local kubelet`);
    }
  }
  return out;
}
