/** How Celeriac prints an elapsed time in a status (`Task.status.duration`, `Workflow.status.duration`). Pure. */

/**
 * A duration in ms as kubectl prints a Job's: `850ms`, `1.5s`, `2m3s`, `1h2m`. Negative or NaN → `0s`.
 * Pure.
 * @param ms milliseconds
 */
export function formatDuration(ms: number): string {
  if (!(ms > 0)) return "0s";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))}s`;
  const totalS = Math.round(ms / 1000);
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const sec = totalS % 60;
  return h > 0 ? `${h}h${m}m` : `${m}m${sec}s`;
}
