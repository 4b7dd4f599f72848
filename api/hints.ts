/**
 * Hints for the habits people bring from elsewhere (Celery, Quartz, plain English) when a duration or
 * schedule is refused: `7d` → `168h`, `@every 1d` → `@every 24h`, 6-field cron → no seconds field,
 * `crontab(minute=0, hour=3)` → `0 3 * * *`. Pure: text in, hint or undefined out. Used by the schema
 * validation's pattern messages (API server and `celeriac validate`) and meant for the Schedule
 * reconciler's InvalidSchedule message too.
 */

const UNIT_HOURS: Record<string, number> = { d: 24, day: 24, days: 24, w: 168, wk: 168, wks: 168, week: 168, weeks: 168 };
const UNIT_GO: Record<string, string> = {
  h: "h", hr: "h", hrs: "h", hour: "h", hours: "h",
  m: "m", min: "m", mins: "m", minute: "m", minutes: "m",
  s: "s", sec: "s", secs: "s", second: "s", seconds: "s",
  ms: "ms", millisecond: "ms", milliseconds: "ms",
};

function trimNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(6)));
}

/**
 * The Go duration meant by a non-Go duration such as `7d`, `2 weeks`, `1 hour`, `90 seconds`, `1h 30m`.
 * @returns e.g. `168h`, or undefined when the text is not recognised (or already a Go duration)
 */
export function goDurationFor(text: string): string | undefined {
  const parts = text.trim().toLowerCase().split(/\s*,\s*|\s+and\s+|(?<=[a-z])\s+(?=\d)/);
  let hours = 0;
  const rest: string[] = [];
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/.exec(part.trim());
    if (!m) return undefined;
    const n = Number(m[1]);
    const unit = m[2]!;
    if (UNIT_HOURS[unit] !== undefined) hours += n * UNIT_HOURS[unit]!;
    else if (UNIT_GO[unit] !== undefined) rest.push(`${trimNumber(n)}${UNIT_GO[unit]}`);
    else return undefined;
  }
  const out = `${hours > 0 ? `${trimNumber(hours)}h` : ""}${rest.join("")}`;
  if (!out || out === text.trim()) return undefined;
  return out;
}

/**
 * A hint for a refused Go duration field value.
 * @returns e.g. `use 168h (Go durations have no d or w unit)`, or undefined
 */
export function durationHint(text: string): string | undefined {
  const bare = /^\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  if (bare) return `add a unit: ${bare[1]}s, ${bare[1]}m or ${bare[1]}h (Go durations need one)`;
  const go = goDurationFor(text);
  if (!go) return undefined;
  return /\d\s*(d|days?|w|wks?|weeks?)\b/i.test(text) ? `use ${go} (Go durations have no d or w unit)` : `use ${go}`;
}

const CELERY_FIELDS = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"] as const;

/**
 * The 5-field cron a Celery `crontab(...)` call means, e.g. `crontab(minute=0, hour=3)` → `0 3 * * *`
 * (Celery defaults every field to `*`).
 * @returns the cron expression, or undefined when the text is not a crontab(...) call with known fields
 */
export function cronForCeleryCrontab(text: string): string | undefined {
  const m = /^\s*(?:celery\.schedules\.)?crontab\s*\((.*)\)\s*$/s.exec(text);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  const args = m[1]!.trim();
  if (args) {
    for (const arg of args.split(/\s*,\s*(?=[a-z_]+\s*=)/)) {
      const kv = /^([a-z_]+)\s*=\s*(.+)$/s.exec(arg.trim());
      if (!kv || !(CELERY_FIELDS as readonly string[]).includes(kv[1]!)) return undefined;
      fields[kv[1]!] = kv[2]!.trim().replace(/^["']|["']$/g, "").replace(/\s+/g, "");
    }
  }
  return CELERY_FIELDS.map((f) => fields[f] ?? "*").join(" ");
}

const CRON_FIELDS: ReadonlyArray<{ name: string; min: number; max: number; names?: string }> = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC" },
  { name: "day-of-week", min: 0, max: 7, names: "SUN MON TUE WED THU FRI SAT" },
];

/** The range (or the names) a 5-field cron's first out-of-range field allows, e.g. `minute is 0-59`. */
function cronFieldHint(fields: string[]): string | undefined {
  for (const [i, f] of CRON_FIELDS.entries()) {
    const text = fields[i]!;
    // numbers in ranges, lists and steps; a step (after /) is not a value of the field
    for (const part of text.split(",")) {
      const [range] = part.split("/");
      for (const token of range!.split("-")) {
        if (/^[LW?]$/i.test(token)) continue; // croner's L, W and ? (the # form is not all letters or digits)
        const outOfRange = /^\d+$/.test(token) && (Number(token) < f.min || Number(token) > f.max);
        const unknownName = /^[a-z]+$/i.test(token) && !(f.names?.split(" ").includes(token.toUpperCase()) ?? false);
        if (outOfRange || unknownName) {
          return `${f.name} is ${f.min}-${f.max}${f.names ? ` or ${f.names}` : ""} (cron fields: minute hour day-of-month month day-of-week)`;
        }
      }
    }
  }
  return undefined;
}

/**
 * A hint for a refused `spec.schedule`.
 * @returns e.g. `use @every 24h`, `no seconds field: use @every for sub-minute runs`, `use "0 3 * * *"`; or undefined
 */
export function scheduleHint(schedule: string): string | undefined {
  const text = schedule.trim();
  const celery = cronForCeleryCrontab(text);
  if (celery) return `use "${celery}" (a 5-field cron: minute hour day-of-month month day-of-week)`;
  const every = /^@every\s+(.+)$/i.exec(text);
  if (every) {
    const go = goDurationFor(every[1]!);
    return go ? `use @every ${go}` : undefined;
  }
  // "every 5 minutes", "every 1h": the English (or Celery's `run_every`) way of @every
  const english = /^every\s+(.+)$/i.exec(text);
  if (english) {
    const arg = /^[a-z]+$/i.test(english[1]!.trim()) ? `1 ${english[1]!.trim()}` : english[1]!;
    const go = goDurationFor(arg) ?? (/^(\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(arg.trim()) ? arg.trim() : undefined);
    return go ? `use @every ${go}` : undefined;
  }
  const fields = text.split(/\s+/);
  if (fields.length === 5) return cronFieldHint(fields);
  if (fields.length === 6 || fields.length === 7) {
    const five = fields.slice(1, 6).join(" ");
    const drop = fields[0] === "0" ? `, or drop the seconds field ("${five}")` : "";
    return `no seconds field: use @every for sub-minute runs${drop}`;
  }
  return undefined;
}

/**
 * A hint for an unknown `spec.timeZone`: the IANA zone of the same city when there is one
 * (`Berlin` → `Europe/Berlin`, `US/New York` → `America/New_York`), else what a zone name looks like.
 * @returns e.g. `use "Europe/Berlin"`, or `use an IANA time zone name such as …`
 */
export function timeZoneHint(timeZone: string): string {
  const city = timeZone.trim().split("/").pop()!.toLowerCase().replace(/\s+/g, "_");
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const same = city ? zones.find((z) => z.split("/").pop()!.toLowerCase() === city) : undefined;
  if (same && same !== timeZone) return `use "${same}"`;
  return 'use an IANA time zone name such as "Europe/Berlin", "America/New_York" or "UTC"';
}
