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
    "demo.long": { args: [seconds?: number]; kwargs: Record<string, never>; result: { seconds: number } };
    "etl.fetch": { args: [source: string]; kwargs: Record<string, never>; result: Sale[] };
    "etl.clean": { args: []; kwargs: { fetch: Sale[] }; result: Sale[] };
    "etl.stats": { args: []; kwargs: { fetch: Sale[] }; result: { rows: number; total: number; mean: number } };
    "etl.report": { args: []; kwargs: { clean: Sale[]; stats: { rows: number; total: number; mean: number } }; result: { rowsIn: number; rowsKept: number; total: number; keptTotal: number; top: Sale | null } };
    "reports.months": { args: [from: string, count: number]; kwargs: Record<string, never>; result: string[] };
    "reports.summarize": { args: []; kwargs: { reports: Array<{ month: string; rows: number; url: string }> }; result: { months: number; rows: number; urls: string[] } };
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

/**
 * Runs for `seconds` (default 60, at most 3600), reporting progress every second (`done`/`total` in
 * seconds): a task to watch with `celeriac inspect active`, `celeriac tasks get` and the PROGRESS
 * column of `kubectl get tasks`. Revoking it aborts it.
 */
export const long = defineTask("demo.long", async ([seconds = 60], _kwargs, ctx) => {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new UnrecoverableError(`seconds is ${String(seconds)}: give a whole number from 1 to 3600`);
  for (let done = 0; done < seconds; done++) {
    ctx.progress({ done, total: seconds });
    await sleep(1000, undefined, { signal: ctx.signal });
  }
  ctx.progress({ done: seconds, total: seconds });
  return { seconds };
}, { timeoutSeconds: 3700 });

/** One sale row of the ETL example Workflow (examples/workflows/diamond.yaml). */
export interface Sale {
  id: number;
  region: string;
  amount: number;
}

/**
 * Step `fetch` of the diamond Workflow: "downloads" 20 sales rows from `source` (simulated,
 * deterministic: rows 7 and 13 have invalid negative amounts for `clean` to drop).
 */
export const etlFetch = defineTask("etl.fetch", async ([source], _kwargs, ctx) => {
  await sleep(50, undefined, { signal: ctx.signal });
  const regions = ["north", "south", "east", "west"];
  const rows = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, region: regions[i % 4]!, amount: i === 6 || i === 12 ? -1 : ((i * 37) % 100) + 10 }));
  ctx.log.info({ source, rows: rows.length }, "Fetched sales");
  return rows;
});

/** Step `clean`: keeps the rows with a valid amount. Gets fetch's result as `kwargs.fetch`. */
export const etlClean = defineTask("etl.clean", (_args, { fetch }) => fetch.filter((r) => r.amount >= 0));

/** Step `stats`: counts and totals the raw rows (runs beside `clean`). Gets fetch's result as `kwargs.fetch`. */
export const etlStats = defineTask("etl.stats", (_args, { fetch }) => {
  const total = fetch.reduce((sum, r) => sum + r.amount, 0);
  return { rows: fetch.length, total, mean: fetch.length ? total / fetch.length : 0 };
});

/** Step `report`: joins both branches. Gets `kwargs.clean` and `kwargs.stats`. */
export const etlReport = defineTask("etl.report", (_args, { clean, stats }) => {
  const keptTotal = clean.reduce((sum, r) => sum + r.amount, 0);
  const top = clean.reduce<Sale | null>((best, r) => (best === null || r.amount > best.amount ? r : best), null);
  return { rowsIn: stats.rows, rowsKept: clean.length, total: stats.total, keptTotal, top };
});

/** `count` consecutive months from `from` (YYYY-MM): the list a forEach step fans out over. */
export const months = defineTask("reports.months", ([from, count]) => {
  const m = /^(\d{4})-(\d{2})$/.exec(from);
  if (!m) throw new UnrecoverableError(`from "${from}" is not YYYY-MM`);
  if (!Number.isInteger(count) || count < 1 || count > 120) throw new UnrecoverableError(`count ${count} is not an integer in 1-120`);
  const start = Number(m[1]) * 12 + Number(m[2]) - 1;
  return Array.from({ length: count }, (_, i) => `${Math.floor((start + i) / 12)}-${String(((start + i) % 12) + 1).padStart(2, "0")}`);
});

/** The fan-in of the forEach example: `kwargs.reports` is the list of reports.generate results, in item order. */
export const summarize = defineTask("reports.summarize", (_args, { reports }) => ({
  months: reports.length,
  rows: reports.reduce((sum, r) => sum + r.rows, 0),
  urls: reports.map((r) => r.url),
}));
