/**
 * Tasks module of the flow-control bench (`celeriac worker --tasks dist/bench/flow-bench-tasks.js`):
 * the no-op `add(a, b)` of every throughput bench, and `nap(ms)`, which sleeps `args[0]` ms.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../worker/index.js";

/** `add(a, b)`: returns `a + b` (numbers). */
export const add = defineTask("add", (args: unknown[]) => Number(args[0]) + Number(args[1]));

/** `nap(ms)`: sleeps `args[0]` milliseconds. */
export const nap = defineTask("nap", async (args: unknown[], _k, ctx) => {
  await sleep(Number(args[0] ?? 0), undefined, { signal: ctx.signal });
  return null;
});
