/**
 * Applies a chain, a group and a chord with `celeriac/client` and prints their results; then a
 * chord whose header fails, to show the failure path (docs/canvas.md). Start a worker first:
 *   nats-server -js &
 *   celeriac worker --tasks dist/examples/canvas/tasks.js --queue math --concurrency 16
 *   node dist/examples/canvas/apply.js
 */
import { connect, chain, group, chord, TaskFailedError } from "../../client/index.js";
import { add, mul, xsum, div, report } from "./tasks.js";

const client = await connect({ servers: process.env.CELERIAC_NATS_URL ?? "nats://127.0.0.1:4222", queue: "math" });
try {
  // chain: each step's result is prepended to the next step's args: add(2, 2) → mul(4, 4)
  const c = await client.apply(chain(add.s([2, 2]), mul.s([4])));
  console.log("chain", c.id, await c.result({ timeoutMs: 30_000 })); // 16

  // group: in parallel; the list of results in member order
  const g = await client.apply(group(Array.from({ length: 10 }, (_, i) => add.s([i, i]))));
  console.log("group", g.id, await g.result({ timeoutMs: 30_000 })); // [0, 2, 4, …, 18]

  // chord: a group, then the body once with the list of header results prepended
  const header = Array.from({ length: 100 }, (_, i) => add.s([i + 1, i + 1]));
  const ch = await client.apply(chord(header, xsum.s()));
  console.log("chord", ch.id, await ch.result({ timeoutMs: 60_000 })); // 10100

  // nesting: a chain whose middle step is a group: 4 → [8, 12] → 20
  const n = await client.apply(chain(add.s([2, 2]), group(mul.s([2]), mul.s([3])), xsum.s()));
  console.log("chain of a group", await n.result({ timeoutMs: 30_000 })); // 20

  // failure: div(1, 0) fails, so the body never runs and report runs once with its id and error
  const bad = await client.apply(chord([add.s([1, 1]), div.s([1, 0])], xsum.s()).linkError(report.s()));
  try {
    await bad.result({ timeoutMs: 30_000 });
  } catch (err) {
    if (!(err instanceof TaskFailedError)) throw err;
    console.log("chord failed", err.type, err.message); // UnrecoverableError task <id>-1 (arith.div) failed: UnrecoverableError: division by zero
  }
  // the body's Cancelled record and the linkError run follow the failed record within milliseconds
  const body = (await bad.children()).find((s) => s.id === `${bad.id}-b`)!;
  await body.result({ timeoutMs: 5000 }).catch(() => undefined);
  for (const step of await bad.children()) console.log(" ", step.id, (await step.status())?.phase);
} finally {
  await client.close();
}
