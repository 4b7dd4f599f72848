/**
 * Pure: the NATS queue settings a Queue's spec asks for (defaults applied by the API server; the
 * documented defaults fill anything absent).
 */
import { isFlowControlled } from "../../api/flow.js";
import type { QueueSpec } from "../../api/queue.js";
import { queueSettings, type QueueSettings } from "../../nats/queue-settings.js";

/**
 * Maps `Queue.spec` to the settings its streams, consumers and bucket derive from.
 * maxAckPending is sized to concurrency × maxReplicas (at least 1000), so every worker can be busy.
 * A flow-controlled spec (`isFlowControlled`) gets `flow.levels` = its priority levels (1 without
 * `priorities`), so the held stream and its dispatch consumers are created.
 */
export function queueSettingsFromSpec(spec: QueueSpec): QueueSettings {
  const concurrency = spec.concurrency ?? 4;
  const maxReplicas = spec.autoscaling?.maxReplicas ?? 10;
  return queueSettings({
    ackWaitSeconds: spec.ackWaitSeconds,
    maxAckPending: Math.max(1000, concurrency * maxReplicas * 2),
    resultsTtlSeconds: spec.results?.ttlSeconds,
    duplicateWindow: spec.stream?.duplicateWindow,
    deadLetterMaxAge: spec.deadLetter?.maxAge,
    replicas: spec.stream?.replicas,
    storage: spec.stream?.storage,
    flow: isFlowControlled(spec) ? { levels: spec.priorities?.levels ?? 1 } : undefined,
  });
}
