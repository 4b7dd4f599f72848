/**
 * The peers benchmark's Celeriac tasks module (`celeriac worker --tasks dist/bench/peers/tasks.js`):
 * the same no-op task every system runs.
 */
import { defineTask } from "../../worker/index.js";

/** `add(a, b)`: returns `a + b` (numbers). */
export const add = defineTask("add", (args: unknown[]) => Number(args[0]) + Number(args[1]));
