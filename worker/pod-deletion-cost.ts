/**
 * Keeps the worker's own Pod annotated with `controller.kubernetes.io/pod-deletion-cost` = its number
 * of tasks in flight, so on scale-down the ReplicaSet controller removes idle pods first (Kubernetes
 * docs, "Pod deletion cost"). Writes are coalesced: at most one patch in flight, the latest value wins.
 */
import type { Logger } from "pino";
import { ANNOTATIONS, FIELD_MANAGERS } from "../api/constants.js";
import { BUILTIN_TYPES, mergePatch, type KubeClient } from "../kube/k8s-client.js";

/** Patches the annotation whenever the in-flight count changes. */
export class PodDeletionCost {
  readonly #kc: KubeClient;
  readonly #ref: { group: string; version: string; plural: string; namespace: string; name: string };
  readonly #log: Logger;
  #wanted = 0;
  #written: number | undefined;
  #busy = false;

  /**
   * @param pod the worker's Pod (POD_NAMESPACE / POD_NAME)
   */
  constructor(kc: KubeClient, pod: { namespace: string; name: string }, log: Logger) {
    this.#kc = kc;
    this.#ref = { ...BUILTIN_TYPES.Pod, ...pod };
    this.#log = log;
  }

  /** Records the new in-flight count; the patch happens in the background. Never throws. */
  set(inFlight: number): void {
    this.#wanted = inFlight;
    void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#written !== this.#wanted) {
        const value = this.#wanted;
        try {
          await mergePatch(this.#kc, this.#ref, { metadata: { annotations: { [ANNOTATIONS.podDeletionCost]: String(value) } } }, FIELD_MANAGERS.worker);
          this.#written = value;
        } catch (err) {
          this.#log.warn({ err }, "Failed to update pod-deletion-cost");
          return;
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
