/**
 * Records core/v1 Events about Pods and Deployments, best effort: a failed write is logged at debug
 * and never breaks the caller.
 */
import type { CoreV1Api, V1ObjectReference } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { randomSuffix } from "./pod-template.js";

/** The `source.component` / `reportingComponent` of every Event the kubelet writes. */
export const COMPONENT = "celeriac-dev-kubelet";

/** Records Events through the API. */
export class EventRecorder {
  constructor(
    private readonly core: CoreV1Api,
    private readonly log: Logger,
  ) {}

  /**
   * Creates an Event on `involved` (asynchronously; never throws).
   * @param involved the object the Event is about (kind, name, namespace, uid, apiVersion)
   * @param type `Normal` or `Warning`
   * @param reason a CamelCase reason such as `Started`, `BackOff`, `ImageNotRunnable`
   * @param message a human-readable message
   */
  record(involved: V1ObjectReference, type: "Normal" | "Warning", reason: string, message: string): void {
    const namespace = involved.namespace ?? "default";
    const now = new Date();
    void this.core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${involved.name ?? "object"}.${Date.now().toString(16)}${randomSuffix(4)}`, namespace },
          involvedObject: involved,
          type,
          reason,
          message,
          source: { component: COMPONENT, host: "local" },
          reportingComponent: COMPONENT,
          reportingInstance: "local",
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err: unknown) => this.log.debug({ err: String(err), reason }, "Failed to record event"));
  }
}
