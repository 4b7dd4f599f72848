/**
 * Versioned JSON values kept in a results bucket (`queue.settings`, `task-defaults.*`). Pure.
 */

/**
 * The first step of parsing a versioned JSON value (a results-bucket `queue.settings` or
 * `task-defaults.*` value): JSON text or UTF-8 bytes to a value, refused when it is an object whose
 * `v` is not `version`. Never throws.
 * @returns the parsed value, or `{error}`: "not JSON: …" or "v: Unsupported value: 2: supported values: 1"
 */
export function parseVersionedJson(data: Uint8Array | string, version: number): { value: unknown } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch (err) {
    return { error: `not JSON: ${(err as Error).message}` };
  }
  if (value !== null && typeof value === "object" && "v" in value && (value as { v: unknown }).v !== version) {
    return { error: `v: Unsupported value: ${JSON.stringify((value as { v: unknown }).v)}: supported values: ${version}` };
  }
  return { value };
}
