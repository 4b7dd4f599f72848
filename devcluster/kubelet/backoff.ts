/**
 * Container restart back-off, as the kubelet does it: the base delay doubles with each restart up to a
 * cap (upstream: 10 s doubling to 5 min), and resets after the container ran cleanly for twice the cap.
 */

/** Upstream kubelet's initial crash back-off, in ms. */
export const DEFAULT_BACKOFF_BASE_MS = 10_000;

/** The cap is this many times the base (upstream: 300 s / 10 s). */
export const BACKOFF_CAP_FACTOR = 30;

/**
 * Delay before restarting a container that has exited.
 * @param consecutiveCrashes how many times it has exited since the back-off last reset (1 for the first exit)
 * @param baseMs the first delay in ms (default {@link DEFAULT_BACKOFF_BASE_MS})
 * @returns the delay in ms: `baseMs * 2^(consecutiveCrashes-1)`, capped at `baseMs * 30`; 0 for `< 1`
 */
export function restartDelayMs(consecutiveCrashes: number, baseMs = DEFAULT_BACKOFF_BASE_MS): number {
  if (consecutiveCrashes < 1) return 0;
  const cap = baseMs * BACKOFF_CAP_FACTOR;
  return Math.min(cap, baseMs * 2 ** Math.min(consecutiveCrashes - 1, 30));
}

/**
 * Whether a run was long enough to reset the back-off (upstream: ten minutes for the default base).
 * @param ranForMs how long the container ran before exiting, in ms
 * @param baseMs the back-off base in ms
 */
export function resetsBackoff(ranForMs: number, baseMs = DEFAULT_BACKOFF_BASE_MS): boolean {
  return ranForMs >= 2 * baseMs * BACKOFF_CAP_FACTOR;
}
