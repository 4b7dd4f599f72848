/**
 * The Queue's producer settings: what a task published for the queue takes from the Queue when the
 * producer sets nothing (the same fields the operator's `taskMessageInput(task, queueSpec)` takes
 * from `Queue.spec`). The operator writes them, as JSON, to key `queue.settings`
 * (`QUEUE_SETTINGS_KEY`) of the queue's results bucket; producers that do not read Kubernetes
 * (`celeriac/client`, `celeriac enqueue`) read them from there. Versioned; see docs/protocol.md.
 */
import { Type, type Static } from "@sinclair/typebox";
import { ProducerFlowSchema } from "./flow.js";
import { MessageRetrySchema } from "./message.js";
import type { QueueSpec } from "./queue.js";
import { QUEUE_NAME_PATTERN } from "./task.js";
import { validateValue, type JSONSchemaProps } from "./validation.js";
import { parseVersionedJson } from "./versioned-json.js";

/** Version of the settings value; bumped only on an incompatible change (new fields keep v1). */
export const QUEUE_SETTINGS_VERSION = 1;

/** Schema of the `queue.settings` value, version 1. */
export const QueueProducerSettingsSchema = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1, description: "Settings version (1)." }),
    namespace: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "Namespace of the Queue." }),
    queue: Type.String({ pattern: QUEUE_NAME_PATTERN, description: "Name of the Queue." }),
    generation: Type.Optional(Type.Integer({ minimum: 0, description: "The Queue's metadata.generation these settings were derived from." })),
    timeoutSeconds: Type.Integer({ minimum: 1, description: "Default handler time limit, seconds (Queue.spec.timeoutSeconds)." }),
    retry: MessageRetrySchema,
    flow: Type.Optional(ProducerFlowSchema),
  },
  { description: "A Queue's producer settings (results-bucket key queue.settings), version 1. Unknown fields are ignored." },
);
/** A Queue's producer settings (version 1). */
export type QueueProducerSettings = Static<typeof QueueProducerSettingsSchema>;

/**
 * Parses a `queue.settings` value. Never throws.
 * @returns the settings, or `{error}` naming the field when the value is not JSON, of another
 *   version, or breaks the schema
 */
export function parseQueueProducerSettings(data: Uint8Array | string): { settings: QueueProducerSettings } | { error: string } {
  const parsed = parseVersionedJson(data, QUEUE_SETTINGS_VERSION);
  if ("error" in parsed) return parsed;
  const value = parsed.value;
  const causes = validateValue(QueueProducerSettingsSchema as unknown as JSONSchemaProps, value);
  if (causes.length > 0) return { error: causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join("; ") };
  return { settings: value as QueueProducerSettings };
}

/**
 * The settings as the `queueSpec` argument of `newTaskMessage`, so a producer's defaults resolve
 * task → queue → built-in exactly as the operator's do. Pure.
 */
export function producerQueueSpec(s: QueueProducerSettings): Pick<QueueSpec, "timeoutSeconds" | "retry"> {
  return { timeoutSeconds: s.timeoutSeconds, retry: s.retry };
}
