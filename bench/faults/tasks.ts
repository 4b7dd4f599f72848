/**
 * The fault suite's tasks module, loaded by the worker processes of every scenario
 * (`celeriac worker --tasks dist/bench/faults/tasks.js`, or a Queue's `CELERIAC_TASKS`). Each
 * handler appends `start` and `end` lines to the per-execution log named by `CELERIAC_FAULTS_LOG`
 * (see harness.ts), so a scenario counts executions from the log and results from the results bucket.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../../worker/index.js";
import { noteExecution } from "./exec-log.js";

/** Sleeps `args[0]` ms (default 0), honouring its signal; returns `{ok: true, attempt}`. Logs start and end. */
export const work = defineTask("faults.work", async (args, _k, ctx) => {
  noteExecution(ctx.taskId, "start", ctx.attempt);
  const ms = Number(args[0] ?? 0);
  if (ms > 0) await sleep(ms, undefined, { signal: ctx.signal });
  noteExecution(ctx.taskId, "end", ctx.attempt);
  return { ok: true, attempt: ctx.attempt };
});

/** A poison task: logs its start, then SIGKILLs its own worker process after `args[0]` ms (default 0). */
export const poison = defineTask("faults.poison", async (args, _k, ctx) => {
  noteExecution(ctx.taskId, "start", ctx.attempt);
  const ms = Number(args[0] ?? 0);
  if (ms > 0) await sleep(ms);
  process.kill(process.pid, "SIGKILL");
  await sleep(60_000); // never reached
});
