/**
 * Example tasks module. Compile (`npm run build`) and run a worker on it:
 *   celeriac worker --tasks dist/examples/tasks.js --queue default-queue --nats nats://127.0.0.1:4222
 * and enqueue from the shell:
 *   celeriac enqueue reports.generate --queue default-queue --args '["2026-11"]' --wait
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask, UnrecoverableError } from "../worker/index.js";

declare module "../worker/index.js" {
  interface TaskRegistry {
    "reports.generate": { args: [month: string]; kwargs: { format?: "csv" | "pdf" }; result: { month: string; rows: number; url: string } };
    "emails.send": { args: [to: string, subject: string]; kwargs: { body?: string }; result: { messageId: string } };
    "demo.flaky": { args: []; kwargs: Record<string, never>; result: { succeededOnAttempt: number } };
    "demo.always_fails": { args: []; kwargs: Record<string, never>; result: never };
  }
}

/** Builds a monthly report; honours cancellation and timeouts through ctx.signal. */
export const generateReport = defineTask("reports.generate", async ([month], { format = "csv" }, ctx) => {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new UnrecoverableError(`month "${month}" is not YYYY-MM`);
  ctx.log.info({ month, format }, "Generating report");
  let rows = 0;
  for (let chunk = 0; chunk < 5; chunk++) {
    await sleep(100, undefined, { signal: ctx.signal }); // aborts on timeout/revoke
    rows += 1000;
  }
  return { month, rows, url: `s3://reports/${month}.${format}` };
}, { timeoutSeconds: 300 });

/** Sends an email (simulated); a bad address fails at once instead of being retried. */
export const sendEmail = defineTask("emails.send", async ([to, subject], _kwargs, ctx) => {
  if (!to.includes("@")) throw new UnrecoverableError(`"${to}" is not an email address`);
  await sleep(20, undefined, { signal: ctx.signal });
  ctx.log.info({ to, subject }, "Sent email");
  return { messageId: `${ctx.taskId}@example.com` };
});

/** Fails on its first two attempts, then succeeds: shows retries with backoff. */
export const flaky = defineTask("demo.flaky", (_a, _k, ctx) => {
  if (ctx.attempt < 3) throw new Error(`transient failure on attempt ${ctx.attempt}`);
  return { succeededOnAttempt: ctx.attempt };
}, { retry: { maxAttempts: 5, backoff: { initialSeconds: 0.5 } } });

/** Always fails: ends Failed in the dead-letter stream once its attempts are used up. */
export const alwaysFails = defineTask("demo.always_fails", () => {
  throw new Error("this task always fails");
}, { retry: { maxAttempts: 2, backoff: { initialSeconds: 0.2 } } });
