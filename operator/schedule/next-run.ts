/**
 * When a Schedule runs: parsing `spec.schedule` + `spec.timeZone` and enumerating nominal run times.
 * Pure: data in, data out, no clock (every function takes the reference time).
 *
 * Expressions (see docs/schedules.md):
 * - 5-field cron, `minute hour day-of-month month day-of-week`, parsed by croner in Vixie-cron mode:
 *   when both day-of-month and day-of-week are restricted a day matches if EITHER matches (Vixie
 *   cron and robfig/cron, hence CronJob semantics); `*` in either leaves the other alone.
 *   `N/step` is read as `N-max/step` (robfig/cron). croner's extensions `L`, `W` and `#` work too.
 * - macros `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly` (robfig/cron's).
 * - `@every <Go duration>`: fixed intervals anchored at the Unix epoch (runs at every whole multiple
 *   of the interval since 1970-01-01T00:00:00Z), independent of the time zone and of when the
 *   Schedule was created, so every replica computes the same instants. Whole seconds, at least 1 s.
 *
 * DST rule for cron expressions, applied by this module for every expression (croner alone applies it
 * only to "fixed-time" expressions such as `30 2 * * *`, and runs `0 * * * *` twice in a fall-back
 * hour): a local time skipped by a spring-forward change runs once, at the first valid instant after
 * the gap; a local time that happens twice in a fall-back change runs once, at its first occurrence.
 * Runs falling on the same instant are merged.
 */
import { Cron } from "croner";
import { scheduleHint, timeZoneHint } from "../../api/hints.js";
import { parseGoDuration } from "./go-duration.js";
import { canonicalTimeZone, instantToWall, wallToInstant } from "./zone-time.js";

/** Latest instant a JavaScript Date can hold, in ms since the epoch (year 275760). */
const MAX_DATE_MS = 8.64e15;

/** Result of parseSchedule. `message` names the offending field (`spec.schedule: …` / `spec.timeZone: …`). */
export type ParseResult =
  | { ok: true; kind: "cron" | "every"; intervalMs?: number; timeZone: string }
  | { ok: false; message: string };

type Compiled =
  | { kind: "cron"; cron: Cron; timeZone: string }
  | { kind: "every"; intervalMs: number; timeZone: string }
  | { kind: "invalid"; message: string };

const MACROS = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);
const cache = new Map<string, Compiled>();
const CACHE_LIMIT = 512;

function compile(schedule: string, timeZone: string): Compiled {
  const key = `${timeZone}\n${schedule}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const compiled = compileUncached(schedule, timeZone);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, compiled);
  return compiled;
}

function compileUncached(schedule: string, timeZone: string): Compiled {
  const compiled = compileSchedule(schedule, timeZone);
  if (compiled.kind !== "invalid" || !compiled.message.startsWith("spec.schedule")) return compiled;
  const hint = scheduleHint(schedule);
  return hint ? { kind: "invalid", message: `${compiled.message} (${hint})` } : compiled;
}

function compileSchedule(schedule: string, timeZone: string): Compiled {
  const zone = canonicalTimeZone(timeZone);
  if (zone === undefined) return { kind: "invalid", message: `spec.timeZone: unknown time zone "${timeZone}": ${timeZoneHint(timeZone)}` };
  const text = schedule.trim();
  if (/^(CRON_)?TZ=/i.test(text)) {
    return { kind: "invalid", message: `spec.schedule: "${schedule}": TZ= and CRON_TZ= prefixes are not supported, set spec.timeZone instead` };
  }
  if (text.startsWith("@every")) {
    const arg = text.slice("@every".length).trim();
    const ms = parseGoDuration(arg);
    if (ms === undefined || !/^@every\s+\S+$/.test(text)) {
      return { kind: "invalid", message: `spec.schedule: "${schedule}": @every needs a Go duration such as 30s, 5m or 1h30m` };
    }
    if (!(ms >= 1000) || ms % 1000 !== 0 || ms > MAX_DATE_MS) {
      return { kind: "invalid", message: `spec.schedule: "${schedule}": the @every interval must be a whole number of seconds, at least 1s` };
    }
    return { kind: "every", intervalMs: ms, timeZone: zone };
  }
  if (text.startsWith("@") && !MACROS.has(text.toLowerCase())) {
    return { kind: "invalid", message: `spec.schedule: "${schedule}": unknown macro, use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>` };
  }
  let cron: Cron;
  try {
    // Evaluated in UTC on purpose: croner yields wall times and this module maps them to instants
    // with the DST rule above. domAndDow false = Vixie OR semantics; sloppyRanges accepts robfig's N/step.
    cron = new Cron(text.startsWith("@") ? text.toLowerCase() : text, {
      utcOffset: 0,
      mode: "5-part",
      domAndDow: false,
      sloppyRanges: true,
      paused: true,
    });
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, "") : String(err);
    return { kind: "invalid", message: `spec.schedule: "${schedule}": ${detail}` };
  }
  if (cron.nextRun(new Date(0)) === null) {
    return { kind: "invalid", message: `spec.schedule: "${schedule}": never matches a date` };
  }
  return { kind: "cron", cron, timeZone: zone };
}

/**
 * Validates a schedule expression and time zone.
 * @param schedule `spec.schedule`
 * @param timeZone `spec.timeZone` (IANA name; pass DEFAULT_SCHEDULE.timeZone when unset)
 * @returns `{ok: true, kind, intervalMs?, timeZone}` (the canonical zone name), or `{ok: false, message}` with
 *   the parser's message prefixed by the field, e.g. `spec.timeZone: unknown time zone "Mars/Olympus"`
 */
export function parseSchedule(schedule: string, timeZone: string): ParseResult {
  const c = compile(schedule, timeZone);
  if (c.kind === "invalid") return { ok: false, message: c.message };
  if (c.kind === "every") return { ok: true, kind: "every", intervalMs: c.intervalMs, timeZone: c.timeZone };
  return { ok: true, kind: "cron", timeZone: c.timeZone };
}

function compileOrThrow(schedule: string, timeZone: string): Exclude<Compiled, { kind: "invalid" }> {
  const c = compile(schedule, timeZone);
  if (c.kind === "invalid") throw new Error(`parse schedule: ${c.message}`);
  return c;
}

/**
 * Nominal run times in the interval (`from`, `to`]: after `from` (exclusive) up to `to` (inclusive),
 * oldest first, at most `limit` of them, by the DST rule in the module comment.
 * @param schedule `spec.schedule`
 * @param timeZone `spec.timeZone`
 * @param from exclusive lower bound
 * @param to inclusive upper bound
 * @param limit most run times returned (≥ 0)
 * @returns run times, whole seconds, strictly increasing
 * @throws Error when the schedule or zone is invalid (check with parseSchedule first)
 */
export function runsBetween(schedule: string, timeZone: string, from: Date, to: Date, limit: number): Date[] {
  const c = compileOrThrow(schedule, timeZone);
  const fromMs = from.getTime();
  const toMs = Math.min(to.getTime(), MAX_DATE_MS);
  const out: Date[] = [];
  if (limit <= 0 || !(toMs > fromMs)) return out;
  if (c.kind === "every") {
    const iv = c.intervalMs;
    for (let k = Math.floor(fromMs / iv) + 1; out.length < limit && k * iv <= toMs; k++) out.push(new Date(k * iv));
    return out;
  }
  // Walk wall times upwards from the wall time of `from`; map each to its instant (monotone, non-decreasing).
  let wall = instantToWall(c.timeZone, fromMs);
  let last = -Infinity;
  for (;;) {
    const next = c.cron.nextRun(new Date(wall));
    if (next === null) break;
    wall = next.getTime();
    const instant = wallToInstant(c.timeZone, wall);
    if (instant > toMs) break;
    if (instant <= fromMs || instant === last) continue;
    out.push(new Date(instant));
    last = instant;
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * The first nominal run time strictly after `after`.
 * @returns the run time, or undefined when the expression never matches again
 * @throws Error when the schedule or zone is invalid (check with parseSchedule first)
 */
export function nextRun(schedule: string, timeZone: string, after: Date): Date | undefined {
  return runsBetween(schedule, timeZone, after, new Date(MAX_DATE_MS), 1)[0];
}
