/**
 * `celeriac enqueue <task>`: enqueue one task from the shell, optionally waiting for its result;
 * `celeriac enqueue --canvas @file.json`: launch a canvas (chain, group, chord, …) in its wire form.
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { CANVAS_VERSION, checkCanvas, InvalidCanvasError, type CanvasNode } from "../../api/canvas.js";
import { TASK_ID_PATTERN } from "../../api/naming.js";
import { checkEnqueueInput, flagOfOption, parseEnqueueFlowFlags } from "../enqueue-checks.js";

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
  timeoutSeconds?: string;
  maxAttempts?: string;
  devDir?: string;
  priority?: string;
  concurrencyKey?: string;
  uniqueKey?: string;
  uniquePolicy?: string;
  canvas?: string;
}

/** Flags that describe one task, refused with `--canvas` (a canvas sets them per step). */
const TASK_ONLY_FLAGS: ReadonlyArray<[keyof EnqueueFlags, string]> = [
  ["args", "--args"],
  ["kwargs", "--kwargs"],
  ["countdown", "--countdown"],
  ["eta", "--eta"],
  ["expires", "--expires"],
  ["timeoutSeconds", "--timeout-seconds"],
  ["maxAttempts", "--max-attempts"],
  ["priority", "--priority"],
  ["concurrencyKey", "--concurrency-key"],
  ["uniqueKey", "--unique-key"],
  ["uniquePolicy", "--unique-policy"],
];

/** A value for messages: at most 60 characters of it. */
function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/**
 * Reads a JSON flag's text: the value itself, or `@path` for a file's contents (`@-`: standard
 * input), for arguments too large for a command line (about 128 KiB per argument on Linux).
 * @param readFile reads a path, or `-` for standard input (tests)
 * @throws Error naming the flag and the file when it cannot be read
 */
export function jsonFlagText(flag: "--args" | "--kwargs", value: string, readFile: (path: string) => string = (p) => readFileSync(p === "-" ? 0 : p, "utf8")): { text: string; from: string } {
  if (!value.startsWith("@")) return { text: value, from: shown(value) };
  const path = value.slice(1);
  if (!path) throw new Error(`${flag}: "@" needs a file, e.g. ${flag} @${flag === "--args" ? "args" : "kwargs"}.json, or ${flag} @- for standard input`);
  const from = path === "-" ? "standard input" : `file ${path}`;
  try {
    return { text: readFile(path), from };
  } catch (err) {
    throw new Error(`${flag}: cannot read ${from}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Parses a JSON flag value (`@file` / `@-` read through `jsonFlagText`).
 * @throws Error naming the flag, what it must be and an example of the fix
 */
export function parseJsonFlag(flag: "--args" | "--kwargs", value: string | undefined, readFile?: (path: string) => string): unknown {
  if (value === undefined) return flag === "--args" ? [] : {};
  const { text, from } = jsonFlagText(flag, value, readFile);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const example = flag === "--args" ? `--args '[1, "two"]'` : `--kwargs '{"key": "value"}'`;
    const fix = value.startsWith("@") ? "fix the JSON" : `quote it for the shell, e.g. ${example}`;
    throw new Error(`${flag}: ${from} is not valid JSON (${(err as Error).message}); ${fix}`, { cause: err });
  }
  if (flag === "--args" && !Array.isArray(v)) throw new Error(`--args must be a JSON array, e.g. --args '[1, 2]' (got ${from})`);
  if (flag === "--kwargs" && (v === null || typeof v !== "object" || Array.isArray(v))) throw new Error(`--kwargs must be a JSON object, e.g. --kwargs '{"a": 1}' (got ${from})`);
  return v;
}

/**
 * Parses a flag that must be a positive integer of at most `max`.
 * @throws Error "<flag>: must be a positive integer …" naming the value
 */
export function positiveIntFlag(flag: string, v: string | undefined, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new Error(`${flag}: must be a positive integer (got ${shown(v)})`);
  if (n > max) throw new Error(`${flag}: must be at most ${max} (got ${n})`);
  return n;
}

/**
 * Reads and checks `--canvas`: `@path` (a file), `-` or `@-` (standard input), or the JSON itself;
 * a canvas document `{"v": 1, "canvas": node}` or a bare node (api/canvas.ts, docs/protocol.md).
 * @param readFile reads a path, or `-` for standard input (tests)
 * @returns the canvas node in wire form, checked by `checkCanvas`
 * @throws InvalidCanvasError "--canvas (<source>): canvas.steps[1].task: …" naming the path of a
 *   malformed node; Error naming the flag for unreadable input, bad JSON or a bad document
 */
export function parseCanvasFlag(value: string, readFile: (path: string) => string = (p) => readFileSync(p === "-" ? 0 : p, "utf8")): CanvasNode {
  const path = value === "-" ? "-" : value.startsWith("@") ? value.slice(1) : undefined;
  if (path === "") throw new Error('--canvas: "@" needs a file, e.g. --canvas @canvas.json, or --canvas - for standard input');
  const from = path === undefined ? shown(value) : path === "-" ? "standard input" : `file ${path}`;
  let text = value;
  if (path !== undefined) {
    try {
      text = readFile(path);
    } catch (err) {
      throw new Error(`--canvas: cannot read ${from}: ${(err as Error).message}`, { cause: err });
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`--canvas: ${from} is not valid JSON (${(err as Error).message}); fix the JSON`, { cause: err });
  }
  let node: unknown = doc;
  if (doc !== null && typeof doc === "object" && !Array.isArray(doc) && !("kind" in doc)) {
    const d = doc as Record<string, unknown>;
    if (d.v !== CANVAS_VERSION) throw new Error(`--canvas (${from}): "v" must be ${CANVAS_VERSION} (the canvas wire version), got ${JSON.stringify(d.v) ?? "none"}: give {"v": 1, "canvas": {...}} or a bare node {"kind": ...}`);
    const extra = Object.keys(d).filter((k) => k !== "v" && k !== "canvas");
    if (extra.length) throw new Error(`--canvas (${from}): unknown field ${JSON.stringify(extra[0])} of a canvas document: it has v and canvas`);
    if (!("canvas" in d)) throw new Error(`--canvas (${from}): the document has no "canvas": give {"v": 1, "canvas": {"kind": "chain", "steps": [...]}}`);
    node = d.canvas;
  }
  try {
    checkCanvas(node, "canvas");
  } catch (err) {
    if (err instanceof InvalidCanvasError) throw new InvalidCanvasError(err.path, `--canvas (${from}): ${err.message}`);
    throw err;
  }
  return node;
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
    .command("enqueue [task]")
    .description("enqueue a task (or with --canvas a canvas); prints its id, or with --wait its result as JSON")
    .option("--queue <q>", "queue [CELERIAC_QUEUE]")
    .option("--namespace <ns>", "namespace (default: default) [CELERIAC_NAMESPACE]")
    .option("--args <json>", "positional arguments, a JSON array; @file reads a file, @- standard input", undefined)
    .option("--kwargs <json>", "keyword arguments, a JSON object; @file reads a file, @- standard input", undefined)
    .option("--timeout-seconds <s>", "handler time limit (default: the Queue's timeoutSeconds)")
    .option("--max-attempts <n>", "total attempts including the first (default: the Queue's retry.maxAttempts)")
    .option("--countdown <s>", "run no earlier than this many seconds from now")
    .option("--eta <iso>", "run no earlier than this time (RFC 3339)")
    .option("--expires <iso>", "do not run if not started by this time (RFC 3339)")
    .option("--task-id <id>", "task id (same id twice within the duplicate window runs once)")
    .option("--priority <n>", "priority level 0-9 on a Queue with spec.priorities, below its levels; higher starts first (default: the Queue's priorities.default)")
    .option("--concurrency-key <key>", "concurrency key on a Queue with spec.concurrencyKeys (default: the Queue's concurrencyKeys.from)")
    .option("--unique-key <key>", "singleton key: at most one queued-or-running task of the queue holds it")
    .option("--unique-policy <policy>", "with --unique-key, when the key is held: Reject (default: fail, exit 1), Replace (revoke the holder if not started) or Wait (run after it)")
    .option("--canvas <json>", 'instead of a task: a canvas (chain, group, chord, map, starmap, chunks) as JSON, {"v":1,"canvas":node} or a bare node; @file reads a file, - (or @-) standard input; with --task-id the canvas id')
    .option("--wait", "wait for the result and print it (exit 1 if the task failed)")
    .option("--timeout <s>", "with --wait: give up after this many seconds (default: wait forever)")
    .option("--nats <url>", "NATS URL(s) [CELERIAC_NATS_URL] (default: the NATS of a running `celeriac dev up`, else nats://127.0.0.1:4222)")
    .option("--dev-dir <dir>", "state directory of `celeriac dev up` to find NATS in", ".celeriac")
    .option("--create-queue", "standalone (no operator): create the queue's streams if missing, instead of failing on an unknown queue")
    .action(async (task: string | undefined, f: EnqueueFlags) => {
      if (f.canvas !== undefined) return enqueueCanvas(task, f);
      if (task === undefined) throw new Error("give a task name (celeriac enqueue reports.generate --queue q), or a canvas with --canvas @canvas.json");
      checkEnqueueInput({ task, countdown: f.countdown, eta: f.eta, expires: f.expires, taskId: f.taskId });
      const args = parseJsonFlag("--args", f.args) as unknown[];
      const kwargs = parseJsonFlag("--kwargs", f.kwargs) as Record<string, unknown>;
      const queue = f.queue ?? process.env.CELERIAC_QUEUE;
      if (!queue) throw new Error("--queue (or CELERIAC_QUEUE) is required");
      const countdownSeconds = seconds("--countdown", f.countdown);
      const timeoutSeconds = positiveIntFlag("--timeout-seconds", f.timeoutSeconds, 604_800);
      const maxAttempts = positiveIntFlag("--max-attempts", f.maxAttempts, 1000);
      const timeout = seconds("--timeout", f.timeout);
      const flow = parseEnqueueFlowFlags(f);
      const { client, TaskFailedError } = await connectFor(f, queue);
      try {
        const h = await client.enqueue(task, args, kwargs, {
          ...(f.taskId ? { taskId: f.taskId } : {}),
          ...(countdownSeconds !== undefined ? { countdownSeconds } : {}),
          ...(f.eta ? { eta: f.eta } : {}),
          ...(f.expires ? { expires: f.expires } : {}),
          ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
          ...(maxAttempts !== undefined ? { retry: { maxAttempts } } : {}),
          ...flow,
        }).catch((err: unknown) => {
          throw flagOfOption(err);
        });
        if (!f.wait) {
          console.log(h.id);
          return;
        }
        await printResult(h, timeout, TaskFailedError);
      } finally {
        await client.close();
      }
    });
}

/**
 * `celeriac enqueue --canvas …`: checks the flags and the canvas before connecting, applies it,
 * prints the canvas id, or with `--wait` its result as JSON (exit 1 when a step failed).
 * @throws Error naming the flag: a task name or a task-only flag given with --canvas, a bad
 *   --task-id or --timeout; InvalidCanvasError naming the path of a malformed node
 */
async function enqueueCanvas(task: string | undefined, f: EnqueueFlags): Promise<void> {
  if (task !== undefined) throw new Error(`give either a task name (${shown(task)}) or --canvas, not both: a canvas names its tasks in its signatures`);
  for (const [key, flag] of TASK_ONLY_FLAGS) {
    if (f[key] !== undefined) throw new Error(`${flag} cannot be used with --canvas: set it per step, in the canvas's signatures ("args", "kwargs", "options": {"countdownSeconds", "eta", "expires", "timeoutSeconds", "retry", "priority", "concurrencyKey", "unique"})`);
  }
  if (f.taskId !== undefined && (!TASK_ID_PATTERN.test(f.taskId) || f.taskId.length > 200)) {
    throw new Error(`--task-id ${shown(f.taskId)} is invalid for a canvas: use 1-200 of A-Z a-z 0-9 _ = - (step ids derive from it)`);
  }
  const node = parseCanvasFlag(f.canvas as string);
  const queue = f.queue ?? process.env.CELERIAC_QUEUE;
  if (!queue) throw new Error("--queue (or CELERIAC_QUEUE) is required");
  const timeout = seconds("--timeout", f.timeout);
  const { client, TaskFailedError } = await connectFor(f, queue);
  try {
    const h = await client.apply(node, f.taskId ? { taskId: f.taskId } : {}).catch((err: unknown) => {
      // the flag's name, not the client option's
      if (err instanceof InvalidCanvasError && err.path === "taskId") throw new InvalidCanvasError("--task-id", err.message.replace(/^taskId: /, "--task-id: ").replace("give a new taskId", "give a new --task-id"));
      throw err;
    });
    if (!f.wait) {
      console.log(h.id);
      return;
    }
    try {
      await printResult(h, timeout, TaskFailedError);
    } finally {
      // the steps' status.canvas, for people (stdout stays the result alone, for scripts); on a
      // --timeout too, where it shows which step is still pending
      console.error(canvasStepsTable(await h.children()));
    }
  } finally {
    await client.close();
  }
}

/** Most steps `--canvas --wait` lists (a 10,000-task group lists the first ones and a count). */
export const CANVAS_STEPS_SHOWN = 20;

/**
 * The step table `celeriac enqueue --canvas --wait` prints to stderr after the result: per task
 * id, name, phase and its `status.canvas` (parent, step, failed step), kubectl-style columns; at
 * most CANVAS_STEPS_SHOWN rows, then how many more.
 * @param steps the canvas's children (CanvasHandle.children()), in tree order
 */
export function canvasStepsTable(steps: ReadonlyArray<{ id: string; task: string; state: { phase?: string; canvas?: { parent?: string; step: number; failedStep?: { id: string } } } | undefined }>): string {
  const rows = [["STEP", "TASK", "PHASE", "PARENT", "INDEX", "FAILED-STEP"]];
  for (const s of steps.slice(0, CANVAS_STEPS_SHOWN)) {
    const c = s.state?.canvas;
    rows.push([s.id, s.task, s.state?.phase ?? "-", c?.parent ?? "-", c ? String(c.step) : "-", c?.failedStep?.id ?? "-"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]! + 3))).join(""));
  if (steps.length > CANVAS_STEPS_SHOWN) lines.push(`… and ${steps.length - CANVAS_STEPS_SHOWN} more steps`);
  return lines.join("\n");
}

/**
 * `--wait`: prints the result as JSON on stdout, or the failure on stderr with exit code 1.
 * @param timeout seconds, or undefined to wait forever
 * @throws what `result()` throws other than TaskFailedError (e.g. ResultTimeoutError)
 */
async function printResult(h: { result(o?: { timeoutMs?: number }): Promise<unknown> }, timeout: number | undefined, failed: new (...a: never[]) => Error): Promise<void> {
  try {
    console.log(JSON.stringify(await h.result(timeout === undefined ? {} : { timeoutMs: timeout * 1000 })));
  } catch (err) {
    if (!(err instanceof failed)) throw err;
    console.error(err.message);
    process.exitCode = 1;
  }
}

/**
 * Connects a client for `enqueue`'s flags (--nats, --dev-dir, --namespace, --create-queue), loading
 * the client module only now (so flag errors come before any import).
 * @throws Error naming the NATS target when it cannot be reached
 */
async function connectFor(f: EnqueueFlags, queue: string) {
  const { connect, TaskFailedError } = await import("../../client/index.js");
  const { natsConnectError, natsTarget } = await import("../nats-target.js");
  const target = await natsTarget(f.nats, process.env, f.devDir);
  const client = await connect({ servers: target.url, queue, namespace: f.namespace ?? process.env.CELERIAC_NAMESPACE, createQueues: f.createQueue === true }).catch((err: unknown) => {
    throw natsConnectError(target, err);
  });
  return { client, TaskFailedError };
}
