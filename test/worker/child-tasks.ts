/**
 * Tasks module for tests that run the worker as a child process (`celeriac worker`). Every task
 * appends `<taskId> <event>` lines to the file named by CELERIAC_TEST_LOG, so tests can count runs.
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../../worker/index.js";

function note(id: string, event: string): void {
  const file = process.env.CELERIAC_TEST_LOG;
  if (file) appendFileSync(file, `${id} ${event}\n`);
}

/** Sleeps `args[0]` ms (honouring the signal), logging start and done. */
export const sleepTask = defineTask("test.sleep", async (args, _k, ctx) => {
  note(ctx.taskId, `start ${ctx.attempt}`);
  await sleep(Number(args[0] ?? 0), undefined, { signal: ctx.signal });
  note(ctx.taskId, "done");
  return { slept: args[0], attempt: ctx.attempt };
});

/** Kills its own worker process (a poison task). */
export const poison = defineTask("test.poison", (_a, _k, ctx) => {
  note(ctx.taskId, `start ${ctx.attempt}`);
  process.kill(process.pid, "SIGKILL");
});

/** Kills its own worker process with `process.exit(137)` (a poison task that exits instead of SIGKILLing). */
export const poisonExit = defineTask("test.poison-exit", (_a, _k, ctx) => {
  note(ctx.taskId, `start ${ctx.attempt}`);
  process.exit(137);
});
