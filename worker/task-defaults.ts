/**
 * Publishes a worker's task code defaults for the queue's dispatcher (design: flow control §4): for
 * every task defined with a `rateLimit` (`defineTask(name, handler, { rateLimit: "10/s" })`), key
 * `task-defaults.<base64url(name)>` of the results bucket holds `{"v":1,"task":name,"rateLimit":"10/s"}`
 * (api/flow.ts `taskDefaultsKey`, `TaskDefaultsSchema`). Every worker of the queue writes the same
 * values at start; a value already equal is not rewritten. The Queue's `spec.rateLimits[name]` wins
 * over it; a rate limit is enforced only on a flow-controlled Queue, which the worker warns about.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { TASK_DEFAULTS_VERSION, taskDefaultsKey, type TaskDefaults } from "../api/flow.js";
import { QUEUE_SETTINGS_KEY } from "../api/naming.js";
import { parseQueueProducerSettings } from "../api/queue-settings.js";
import type { TaskDefinition } from "./define-task.js";

/** One task-defaults entry: its key and value. */
export interface TaskDefaultsEntry {
  key: string;
  value: TaskDefaults;
}

/** The task-defaults entries of `tasks`: one per task with a `rateLimit`, in name order. Pure. */
export function taskDefaultsEntries(tasks: ReadonlyMap<string, TaskDefinition>): TaskDefaultsEntry[] {
  return [...tasks.values()]
    .filter((t) => t.options.rateLimit !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => ({ key: taskDefaultsKey(t.name), value: { v: TASK_DEFAULTS_VERSION, task: t.name, rateLimit: String(t.options.rateLimit) } }));
}

/**
 * Writes the task-defaults entries of `tasks` to the results bucket (a put where the stored value
 * differs or is absent). When the queue's producer settings (`queue.settings`) show no flow control,
 * logs a warning naming the tasks whose rate limit is therefore not enforced.
 * @param kv the queue's results bucket, named `bucket`
 * @returns the keys written
 * @throws Error "publish task defaults to <bucket>: …" when the bucket cannot be read or written
 */
export async function publishTaskDefaults(kv: KV, bucket: string, tasks: ReadonlyMap<string, TaskDefinition>, log: Logger): Promise<string[]> {
  const entries = taskDefaultsEntries(tasks);
  if (entries.length === 0) return [];
  const written: string[] = [];
  try {
    for (const { key, value } of entries) {
      const text = JSON.stringify(value);
      const live = await kv.get(key);
      if (live?.operation === "PUT" && live.string() === text) continue;
      await kv.put(key, text);
      written.push(key);
    }
    const settings = await kv.get(QUEUE_SETTINGS_KEY);
    const parsed = settings?.operation === "PUT" ? parseQueueProducerSettings(settings.value) : undefined;
    if (!parsed || !("settings" in parsed) || !parsed.settings.flow) {
      log.warn({ tasks: entries.map((e) => e.value.task) }, "Task rate limits are enforced only on a flow-controlled Queue (spec.rateLimit, rateLimits, concurrencyKeys or priorities); this queue is not");
    }
  } catch (err) {
    throw new Error(`publish task defaults to ${bucket}: ${(err as Error).message}`, { cause: err });
  }
  if (written.length > 0) log.info({ tasks: entries.map((e) => e.value.task) }, "Published task defaults");
  return written;
}
