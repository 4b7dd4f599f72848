/**
 * Checks of `celeriac enqueue`'s task name and flags made before anything connects, so a mistake is
 * reported in the words of the command line (`--eta`, not the client's `eta` option) and never reaches
 * NATS: a task name the worker would refuse would otherwise be dead-lettered as InvalidMessage.
 * Pure: values in, an Error naming the flag and the fix out.
 */
import { FLOW_KEY_PATTERN, MAX_PRIORITY_LEVELS, UNIQUE_POLICIES, type UniquePolicy } from "../api/flow.js";
import { TASK_ID_PATTERN } from "../api/naming.js";
import { TASK_NAME_PATTERN } from "../api/task.js";

/** The flags `checkEnqueueInput` looks at (raw strings, as commander gives them). */
export interface EnqueueInput {
  task: string;
  countdown?: string | undefined;
  eta?: string | undefined;
  expires?: string | undefined;
  taskId?: string | undefined;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function timeFlag(flag: string, v: string | undefined): void {
  if (v === undefined) return;
  if (!RFC3339.test(v.trim()) || Number.isNaN(Date.parse(v))) {
    throw new Error(`${flag}: ${shown(v)} is not a time: use RFC 3339 with a zone, e.g. ${flag} 2026-01-02T15:04:05Z`);
  }
}

/**
 * Checks the task name, `--eta`, `--expires`, `--task-id` and `--countdown` with `--eta`.
 * @throws Error naming the argument or flag, the value and the fix
 */
export function checkEnqueueInput(i: EnqueueInput): void {
  if (!new RegExp(TASK_NAME_PATTERN).test(i.task) || i.task.length > 200) {
    throw new Error(`task name ${shown(i.task)} is invalid: use letters, digits and _ . : - (starting with a letter or _, at most 200), e.g. reports.generate`);
  }
  if (i.countdown !== undefined && i.eta !== undefined) throw new Error("--countdown and --eta are exclusive: give one (a delay in seconds, or a time)");
  timeFlag("--eta", i.eta);
  timeFlag("--expires", i.expires);
  if (i.taskId !== undefined && !TASK_ID_PATTERN.test(i.taskId)) {
    throw new Error(`--task-id ${shown(i.taskId)} is invalid: use 1-256 of A-Z a-z 0-9 _ = - (no dots or spaces)`);
  }
}

/** The flow-control flags of `celeriac enqueue` (raw strings, as commander gives them). */
export interface EnqueueFlowFlags {
  priority?: string | undefined;
  concurrencyKey?: string | undefined;
  uniqueKey?: string | undefined;
  uniquePolicy?: string | undefined;
}

/** What the flow-control flags give the client's enqueue options. */
export interface EnqueueFlowFlagOptions {
  priority?: number;
  concurrencyKey?: string;
  unique?: { key: string; policy: UniquePolicy };
}

const FLOW_KEY = new RegExp(FLOW_KEY_PATTERN);

function keyFlag(flag: string, v: string): string {
  if (v.length < 1 || v.length > 128 || !FLOW_KEY.test(v)) {
    throw new Error(`${flag}: ${shown(v)} is invalid: use 1–128 characters without control characters, not starting or ending with a space`);
  }
  return v;
}

/**
 * Parses `--priority`, `--concurrency-key`, `--unique-key` and `--unique-policy` (whether the
 * Queue honours them is checked by the client against its producer settings: see
 * {@link flagOfOption} for its errors).
 * @throws Error naming the flag, the value and the fix: a priority that is not an integer 0–9, a
 *   malformed key, an unknown policy, `--unique-policy` without `--unique-key`
 */
export function parseEnqueueFlowFlags(f: EnqueueFlowFlags): EnqueueFlowFlagOptions {
  const out: EnqueueFlowFlagOptions = {};
  if (f.priority !== undefined) {
    const n = Number(f.priority);
    if (!/^\s*\d+\s*$/.test(f.priority) || !Number.isInteger(n) || n > MAX_PRIORITY_LEVELS - 1) {
      throw new Error(`--priority: must be an integer 0–${MAX_PRIORITY_LEVELS - 1} below the Queue's spec.priorities.levels (got ${shown(f.priority)}); higher starts first`);
    }
    out.priority = n;
  }
  if (f.concurrencyKey !== undefined) out.concurrencyKey = keyFlag("--concurrency-key", f.concurrencyKey);
  if (f.uniquePolicy !== undefined && f.uniqueKey === undefined) throw new Error("--unique-policy needs --unique-key: give the singleton key, e.g. --unique-key report-2026-11 --unique-policy Wait");
  if (f.uniqueKey !== undefined) {
    const key = keyFlag("--unique-key", f.uniqueKey);
    const policy = f.uniquePolicy ?? "Reject";
    if (!(UNIQUE_POLICIES as readonly string[]).includes(policy)) throw new Error(`--unique-policy: ${shown(policy)} is not a policy: use ${UNIQUE_POLICIES.join(", ")} (default Reject)`);
    out.unique = { key, policy: policy as UniquePolicy };
  }
  return out;
}

/** The `celeriac enqueue` flag of each client option named by an InvalidTaskMessageError's `field`. */
const FLAG_OF_OPTION: Record<string, string> = {
  priority: "--priority",
  concurrencyKey: "--concurrency-key",
  unique: "--unique-key",
  "unique.key": "--unique-key",
  "unique.policy": "--unique-policy",
  countdownSeconds: "--countdown",
  eta: "--eta",
  expires: "--expires",
  taskId: "--task-id",
  args: "--args",
  kwargs: "--kwargs",
};

/**
 * The client's error for a bad option (a TypeError with `field`, message "<field>: …") in the words
 * of the command line: "--priority: 5 is not a level of queue …". Any other error is returned as is.
 * Pure.
 */
export function flagOfOption(err: unknown): unknown {
  // a held Reject key: the client's advice names its option (unique.policy); a shell user needs the flag
  if (err instanceof Error && err.name === "UniqueKeyHeldError") {
    return new Error(err.message.replace('pass unique.policy "Wait"', "pass --unique-policy Wait").replace('or "Replace"', "or Replace"), { cause: err });
  }
  const field = err instanceof TypeError ? (err as TypeError & { field?: unknown }).field : undefined;
  const flag = typeof field === "string" ? FLAG_OF_OPTION[field] : undefined;
  if (!flag) return err;
  const prefix = `${field as string}: `;
  const rest = err instanceof Error && err.message.startsWith(prefix) ? err.message.slice(prefix.length) : (err as Error).message;
  return new Error(`${flag}: ${rest}`, { cause: err });
}
