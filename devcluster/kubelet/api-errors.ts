/** Classifies errors thrown by @kubernetes/client-node 1.x calls. */

/**
 * The HTTP status of a failed API call.
 * @param err whatever a client-node call threw (an `ApiException` carries `code`)
 * @returns the status code, or undefined for a non-HTTP failure
 */
export function apiStatusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** True when the call failed with 404 Not Found. */
export const isNotFound = (err: unknown): boolean => apiStatusCode(err) === 404;

/** True when the call failed with 409 Conflict or AlreadyExists. */
export const isConflict = (err: unknown): boolean => apiStatusCode(err) === 409;
