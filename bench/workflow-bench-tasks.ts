/**
 * Tasks module of the Workflow bench (`bench/workflow.bench.ts`, run by the bench Queue's workers):
 * `wfb.range(n)` returns `[0, …, n-1]` (the list a forEach fans out over), `wfb.noop` returns null
 * at once (a chain step, a fan-out item), `wfb.count(name)` returns the length of the list in
 * `kwargs[name]` (the fan-in).
 */
import { defineTask } from "../worker/index.js";

/** `wfb.range(n)`: `[0, 1, …, n-1]`. */
export const range = defineTask("wfb.range", (args: unknown[]) => Array.from({ length: Number(args[0]) }, (_, i) => i));

/** `wfb.noop()`: null at once, whatever it is given. */
export const noop = defineTask("wfb.noop", () => null);

/** `wfb.count(name)`: the number of entries of `kwargs[name]` (-1 when it is not a list). */
export const count = defineTask("wfb.count", (args: unknown[], kwargs: Record<string, unknown>) => {
  const list = kwargs[String(args[0])];
  return Array.isArray(list) ? list.length : -1;
});
