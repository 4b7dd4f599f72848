/**
 * Checks of `celeriac enqueue`'s task name and flags made before anything connects, so a mistake is
 * reported in the words of the command line (`--eta`, not the client's `eta` option) and never reaches
 * NATS: a task name the worker would refuse would otherwise be dead-lettered as InvalidMessage.
 * Pure: values in, an Error naming the flag and the fix out.
 */
import { TASK_ID_PATTERN } from "../api/naming.js";
import { TASK_NAME_PATTERN } from "../api/task.js";

/** The flags `checkEnqueueInput` looks at (raw strings, as commander gives them). */
export interface EnqueueInput {
  task: string;
  countdown?: string | undefined;
  eta?: string | undefined;
  expires?: string | undefined;
  taskId?: string | undefined;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function timeFlag(flag: string, v: string | undefined): void {
  if (v === undefined) return;
  if (!RFC3339.test(v.trim()) || Number.isNaN(Date.parse(v))) {
    throw new Error(`${flag}: ${shown(v)} is not a time: use RFC 3339 with a zone, e.g. ${flag} 2026-01-02T15:04:05Z`);
  }
}

/**
 * Checks the task name, `--eta`, `--expires`, `--task-id` and `--countdown` with `--eta`.
 * @throws Error naming the argument or flag, the value and the fix
 */
export function checkEnqueueInput(i: EnqueueInput): void {
  if (!new RegExp(TASK_NAME_PATTERN).test(i.task) || i.task.length > 200) {
    throw new Error(`task name ${shown(i.task)} is invalid: use letters, digits and _ . : - (starting with a letter or _, at most 200), e.g. reports.generate`);
  }
  if (i.countdown !== undefined && i.eta !== undefined) throw new Error("--countdown and --eta are exclusive: give one (a delay in seconds, or a time)");
  timeFlag("--eta", i.eta);
  timeFlag("--expires", i.expires);
  if (i.taskId !== undefined && !TASK_ID_PATTERN.test(i.taskId)) {
    throw new Error(`--task-id ${shown(i.taskId)} is invalid: use 1-256 of A-Z a-z 0-9 _ = - (no dots or spaces)`);
  }
}
