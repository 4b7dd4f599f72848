/**
 * Tasks module of the canvas semantics tests, run by real `celeriac worker --tasks` child processes.
 * Every task appends one line per event to the file named by CELERIAC_TEST_LOG, the per-execution
 * log the tests assert on: `<ms> <pid> <task id> <attempt> <event> <json>` (the JSON last, without
 * spaces in the fields before it). Events: `start` (json: what the test needs of the args), `done`,
 * `abort` (the signal aborted), `fail`. Per-test settings come in kwargs (a chain prepends its
 * parent's result to args, never to kwargs).
 */
import { appendFileSync, existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../../../worker/index.js";

/** Appends one line to the per-execution log (one `write`, so lines from several processes never interleave). */
function note(ctx: { taskId: string; attempt: number }, event: string, data: unknown = null): void {
  const file = process.env.CELERIAC_TEST_LOG;
  if (file) appendFileSync(file, `${Date.now()} ${process.pid} ${ctx.taskId} ${ctx.attempt} ${event} ${JSON.stringify(data)}\n`);
}

type Kw = { sleepMs?: number; summary?: boolean; bytes?: number; message?: string; file?: string; maxMs?: number };

/** Sleeps `kwargs.sleepMs` (default 0) and returns `args[0]` (null without args). */
export const echo = defineTask<"sem.echo", { args: unknown[]; kwargs: Kw; result: unknown }>("sem.echo", async (args, kwargs, ctx) => {
  note(ctx, "start");
  if (kwargs.sleepMs) await sleep(kwargs.sleepMs, undefined, { signal: ctx.signal });
  note(ctx, "done");
  return args[0] ?? null;
});

/**
 * A chord body: logs the list it received (`args[0]`) and returns it, or with `kwargs.summary`
 * `{n, sum}` of it (a 10,000-result list would make a large record).
 */
export const collect = defineTask<"sem.collect", { args: unknown[]; kwargs: Kw; result: unknown }>("sem.collect", (args, kwargs, ctx) => {
  const list = args[0];
  note(ctx, "start", list);
  note(ctx, "done");
  if (!kwargs.summary) return list;
  const xs = Array.isArray(list) ? (list as unknown[]) : [];
  return { n: xs.length, sum: xs.reduce<number>((s, x) => s + (typeof x === "number" ? x : 0), 0) };
});

/** A string of `n` characters, a repeating position-dependent pattern (what `sem.big` returns). Pure. */
export function bigString(n: number): string {
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const p = `${i.toString(36)}|`;
    parts.push(p);
    len += p.length;
  }
  return parts.join("").slice(0, n);
}

/** Returns `bigString(kwargs.bytes)`. */
export const big = defineTask<"sem.big", { args: unknown[]; kwargs: Kw; result: string }>("sem.big", (_args, kwargs, ctx) => {
  note(ctx, "start");
  const s = bigString(kwargs.bytes ?? 0);
  note(ctx, "done");
  return s;
});

/** Type, length (of a string, else -1) and sha256 (of a string, else of its JSON) of `v`. */
function digest(v: unknown): { type: string; length: number; sha256: string } {
  return { type: typeof v, length: typeof v === "string" ? v.length : -1, sha256: createHash("sha256").update(typeof v === "string" ? v : JSON.stringify(v ?? null)).digest("hex") };
}

/**
 * Logs (and returns) the digest (type, length, sha256) of what it received (`args[0]`); for a list,
 * the digest of each element.
 */
export const measure = defineTask<"sem.measure", { args: unknown[]; kwargs: Kw; result: unknown }>("sem.measure", (args, _kwargs, ctx) => {
  const v = args[0];
  const out = Array.isArray(v) ? v.map(digest) : digest(v);
  note(ctx, "start", out);
  note(ctx, "done");
  return out;
});

/** Always throws a plain (retried) Error with `kwargs.message`, after logging `fail`. */
export const fail = defineTask<"sem.fail", { args: unknown[]; kwargs: Kw; result: never }>("sem.fail", (_args, kwargs, ctx) => {
  note(ctx, "start");
  note(ctx, "fail");
  throw new Error(kwargs.message ?? "sem.fail failed");
});

/** A linkError callback: logs every arg it got (`[failedTaskId, {type, message, stack?}, ...]`). */
export const errback = defineTask<"sem.errback", { args: unknown[]; kwargs: Kw; result: null }>("sem.errback", (args, _kwargs, ctx) => {
  const [id, err, ...rest] = args as [string, { type?: string; message?: string }, ...unknown[]];
  note(ctx, "start", { failedTaskId: id, type: err?.type, message: err?.message, rest });
  note(ctx, "done");
  return null;
});

/** Runs until its signal aborts (logs `abort`, rejects with the reason) or `kwargs.maxMs` (default 60 s) pass. */
export const hang = defineTask<"sem.hang", { args: unknown[]; kwargs: Kw; result: string }>("sem.hang", async (_args, kwargs, ctx) => {
  note(ctx, "start");
  try {
    await sleep(kwargs.maxMs ?? 60_000, undefined, { signal: ctx.signal });
  } catch (err) {
    note(ctx, "abort", { reason: String((ctx.signal.reason as Error | undefined)?.name ?? ctx.signal.reason) });
    throw err;
  }
  note(ctx, "done");
  return "woke";
});

/**
 * Waits until `kwargs.file` exists (polled every millisecond, at most 30 s), then returns `args[0]`:
 * two of these on two processes return within about a millisecond of each other.
 */
export const barrier = defineTask<"sem.barrier", { args: unknown[]; kwargs: Kw; result: unknown }>("sem.barrier", async (args, kwargs, ctx) => {
  note(ctx, "start");
  const end = Date.now() + 30_000;
  while (!existsSync(String(kwargs.file))) {
    if (Date.now() > end) throw new Error(`barrier file ${kwargs.file} never appeared`);
    await sleep(1, undefined, { signal: ctx.signal });
  }
  note(ctx, "done");
  return args[0] ?? null;
});
