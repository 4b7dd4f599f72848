/**
 * The dashboard's guards against reads that never answer and errors that would otherwise reach
 * Express's default HTML error page: a deadline for one promise, the sampler's tick timeout, and
 * the JSON body of an error answer (never a stack or a file path).
 */

/** Thrown by {@link withDeadline} when the deadline passes first. */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeadlineError";
  }
}

/**
 * `p`, or a rejection with `DeadlineError("<what>: no answer within <ms> ms")` once `ms` have
 * passed (the timer is cleared when `p` settles first; `p` itself is not cancelled).
 * @throws DeadlineError after `ms`; else whatever `p` rejects with
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms`)), ms))),
  ]);
}

/** The sampler's default bound on one tick, ms: max(5 s, 5 × `sampleMs`). Pure. */
export function defaultSampleTimeoutMs(sampleMs: number): number {
  return Math.max(5000, 5 * sampleMs);
}

/** `ms` as seconds for a message (`0.4`, `5`). Pure. */
export function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/**
 * The status and JSON body answering an error that reached an error handler: a request body that
 * is not JSON is 400 `request body: not valid JSON: …`, one over the limit 413; another 4xx error
 * (with `status`) keeps its status and message; anything else is 500 with a generic message (the
 * error itself is for the log). Never a stack. Pure.
 * @param limit the body size limit, for the 413 message (e.g. `64kb`)
 */
export function errorAnswer(err: unknown, limit: string): { status: number; body: { error: string }; internal: boolean } {
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
  const message = typeof e.message === "string" ? e.message : String(err);
  if (e.type === "entity.parse.failed") return { status: 400, body: { error: `request body: not valid JSON: ${message}` }, internal: false };
  if (e.type === "entity.too.large") return { status: 413, body: { error: `request body: larger than ${limit}` }, internal: false };
  const st = typeof e.status === "number" ? e.status : typeof e.statusCode === "number" ? e.statusCode : 500;
  if (st >= 400 && st < 500) return { status: st, body: { error: e.type === "encoding.unsupported" || e.type === "charset.unsupported" ? `request body: ${message}` : message }, internal: false };
  return { status: 500, body: { error: "internal error (the dashboard's log has the details)" }, internal: true };
}
