/**
 * Sub-schemas shared by several resources and by the task message: the retry policy.
 */
import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_RETRY } from "./defaults.js";

function backoffSchema(withDefaults: boolean) {
  const d = (v: unknown) => (withDefaults ? { default: v } : {});
  return Type.Object(
    {
      initialSeconds: Type.Optional(
        Type.Number({ minimum: 0, maximum: 86400, description: "Delay before the first retry, in seconds.", ...d(DEFAULT_RETRY.backoff.initialSeconds) }),
      ),
      factor: Type.Optional(
        Type.Number({ minimum: 1, maximum: 100, description: "Multiplier applied to the delay after each failed attempt (1 = constant delay).", ...d(DEFAULT_RETRY.backoff.factor) }),
      ),
      maxSeconds: Type.Optional(
        Type.Number({ minimum: 0, maximum: 604800, description: "Upper bound of any retry delay, in seconds.", ...d(DEFAULT_RETRY.backoff.maxSeconds) }),
      ),
      jitter: Type.Optional(
        Type.Boolean({ description: "Randomise each delay to between half and all of its computed value (\"equal jitter\"), so failed tasks do not retry in lockstep.", ...d(DEFAULT_RETRY.backoff.jitter) }),
      ),
    },
    { description: "Exponential backoff between attempts: delay(n) = min(maxSeconds, initialSeconds × factor^(n-1)), then jitter.", ...d({}) },
  );
}

/**
 * Retry policy schema. `withDefaults` puts the documented defaults into the schema (Queue level);
 * without them (Task level) an absent field means "inherit from the Queue".
 */
export function retryPolicySchema(withDefaults: boolean) {
  return Type.Object(
    {
      maxAttempts: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: "Total attempts including the first run (1 = never retry). A worker crash counts as an attempt when the task ran alone on its worker (a task redelivered after its worker was lost runs alone), so a poison task ends in the dead-letter stream and tasks beside it lose no attempt.",
          ...(withDefaults ? { default: DEFAULT_RETRY.maxAttempts } : {}),
        }),
      ),
      backoff: Type.Optional(backoffSchema(withDefaults)),
    },
    {
      description: withDefaults
        ? "Default retry policy for tasks on this queue."
        : "Retry policy for this task; each absent field is inherited from the Queue's retry policy.",
      ...(withDefaults ? { default: {} } : {}),
    },
  );
}

/** Retry policy as written by a user (all fields optional). */
export type RetryPolicySpec = Static<ReturnType<typeof retryPolicySchema>>;

/** A fully resolved retry policy (no field absent), as carried by the task message. Delays in seconds. */
export interface ResolvedRetryPolicy {
  maxAttempts: number;
  backoff: { initialSeconds: number; factor: number; maxSeconds: number; jitter: boolean };
}

/**
 * Resolves a retry policy field by field: task's value, else queue's, else the documented default.
 * Pure.
 * @param task the Task's (or enqueue call's) policy, may be undefined
 * @param queue the Queue's policy, may be undefined
 */
export function resolveRetryPolicy(task?: RetryPolicySpec, queue?: RetryPolicySpec): ResolvedRetryPolicy {
  const b = DEFAULT_RETRY.backoff;
  return {
    maxAttempts: task?.maxAttempts ?? queue?.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    backoff: {
      initialSeconds: task?.backoff?.initialSeconds ?? queue?.backoff?.initialSeconds ?? b.initialSeconds,
      factor: task?.backoff?.factor ?? queue?.backoff?.factor ?? b.factor,
      maxSeconds: task?.backoff?.maxSeconds ?? queue?.backoff?.maxSeconds ?? b.maxSeconds,
      jitter: task?.backoff?.jitter ?? queue?.backoff?.jitter ?? b.jitter,
    },
  };
}

/**
 * Problems of a retry policy as given (an enqueue's `retry`, a signature's `options.retry`): unknown
 * fields (a typo is refused, not ignored), and values outside the message schema's bounds
 * (MessageRetrySchema: maxAttempts an integer 1–1000, initialSeconds ≥ 0, factor ≥ 1,
 * maxSeconds ≥ 0, jitter a boolean). Pure.
 * @param r the policy as given
 * @param field its name in messages, e.g. `retry` or `canvas.steps[1].options.retry`
 * @returns `{field, message}` naming the sub-field and the fix, or undefined when valid
 */
export function retryProblem(r: unknown, field = "retry"): { field: string; message: string } | undefined {
  const bad = (f: string, m: string) => ({ field: f, message: `${f}: ${m}` });
  if (r === null || typeof r !== "object" || Array.isArray(r)) return bad(field, 'must be an object like {"maxAttempts": 5, "backoff": {"initialSeconds": 1}}');
  const o = r as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== "maxAttempts" && k !== "backoff") return bad(`${field}.${k}`, "unknown field of a retry policy: it has maxAttempts and backoff");
  if (o.maxAttempts !== undefined && (!Number.isInteger(o.maxAttempts) || (o.maxAttempts as number) < 1 || (o.maxAttempts as number) > 1000)) {
    return bad(`${field}.maxAttempts`, `${JSON.stringify(o.maxAttempts)} is not an integer from 1 to 1000 (attempts in all, the first included)`);
  }
  if (o.backoff === undefined) return undefined;
  if (o.backoff === null || typeof o.backoff !== "object" || Array.isArray(o.backoff)) return bad(`${field}.backoff`, 'must be an object like {"initialSeconds": 1, "factor": 2, "maxSeconds": 60, "jitter": true}');
  const b = o.backoff as Record<string, unknown>;
  const min: Record<string, number> = { initialSeconds: 0, factor: 1, maxSeconds: 0 };
  for (const k of Object.keys(b)) {
    if (k === "jitter") {
      if (typeof b.jitter !== "boolean") return bad(`${field}.backoff.jitter`, "must be true or false");
    } else if (k in min) {
      if (typeof b[k] !== "number" || !Number.isFinite(b[k]) || (b[k] as number) < min[k]!) return bad(`${field}.backoff.${k}`, `${JSON.stringify(b[k])} is not a number ≥ ${min[k]}`);
    } else return bad(`${field}.backoff.${k}`, "unknown field of a backoff: it has initialSeconds, factor, maxSeconds and jitter");
  }
  return undefined;
}

/** Longest handler time limit, in seconds (7 days: the Queue's `timeoutSeconds` maximum). */
export const MAX_TIMEOUT_SECONDS = 604_800;
