/**
 * A Pod's volumes on the host, laid out like the kubelet's `/var/lib/kubelet/pods/<uid>/volumes/`:
 *
 * ```
 * <podsDir>/<uid>/volumes/kubernetes.io~secret/<volume>/        atomic-writer layout (..data swap)
 * <podsDir>/<uid>/volumes/kubernetes.io~configmap/<volume>/     "
 * <podsDir>/<uid>/volumes/kubernetes.io~downward-api/<volume>/  "
 * <podsDir>/<uid>/volumes/kubernetes.io~projected/<volume>/     "
 * <podsDir>/<uid>/volumes/kubernetes.io~empty-dir/<volume>/     a plain directory, kept across container restarts
 * hostPath volumes                                               the host path itself (created for DirectoryOrCreate)
 * ```
 *
 * {@link PodVolumes.setUp} materialises every volume (throws {@link VolumeSetupError} naming the first
 * that fails); calling it again re-reads the Secrets/ConfigMaps and rewrites only what changed, which is
 * how the kubelet's periodic resync delivers a rotated Secret to a running container. {@link PodVolumes.tearDown}
 * removes the Pod's directory.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod, V1Volume } from "@kubernetes/client-node";
import { writeAtomic } from "./atomic-writer.js";
import {
  configMapPayload,
  downwardApiPayload,
  projectedPayload,
  secretPayload,
  VolumeSetupError,
  type Payload,
  type SourceData,
} from "./volume-payload.js";

/** Reads Secret/ConfigMap data as bytes; undefined = not found. */
export interface VolumeSources {
  secret(namespace: string, name: string): Promise<SourceData>;
  configMap(namespace: string, name: string): Promise<SourceData>;
}

/** The plugin directory name of a volume, as upstream's `kubernetes.io~<plugin>` (undefined for hostPath). */
export function pluginDir(v: V1Volume): string | undefined {
  if (v.secret) return "kubernetes.io~secret";
  if (v.configMap) return "kubernetes.io~configmap";
  if (v.downwardAPI) return "kubernetes.io~downward-api";
  if (v.projected) return "kubernetes.io~projected";
  if (v.emptyDir) return "kubernetes.io~empty-dir";
  return undefined;
}

/** The kinds of volume the local kubelet materialises. */
export const SUPPORTED_VOLUMES = "secret, configMap, downwardAPI, projected (secret/configMap/downwardAPI sources), emptyDir, hostPath";

/** One Pod's volumes. */
export class PodVolumes {
  /** Volume name → host directory (filled by the first successful {@link setUp}). */
  readonly dirs: Record<string, string> = {};
  private mounted = false;

  constructor(
    /** `<podsDir>/<uid>`. */
    readonly podDir: string,
    private readonly sources: VolumeSources,
  ) {}

  /** True when `volume` is an emptyDir of `pod`. */
  static isEmptyDir(pod: V1Pod, volume: string): boolean {
    return (pod.spec?.volumes ?? []).some((v) => v.name === volume && v.emptyDir !== undefined && v.emptyDir !== null);
  }

  /** True once every volume has been set up once. */
  get isMounted(): boolean {
    return this.mounted;
  }

  /**
   * Sets up (or refreshes) every volume of `pod`.
   * @returns the names of the volumes whose files changed
   * @throws VolumeSetupError for the first volume that cannot be set up (the others are still done;
   *   a volume that was set up before keeps its last content)
   */
  async setUp(pod: V1Pod): Promise<string[]> {
    const ns = pod.metadata?.namespace ?? "default";
    const changed: string[] = [];
    let first: VolumeSetupError | undefined;
    for (const v of pod.spec?.volumes ?? []) {
      try {
        if (await this.setUpOne(ns, pod, v)) changed.push(v.name);
      } catch (err) {
        const e = err instanceof VolumeSetupError ? err : new VolumeSetupError(v.name, String((err as Error).message ?? err));
        first ??= e;
      }
    }
    if (first) throw first;
    this.mounted = true;
    return changed;
  }

  private async setUpOne(ns: string, pod: V1Pod, v: V1Volume): Promise<boolean> {
    if (v.hostPath) {
      const path = v.hostPath.path;
      if (!path.startsWith("/")) throw new VolumeSetupError(v.name, `hostPath.path "${path}" must be absolute`);
      if (v.hostPath.type === "DirectoryOrCreate") mkdirSync(path, { recursive: true });
      this.dirs[v.name] = path;
      return false;
    }
    const plugin = pluginDir(v);
    if (!plugin) {
      throw new VolumeSetupError(v.name, `volume type is not supported by the local kubelet (supported: ${SUPPORTED_VOLUMES})`);
    }
    const dir = join(this.podDir, "volumes", plugin, v.name);
    if (v.emptyDir) {
      mkdirSync(dir, { recursive: true, mode: 0o777 });
      this.dirs[v.name] = dir;
      return false;
    }
    const payload = await this.payload(ns, pod, v);
    const wrote = writeAtomic(dir, payload);
    this.dirs[v.name] = dir;
    return wrote;
  }

  private async payload(ns: string, pod: V1Pod, v: V1Volume): Promise<Payload> {
    if (v.secret) return secretPayload(v.name, v.secret, await this.read(v.name, () => this.sources.secret(ns, v.secret?.secretName ?? "")));
    if (v.configMap) return configMapPayload(v.name, v.configMap, await this.read(v.name, () => this.sources.configMap(ns, v.configMap?.name ?? "")));
    if (v.downwardAPI) return downwardApiPayload(v.name, v.downwardAPI, pod);
    const src = v.projected ?? {};
    const secrets: Record<string, SourceData> = {};
    const configMaps: Record<string, SourceData> = {};
    for (const s of src.sources ?? []) {
      if (s.secret) secrets[s.secret.name ?? ""] = await this.read(v.name, () => this.sources.secret(ns, s.secret?.name ?? ""));
      if (s.configMap) configMaps[s.configMap.name ?? ""] = await this.read(v.name, () => this.sources.configMap(ns, s.configMap?.name ?? ""));
    }
    return projectedPayload(v.name, src, { secrets, configMaps, pod });
  }

  private async read(volume: string, fn: () => Promise<SourceData>): Promise<SourceData> {
    try {
      return await fn();
    } catch (err) {
      throw new VolumeSetupError(volume, String((err as Error).message ?? err));
    }
  }

  /** Removes the Pod's directory (every volume but hostPath ones). Never throws. */
  tearDown(): void {
    try {
      rmSync(this.podDir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}
