/**
 * The worker's termination message: when startup fails (no tasks module, a module that throws on
 * import or cannot be found, NATS unreachable), the error is written where the kubelet reads it, so
 * `kubectl describe pod` and the operator's Queue `WorkersReady` condition show why the worker exits.
 *
 * Where: `CELERIAC_TERMINATION_MESSAGE_PATH` when set (the local process kubelet names a host file
 * there), else `/dev/termination-log` (the container's default `terminationMessagePath`, a file the
 * kubelet mounts). Errors writing it are ignored: the message also goes to stderr, and the worker Pod
 * uses `terminationMessagePolicy: FallbackToLogsOnError`.
 */
import { writeFileSync } from "node:fs";

/** Environment variable overriding the termination message path. */
export const TERMINATION_MESSAGE_PATH_ENV = "CELERIAC_TERMINATION_MESSAGE_PATH";
/** Kubernetes' default `terminationMessagePath`. */
export const DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log";
/** The kubelet keeps at most this many bytes of a termination message. */
export const MAX_TERMINATION_MESSAGE_BYTES = 4096;

/**
 * The message for `err`: its message, then each cause's on its own line (`caused by: …`), cut to
 * {@link MAX_TERMINATION_MESSAGE_BYTES}. Pure.
 */
export function terminationMessageOf(err: unknown): string {
  const lines: string[] = [];
  let e: unknown = err;
  for (let i = 0; e !== undefined && e !== null && i < 5; i++) {
    const m = e instanceof Error ? e.message : String(e);
    if (!lines.some((l) => l.includes(m))) lines.push(i === 0 ? m : `caused by: ${m}`);
    e = e instanceof Error ? e.cause : undefined;
  }
  const text = lines.join("\n");
  const b = Buffer.from(text);
  return b.length <= MAX_TERMINATION_MESSAGE_BYTES ? text : b.subarray(0, MAX_TERMINATION_MESSAGE_BYTES).toString("utf8");
}

/**
 * Writes the termination message of a startup failure. Never throws.
 * @param err the startup error
 * @param env the environment (default `process.env`)
 * @returns the path written, or undefined when it could not be written
 */
export function writeTerminationMessage(err: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = env[TERMINATION_MESSAGE_PATH_ENV] || DEFAULT_TERMINATION_MESSAGE_PATH;
  try {
    writeFileSync(path, terminationMessageOf(err));
    return path;
  } catch {
    return undefined;
  }
}
