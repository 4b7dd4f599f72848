// Queue fixtures for the builder tests: objects with the CRD's defaults applied, as the API server stores them.
import { schemaForKind } from "../../../api/crd.js";
import type { QueueSpec } from "../../../api/queue.js";
import { applyDefaults } from "../../../api/validation.js";
import type { Queue } from "../../../api/objects.js";

/** A Queue named `name` in `namespace` with `spec` defaulted by the CRD schema. */
export function queueWith(spec: QueueSpec, name = "emails", namespace = "shop"): Queue {
  const obj = applyDefaults(schemaForKind("Queue"), { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name, namespace }, spec }) as {
    spec: QueueSpec;
  };
  return { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name, namespace, uid: `uid-${namespace}-${name}`, generation: 1 }, spec: obj.spec };
}
