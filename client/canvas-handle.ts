/**
 * A handle on a launched canvas (`client.apply`): its result, its steps and their status, and
 * revoking it. Every task id of a canvas is derived from the canvas id (api/canvas.ts), so the
 * handle knows every step, and can watch or revoke it, before the step is even published.
 */
import type { FrozenNode, FrozenTask } from "../api/canvas.js";
import { isTerminalPhase } from "../api/constants.js";
import { eachLimited, mapLimited } from "../api/limited.js";
import type { TaskStatus } from "../api/task.js";
import { canvasTaskIds } from "../canvas/runtime.js";
import type { TaskHandle } from "./client.js";
import { ResultTimeoutError, TaskFailedError } from "./errors.js";

/** One step (task) of a canvas: a TaskHandle, with its task name and the status `children()` read. */
export interface CanvasChild<R = unknown> extends TaskHandle<R> {
  /** Task name of the step. */
  readonly task: string;
  /**
   * The step's status when `children()` read it; undefined while no record exists (not published
   * yet, or a callback that never runs). `status()` reads it again.
   */
  readonly state: TaskStatus | undefined;
}

/** A handle on one canvas, as returned by `client.apply`. */
export interface CanvasHandle<R = unknown> {
  /** The canvas id (the root node's; every step's id derives from it). */
  readonly id: string;
  /** The canvas's queue (steps without a `queue` option run there; its results bucket holds the joins). */
  readonly queue: string;
  readonly namespace: string;
  /** The frozen tree: every node with its id, map/starmap/chunks expanded (api/canvas.ts FrozenNode). */
  readonly tree: FrozenNode;
  /**
   * Waits (KV watches, no polling) until the canvas finished.
   * @param opts.timeoutMs give up after this many ms in all (default: wait forever)
   * @returns the canvas's result: a task's result; a chain's last step's; a group's (and
   *   map/starmap's) list of member results in order; chunks' list of lists; a chord's body's
   * @throws TaskFailedError of the step that failed (or was revoked or expired): when a step ended
   *   Cancelled because an earlier one failed (`status.canvas.failedStep`), the error is that
   *   earlier step's
   * @throws ResultTimeoutError after `timeoutMs`, naming the step still awaited
   */
  result(opts?: { timeoutMs?: number }): Promise<R>;
  /**
   * Every task of the canvas, in tree order (links and linkError callbacks included), with its
   * current status.
   */
  children(): Promise<CanvasChild[]>;
  /**
   * Revokes every step not finished: steps not started never run (they end Cancelled), running
   * ones get their signal aborted and end Cancelled; finished steps are unchanged. Resolves once
   * every revocation is written.
   */
  revoke(): Promise<void>;
}

/** What a CanvasHandle needs of the client. */
export interface CanvasHandleDeps {
  id: string;
  queue: string;
  namespace: string;
  tree: FrozenNode;
  /** A TaskHandle of task `id` in `queue` (the client's `get`). */
  get(id: string, queue: string, task?: string): TaskHandle;
}

/** Most record reads or revocations in flight at once (children, revoke). */
const PARALLEL = 256;

/**
 * Makes the handle of a launched (or already running) canvas.
 * @param d the canvas id, queue, namespace, frozen tree and the client's `get`
 */
export function canvasHandle<R = unknown>(d: CanvasHandleDeps): CanvasHandle<R> {
  const steps = canvasTaskIds(d.tree, d.queue);
  const queueOf = new Map(steps.map((s) => [s.id, s.queue]));
  const taskQueue = (t: FrozenTask) => queueOf.get(t.id) ?? t.options?.queue ?? d.queue;

  /** The error to reject with: the failing earlier step's when this one was cancelled because of it. */
  const failure = async (err: TaskFailedError): Promise<TaskFailedError> => {
    const fs = err.record.status.canvas?.failedStep;
    if (!fs || fs.id === err.record.id) return err;
    const rec = await d
      .get(fs.id, queueOf.get(fs.id) ?? d.queue)
      .record()
      .catch(() => undefined);
    return rec && isTerminalPhase(rec.status.phase) && rec.status.phase !== "Succeeded" ? new TaskFailedError(rec) : err;
  };

  const result = async (opts: { timeoutMs?: number } = {}): Promise<R> => {
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
    const waitTask = async (t: FrozenTask): Promise<unknown> => {
      const left = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      try {
        return await d.get(t.id, taskQueue(t)).result(left === undefined ? {} : { timeoutMs: left });
      } catch (err) {
        if (err instanceof TaskFailedError) throw await failure(err);
        if (err instanceof ResultTimeoutError) throw new ResultTimeoutError(`canvas ${d.id} did not finish within ${opts.timeoutMs} ms (waiting for step ${t.id}, ${t.task})`, { cause: err });
        throw err;
      }
    };
    const wait = async (n: FrozenNode): Promise<unknown> => {
      switch (n.kind) {
        case "task":
          return waitTask(n);
        case "chain": {
          // step by step: a failing step rejects at once, whatever became of the steps after it
          let r: unknown;
          for (const s of n.steps) r = await wait(s);
          return r;
        }
        case "group":
          return Promise.all(n.members.map(wait));
        case "chord":
          await Promise.all(n.header.map(wait));
          return wait(n.body);
      }
    };
    return (await wait(d.tree)) as R;
  };

  const children = (): Promise<CanvasChild[]> =>
    mapLimited(steps, PARALLEL, async (s) => {
      const h = d.get(s.id, s.queue, s.task);
      return { ...h, task: s.task, state: await h.status() };
    });

  const revoke = async (): Promise<void> => {
    await eachLimited(steps, PARALLEL, async (s) => {
      const h = d.get(s.id, s.queue, s.task);
      const st = await h.status();
      if (!isTerminalPhase(st?.phase)) await h.revoke();
    });
  };

  return { id: d.id, queue: d.queue, namespace: d.namespace, tree: d.tree, result, children, revoke };
}
