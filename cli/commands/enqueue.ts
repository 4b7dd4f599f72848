/**
 * `celeriac enqueue <task>`: enqueue one task from the shell, optionally waiting for its result.
 */
import type { Command } from "commander";

/** Raw `celeriac enqueue` flags. */
export interface EnqueueFlags {
  queue?: string;
  namespace?: string;
  args?: string;
  kwargs?: string;
  countdown?: string;
  eta?: string;
  expires?: string;
  taskId?: string;
  wait?: boolean;
  timeout?: string;
  nats?: string;
  createQueue?: boolean;
}

/**
 * Parses a JSON flag value.
 * @throws Error naming the flag, what it must be and an example of the fix
 */
export function parseJsonFlag(flag: "--args" | "--kwargs", text: string | undefined): unknown {
  if (text === undefined) return flag === "--args" ? [] : {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const example = flag === "--args" ? `--args '[1, "two"]'` : `--kwargs '{"key": "value"}'`;
    throw new Error(`${flag}: ${JSON.stringify(text)} is not valid JSON (${(err as Error).message}); quote it for the shell, e.g. ${example}`, { cause: err });
  }
  if (flag === "--args" && !Array.isArray(v)) throw new Error(`--args must be a JSON array, e.g. --args '[1, 2]' (got ${text})`);
  if (flag === "--kwargs" && (v === null || typeof v !== "object" || Array.isArray(v))) throw new Error(`--kwargs must be a JSON object, e.g. --kwargs '{"a": 1}' (got ${text})`);
  return v;
}

function seconds(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: "${v}" is not a number of seconds ≥ 0`);
  return n;
}

/** Registers `celeriac enqueue`. */
export function register(program: Command): void {
  program
    .command("enqueue <task>")
    .description("enqueue a task; prints its id, or with --wait its result as JSON")
    .option("--queue <q>", "queue [CELERIAC_QUEUE]")
    .option("--namespace <ns>", "namespace (default: default) [CELERIAC_NAMESPACE]")
    .option("--args <json>", "positional arguments, a JSON array", undefined)
    .option("--kwargs <json>", "keyword arguments, a JSON object", undefined)
    .option("--countdown <s>", "run no earlier than this many seconds from now")
    .option("--eta <iso>", "run no earlier than this time (RFC 3339)")
    .option("--expires <iso>", "do not run if not started by this time (RFC 3339)")
    .option("--task-id <id>", "task id (same id twice within the duplicate window runs once)")
    .option("--wait", "wait for the result and print it (exit 1 if the task failed)")
    .option("--timeout <s>", "with --wait: give up after this many seconds (default: wait forever)")
    .option("--nats <url>", "NATS URL(s) [CELERIAC_NATS_URL]")
    .option("--create-queue", "standalone (no operator): create the queue's streams if missing, instead of failing on an unknown queue")
    .action(async (task: string, f: EnqueueFlags) => {
      const args = parseJsonFlag("--args", f.args) as unknown[];
      const kwargs = parseJsonFlag("--kwargs", f.kwargs) as Record<string, unknown>;
      const queue = f.queue ?? process.env.CELERIAC_QUEUE;
      if (!queue) throw new Error("--queue (or CELERIAC_QUEUE) is required");
      const countdownSeconds = seconds("--countdown", f.countdown);
      const timeout = seconds("--timeout", f.timeout);
      const { connect, TaskFailedError } = await import("../../client/index.js");
      const client = await connect({ ...(f.nats ? { servers: f.nats } : {}), queue, namespace: f.namespace ?? process.env.CELERIAC_NAMESPACE, createQueues: f.createQueue === true });
      try {
        const h = await client.enqueue(task, args, kwargs, {
          ...(f.taskId ? { taskId: f.taskId } : {}),
          ...(countdownSeconds !== undefined ? { countdownSeconds } : {}),
          ...(f.eta ? { eta: f.eta } : {}),
          ...(f.expires ? { expires: f.expires } : {}),
        });
        if (!f.wait) {
          console.log(h.id);
          return;
        }
        try {
          const result = await h.result(timeout === undefined ? {} : { timeoutMs: timeout * 1000 });
          console.log(JSON.stringify(result));
        } catch (err) {
          if (err instanceof TaskFailedError) {
            console.error(err.message);
            process.exitCode = 1;
            return;
          }
          throw err;
        }
      } finally {
        await client.close();
      }
    });
}
