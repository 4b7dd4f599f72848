/**
 * Tasks module of the canvas bench (`celeriac worker --tasks dist/bench/canvas-bench-tasks.js`):
 * `noop()` returns null; `count(results)` returns the length of the list a chord passes it.
 */
import { defineTask } from "../worker/index.js";

/** `noop()`: returns null at once (whatever args a chain prepends). */
export const noop = defineTask("noop", () => null);

/** `count(results)`: the number of entries in `args[0]` (a chord body's list of header results). */
export const count = defineTask("count", (args: unknown[]) => (Array.isArray(args[0]) ? args[0].length : -1));
