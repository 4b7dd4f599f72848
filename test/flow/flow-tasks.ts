/**
 * Tasks module of the flow-control integration tests (run by `celeriac worker` child processes).
 * `flow.run` sleeps `args[0]` ms and appends `<ms> <pid> <task id> <label> start|done <attempt>`
 * lines to the file named by CELERIAC_TEST_LOG: the per-execution log the tests assert on.
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../../worker/index.js";

function note(id: string, label: string, event: string, attempt: number): void {
  const file = process.env.CELERIAC_TEST_LOG;
  if (file) appendFileSync(file, `${Date.now()} ${process.pid} ${id} ${label} ${event} ${attempt}\n`);
}

/** Sleeps `args[0]` ms; `args[1]` is the label logged (a concurrency key or a priority class). */
export const run = defineTask("flow.run", async (args, _k, ctx) => {
  const label = String(args[1] ?? "-");
  note(ctx.taskId, label, "start", ctx.attempt);
  await sleep(Number(args[0] ?? 0), undefined, { signal: ctx.signal });
  note(ctx.taskId, label, "done", ctx.attempt);
  return null;
});
