/**
 * Go `time.ParseDuration` syntax (e.g. `2s`, `1h30m`, `1.5h`, `500ms`), as used by `@every` in
 * robfig/cron (CronJob's parser) and by Celeriac's other duration fields. Pure.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go duration into milliseconds (may be fractional for ns/µs units).
 * Accepts an optional sign, as Go does; `0` alone is zero.
 * @returns the duration in milliseconds, or undefined when `text` is not a Go duration
 */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s.startsWith("-")) sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return undefined;
  let total = 0;
  TERM.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    TERM.lastIndex = pos;
    const m = TERM.exec(s);
    if (!m || m.index !== pos) return undefined;
    const num = m[1] ?? "";
    if (num === "" || num === ".") return undefined;
    total += Number(num) * (UNIT_MS[m[2] ?? ""] ?? NaN);
    pos = TERM.lastIndex;
  }
  return Number.isFinite(total) ? sign * total : undefined;
}
