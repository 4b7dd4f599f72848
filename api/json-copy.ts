/**
 * A fast deep copy of JSON data. Pure.
 */

/**
 * Deep copy of a JSON value with `JSON.parse(JSON.stringify(v))`'s result for JSON data (an
 * undefined or function member is left out, an undefined array element becomes null, a non-finite
 * number becomes null, an object with `toJSON` (a Date) becomes what it serialises to) at about a
 * seventh of its cost (1.5–1.9 µs against 12–13 µs for a stored Task; the round trip was 7.8 % of
 * the in-memory API server's CPU in the 1,000-Task CR burst). An own `__proto__` key stays data.
 * @param v any JSON value; `undefined` is returned as is
 */
export function jsonCopy<T>(v: T): T {
  return v === undefined ? v : (copy(v) as T);
}

function copy(v: unknown): unknown {
  if (v === null || typeof v !== "object") return typeof v === "number" && !Number.isFinite(v) ? null : v;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      out[i] = x === undefined || typeof x === "function" ? null : copy(x);
    }
    return out;
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return JSON.parse(JSON.stringify(v)) as unknown;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || typeof x === "function") continue;
    // an own "__proto__" key (JSON.parse makes one) must stay a plain property, not set the prototype
    if (k === "__proto__") Object.defineProperty(out, k, { value: copy(x), enumerable: true, writable: true, configurable: true });
    else out[k] = copy(x);
  }
  return out;
}
