/**
 * Wall-clock arithmetic in IANA time zones, on top of the platform's `Intl` zone database. Pure (the
 * zone database is read-only data); no dependency beyond Node's ICU.
 *
 * A "wall time" here is a local date and time encoded as the number of milliseconds it would be
 * if it were UTC (e.g. 02:30 on 2024-03-31 in Europe/Berlin is `Date.UTC(2024, 2, 31, 2, 30)`), so
 * calendar arithmetic on it never meets a DST change.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      era: "short",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * Checks an IANA time zone name against the zone database.
 * @returns the canonical name (e.g. `Europe/Berlin` for `europe/berlin`), or undefined when unknown
 */
export function canonicalTimeZone(timeZone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/**
 * UTC offset of `timeZone` at `instantMs`, in milliseconds (east positive: Europe/Berlin in winter → 3 600 000).
 * @throws RangeError when the zone is unknown (check with canonicalTimeZone first)
 */
export function zoneOffsetMs(timeZone: string, instantMs: number): number {
  const seconds = Math.floor(instantMs / 1000) * 1000;
  const parts = formatter(timeZone).formatToParts(new Date(seconds));
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const p of parts) {
    switch (p.type) {
      case "year": year = Number(p.value); break;
      case "month": month = Number(p.value); break;
      case "day": day = Number(p.value); break;
      case "hour": hour = Number(p.value); break;
      case "minute": minute = Number(p.value); break;
      case "second": second = Number(p.value); break;
      case "era": bc = p.value.startsWith("B"); break;
      default: break;
    }
  }
  const d = new Date(0);
  d.setUTCFullYear(bc ? 1 - year : year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime() - seconds;
}

/** The wall time (see the module comment) of `instantMs` in `timeZone`. */
export function instantToWall(timeZone: string, instantMs: number): number {
  return instantMs + zoneOffsetMs(timeZone, instantMs);
}

/**
 * The instant at which wall time `wallMs` happens in `timeZone`, by Celeriac's DST rule:
 * - a wall time that happens twice (fall-back) maps to its first occurrence;
 * - a wall time that does not happen (spring-forward gap) maps to the first valid instant after
 *   the gap, i.e. the instant of the transition itself.
 *
 * Assumes at most one offset change within a day of `wallMs` (true of every zone since 1900).
 * @returns milliseconds since the Unix epoch
 */
export function wallToInstant(timeZone: string, wallMs: number): number {
  const before = zoneOffsetMs(timeZone, wallMs - DAY_MS);
  const after = zoneOffsetMs(timeZone, wallMs + DAY_MS);
  const uBefore = wallMs - before;
  if (before === after) {
    if (zoneOffsetMs(timeZone, uBefore) === before) return uBefore;
  }
  const uAfter = wallMs - after;
  const validBefore = zoneOffsetMs(timeZone, uBefore) === before;
  const validAfter = zoneOffsetMs(timeZone, uAfter) === after;
  if (validBefore && validAfter) return Math.min(uBefore, uAfter);
  if (validBefore) return uBefore;
  if (validAfter) return uAfter;
  // A gap: the transition lies between the two candidates; find its first instant (offset = `after`).
  let lo = Math.min(uBefore, uAfter);
  let hi = Math.max(uBefore, uAfter);
  if (zoneOffsetMs(timeZone, hi) !== after) {
    // Two transitions within the window (never seen since 1900): fall back to the plain UTC reading.
    return wallMs - zoneOffsetMs(timeZone, wallMs);
  }
  // Invariant: offset(lo) !== after, offset(hi) === after; transitions fall on whole seconds.
  lo = Math.floor(lo / 1000);
  hi = Math.ceil(hi / 1000);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (zoneOffsetMs(timeZone, mid * 1000) === after) hi = mid;
    else lo = mid;
  }
  return hi * 1000;
}
