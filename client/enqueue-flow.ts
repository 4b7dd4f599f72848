/**
 * The flow-control options of an enqueue — `priority`, `concurrencyKey`, `unique` — checked and
 * resolved against the Queue's producer flow settings with `messageFlow` (api/flow.ts), so the
 * client, `celeriac enqueue` and the operator give a task the same `flow`. A task definition's
 * `priority` and `concurrencyKey` (defineTask options) are the defaults of what the enqueue leaves
 * out. Pure (the definition's key function is the caller's code).
 */
import { FLOW_KEY_PATTERN, messageFlow, UNIQUE_POLICIES, type MessageFlow, type ProducerFlow, type UniquePolicy, type UniqueSpec } from "../api/flow.js";
import { uniqueProblem } from "../api/message.js";
import { InvalidTaskMessageError } from "../api/task-message.js";

const UNIQUE_POLICY_NAMES = UNIQUE_POLICIES.join(", ");

/** The flow-control options of one enqueue, as the caller gave them. */
export interface EnqueueFlowOptions {
  /** Priority level (an integer below the Queue's `spec.priorities.levels`; higher starts first). */
  priority?: number;
  /** Concurrency key (1–128 characters): at most the Queue's `concurrencyKeys` limit of its tasks run at once. */
  concurrencyKey?: string;
  /** Singleton key and policy (default Reject): at most one Queued-or-Running task per key. */
  unique?: UniqueSpec;
}

/** Defaults of a task definition (`defineTask(name, handler, { priority, concurrencyKey })`). */
export interface DefinitionFlowDefaults {
  /** The definition's task name (named in errors). */
  task: string;
  priority?: number;
  concurrencyKey?: (args: never, kwargs: never) => string | undefined;
}

/** What an enqueue's flow options resolve to: the message's `flow` and `unique` fields. */
export interface ResolvedEnqueueFlow {
  /** The message `flow` (flow-controlled queues only). */
  flow?: MessageFlow;
  /** The singleton lock to take before publishing, policy resolved. */
  unique?: { key: string; policy: UniquePolicy };
}

const KEY = new RegExp(FLOW_KEY_PATTERN);

function shown(v: unknown): string {
  const s = typeof v === "string" ? v : typeof v === "number" ? String(v) : (JSON.stringify(v) ?? String(v));
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

/** True when `v` is a valid concurrency or unique key (1–128 characters of FLOW_KEY_PATTERN). */
function isKey(v: unknown): v is string {
  return typeof v === "string" && v.length >= 1 && v.length <= 128 && KEY.test(v);
}

const KEY_RULE = "use 1–128 characters without control characters, not starting or ending with a space";

/**
 * Checks and resolves an enqueue's flow options for `queue`.
 * @param queue the queue name (named in errors)
 * @param producerFlow the Queue's producer flow settings (`queue.settings` field `flow`), undefined
 *   when the queue is not flow-controlled: then no `flow` is set, and a priority or key is refused
 * @param o the enqueue's options
 * @param args the task's positional arguments (the key source `concurrencyKeys.from` may read them)
 * @param kwargs the task's keyword arguments
 * @param defaults the task definition's defaults when the enqueue named a definition
 * @throws InvalidTaskMessageError (a TypeError) with `field` `priority`, `concurrencyKey`,
 *   `unique`, `unique.key` or `unique.policy`, naming the option and the fix: a malformed value, or
 *   one the Queue cannot honour (a priority beyond its levels, a key on a queue without
 *   concurrencyKeys, either on a queue without flow control) — never silently dropped
 */
export function resolveEnqueueFlow(
  queue: string,
  producerFlow: ProducerFlow | undefined,
  o: EnqueueFlowOptions,
  args: unknown[],
  kwargs: Record<string, unknown>,
  defaults?: DefinitionFlowDefaults,
): ResolvedEnqueueFlow {
  if (o.priority !== undefined && (typeof o.priority !== "number" || !Number.isInteger(o.priority))) {
    throw new InvalidTaskMessageError("priority", `priority: ${shown(o.priority)} is not an integer: give a priority level such as 0 or 5 (higher starts first)`);
  }
  if (o.concurrencyKey !== undefined && !isKey(o.concurrencyKey)) {
    throw new InvalidTaskMessageError("concurrencyKey", `concurrencyKey: ${shown(o.concurrencyKey)} is invalid: ${KEY_RULE}`);
  }
  const unique = o.unique === undefined ? undefined : checkUnique(o.unique);
  const fromDefinition = { priority: false, concurrencyKey: false };
  let priority = o.priority;
  if (priority === undefined && defaults?.priority !== undefined) {
    priority = defaults.priority;
    fromDefinition.priority = true;
  }
  let concurrencyKey = o.concurrencyKey;
  if (concurrencyKey === undefined && defaults?.concurrencyKey) {
    concurrencyKey = definitionKey(defaults, args, kwargs);
    fromDefinition.concurrencyKey = concurrencyKey !== undefined;
  }
  let flow: MessageFlow | undefined;
  try {
    flow = messageFlow(queue, producerFlow, { priority, concurrencyKey }, args, kwargs);
  } catch (err) {
    const message = (err as Error).message;
    const field = message.startsWith("concurrencyKey:") ? "concurrencyKey" : "priority";
    const note = fromDefinition[field] ? ` (the ${field} is the default of defineTask("${defaults?.task}"): change it there or pass ${field} to enqueue)` : "";
    throw new InvalidTaskMessageError(field, `${message}${note}`);
  }
  return { ...(flow ? { flow } : {}), ...(unique ? { unique } : {}) };
}

/** The `unique` option, policy resolved (default Reject). */
function checkUnique(u: unknown): { key: string; policy: UniquePolicy } {
  if (u === null || typeof u !== "object" || Array.isArray(u)) {
    throw new InvalidTaskMessageError("unique", `unique must be an object { key, policy? }, e.g. { key: "report-2026-11", policy: "Reject" } (got ${shown(u)})`);
  }
  for (const k of Object.keys(u)) {
    if (k !== "key" && k !== "policy") throw new InvalidTaskMessageError(`unique.${k}`, `unique.${k}: unknown field of unique: it has key and policy (${UNIQUE_POLICY_NAMES})`);
  }
  const { key, policy = "Reject" } = u as { key?: unknown; policy?: unknown };
  const problem = uniqueProblem({ key, policy });
  if (problem) throw new InvalidTaskMessageError(problem.field, problem.message);
  return { key: key as string, policy: policy as UniquePolicy };
}

/** The definition's concurrency key for these arguments. */
function definitionKey(d: DefinitionFlowDefaults, args: unknown[], kwargs: Record<string, unknown>): string | undefined {
  let key: unknown;
  try {
    key = (d.concurrencyKey as (a: unknown[], k: Record<string, unknown>) => unknown)(args, kwargs);
  } catch (err) {
    throw new InvalidTaskMessageError("concurrencyKey", `concurrencyKey: the concurrencyKey function of defineTask("${d.task}") threw: ${(err as Error).message}`);
  }
  if (key === undefined) return undefined;
  if (typeof key === "number" && Number.isFinite(key)) key = String(key); // as concurrencyKeys.from reads numbers
  if (!isKey(key)) {
    throw new InvalidTaskMessageError("concurrencyKey", `concurrencyKey: the concurrencyKey function of defineTask("${d.task}") returned ${shown(key)}: return undefined (no key) or a string: ${KEY_RULE}`);
  }
  return key;
}
