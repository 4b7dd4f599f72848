/**
 * Tasks for the canvas examples (docs/canvas.md): add, mul and xsum as in Celery's canvas guide, a
 * division that fails on zero, and an error reporter for `linkError`. Compile (`npm run build`)
 * and run a worker on it:
 *   celeriac worker --tasks dist/examples/canvas/tasks.js --queue math --concurrency 16
 * then apply a canvas from the shell:
 *   celeriac enqueue --canvas @examples/canvas/chord.json --queue math --wait
 * or from TypeScript: examples/canvas/apply.ts.
 */
import { defineTask, UnrecoverableError } from "../../worker/index.js";

declare module "../../worker/index.js" {
  interface TaskRegistry {
    "arith.add": { args: [a: number, b: number]; kwargs: Record<string, never>; result: number };
    "arith.mul": { args: [a: number, b: number]; kwargs: Record<string, never>; result: number };
    "arith.xsum": { args: [numbers: number[]]; kwargs: Record<string, never>; result: number };
    "arith.div": { args: [a: number, b: number]; kwargs: Record<string, never>; result: number };
    "arith.report": { args: [taskId: string, error: { type: string; message: string; stack?: string }]; kwargs: Record<string, never>; result: null };
  }
}

/** `a + b`. In a chain, `add.s([4])` receives the previous result as `a`. */
export const add = defineTask("arith.add", ([a, b]) => a + b);

/** `a * b`. */
export const mul = defineTask("arith.mul", ([a, b]) => a * b);

/** The sum of a list: the body of a chord receives its header's results as this list. */
export const xsum = defineTask("arith.xsum", ([numbers]) => numbers.reduce((sum, n) => sum + n, 0));

/** `a / b`; fails at once (no retry) when `b` is 0, to show how a failure stops a canvas. */
export const div = defineTask("arith.div", ([a, b]) => {
  if (b === 0) throw new UnrecoverableError("division by zero");
  return a / b;
});

/**
 * A `linkError` callback: receives the failed task's id and its error (`{type, message, stack}`)
 * prepended to its own args, and logs them.
 */
export const report = defineTask("arith.report", ([taskId, error], _kwargs, ctx) => {
  ctx.log.error({ failedTask: taskId, error }, "Canvas step failed");
  return null;
});
