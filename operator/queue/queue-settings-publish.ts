/**
 * Publishes a Queue's producer settings (`api/queue-settings.ts`) to key `queue.settings` of its
 * results bucket, so producers that do not read Kubernetes (`celeriac/client`, `celeriac enqueue`)
 * give their tasks the Queue's defaults — its timeout and retry policy — as the operator does for
 * Task resources. Run in the Queue reconciler's ensure-streams step, after the bucket exists.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { DEFAULT_TIMEOUT_SECONDS } from "../../api/defaults.js";
import { producerFlow } from "../../api/flow.js";
import { QUEUE_SETTINGS_KEY, type QueueNames } from "../../api/naming.js";
import type { Queue } from "../../api/objects.js";
import { resolveRetryPolicy } from "../../api/policies.js";
import { QUEUE_SETTINGS_VERSION, type QueueProducerSettings } from "../../api/queue-settings.js";
import { queueSettingsFromSpec } from "./queue-settings.js";

/**
 * The producer settings of a Queue: its timeout and its retry policy resolved against the built-in
 * defaults, i.e. exactly what `taskMessageInput(task, queue.spec)` gives a Task that sets neither;
 * and `flow` (`producerFlow(queue.spec)`: priority levels, default priority, key source) when the
 * Queue is flow-controlled, absent otherwise. Pure.
 */
export function queueProducerSettings(queue: Queue): QueueProducerSettings {
  const { name, namespace, generation } = queue.metadata;
  const flow = producerFlow(queue.spec);
  return {
    v: QUEUE_SETTINGS_VERSION,
    namespace: namespace ?? "",
    queue: name,
    ...(generation !== undefined ? { generation } : {}),
    timeoutSeconds: queue.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    retry: resolveRetryPolicy(undefined, queue.spec.retry),
    ...(flow ? { flow } : {}),
  };
}

/**
 * Writes `queueProducerSettings(queue)` to the results bucket when the stored value differs, or is
 * older than half the bucket's TTL (entries expire with the bucket's TTL, and the reconcile runs at
 * least once per resync, so the key is rewritten before it expires when the TTL is above two resync
 * periods).
 * @returns what was done
 * @throws Error "publish queue.settings of <bucket>: …" when the bucket refuses
 */
export async function publishQueueSettings(js: JetStreamClient, names: QueueNames, queue: Queue, nowMs = Date.now()): Promise<"written" | "unchanged"> {
  const value = JSON.stringify(queueProducerSettings(queue));
  try {
    const kv = await new Kvm(js).open(names.resultsBucket);
    const live = await kv.get(QUEUE_SETTINGS_KEY);
    const halfTtlMs = (queueSettingsFromSpec(queue.spec).resultsTtlSeconds * 1000) / 2;
    if (live?.operation === "PUT" && live.string() === value && nowMs - live.created.getTime() < halfTtlMs) return "unchanged";
    await kv.put(QUEUE_SETTINGS_KEY, value);
    return "written";
  } catch (err) {
    throw new Error(`publish ${QUEUE_SETTINGS_KEY} of ${names.resultsBucket}: ${(err as Error).message}`, { cause: err });
  }
}
