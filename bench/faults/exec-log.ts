/**
 * The per-execution log of the fault suite: every handler execution appends one JSON line
 * `{id, pid, event, t, attempt?}` when it starts and one when it ends, to the file named by
 * `CELERIAC_FAULTS_LOG`. Each line is one `write(2)` on a descriptor opened with `O_APPEND`, well
 * under `PIPE_BUF`, so lines from concurrent worker processes never interleave; a line is on disk
 * (in the page cache) before the handler goes on, so a SIGKILL right after loses nothing logged.
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";

/** The environment variable naming the log file (set on every worker process of a scenario). */
export const EXEC_LOG_ENV = "CELERIAC_FAULTS_LOG";

/** One line of the log. */
export interface ExecEvent {
  /** Task id. */
  readonly id: string;
  /** Pid of the worker process that ran the handler. */
  readonly pid: number;
  /** `start` when the handler began, `end` when it returned (a handler that throws logs no `end`). */
  readonly event: "start" | "end";
  /** When, in ms since the epoch (the worker's clock: the same host as the scenario). */
  readonly t: number;
  /** `ctx.attempt` of the execution, when the handler gave it. */
  readonly attempt?: number;
}

let fd: number | undefined;
let fdFile: string | undefined;

/**
 * Appends one event for task `id` to the log named by `CELERIAC_FAULTS_LOG` (nothing when unset).
 * Synchronous: the line is written before it returns.
 * @param id the task id (`ctx.taskId`)
 * @param event `start` or `end`
 * @param attempt `ctx.attempt`, recorded as is
 * @throws the fs error when the file cannot be opened or written
 */
export function noteExecution(id: string, event: ExecEvent["event"], attempt?: number): void {
  const file = process.env[EXEC_LOG_ENV];
  if (!file) return;
  if (fd === undefined || fdFile !== file) {
    if (fd !== undefined) closeSync(fd);
    fd = openSync(file, "a"); // O_WRONLY | O_CREAT | O_APPEND
    fdFile = file;
  }
  const e: ExecEvent = { id, pid: process.pid, event, t: Date.now(), ...(attempt === undefined ? {} : { attempt }) };
  writeSync(fd, JSON.stringify(e) + "\n");
}

/**
 * Reads a log. A torn last line (a writer killed mid-write, which `O_APPEND` single writes make
 * very unlikely) is skipped.
 * @param file the log file; a missing file reads as no events
 * @returns the events in file order
 */
export function readExecLog(file: string): ExecEvent[] {
  if (!existsSync(file)) return [];
  const out: ExecEvent[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as ExecEvent);
    } catch {
      // torn line
    }
  }
  return out;
}
