/**
 * The dashboard's task and queue actions (docs/dashboard.md "Actions"), each through the module the
 * CLI uses and answering in its `-o json` shape:
 *
 * | route | CLI | module |
 * | --- | --- | --- |
 * | POST `/api/tasks/:id/revoke` | `tasks revoke <id> -o json` (`{items: [outcome]}`) | cli/commands/tasks.ts `revokeTaskId` |
 * | POST `/api/queues/:queue/pause` `{reason?}` | `queue pause -o json` | nats/queue-pause.ts `pauseQueue`, cli/commands/queue.ts `pauseView` |
 * | POST `/api/queues/:queue/resume` | `queue resume -o json` | nats/queue-pause.ts `resumeQueue` |
 * | POST `/api/queues/:queue/purge` `{delayed?}` | `queue purge --yes -o json` | cli/commands/queue.ts `purgeQueueOutput` |
 * | GET `/api/dlq-matching?queue=&reason=&task=&error=` | — | how many dead letters a filter selects (at most {@link MAX_FILTERED}) |
 *
 * Every POST is behind the server's guard (read-only 403, token 401, CSRF 403) and then
 * `authorize` (with `--auth kubernetes`, a SubjectAccessReview of the action's verb on the queue).
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { TASK_ID_PATTERN, queueNames } from "../api/naming.js";
import type { OpsSession } from "../cli/session.js";
import { locateTask, revokeTaskId } from "../cli/commands/tasks.js";
import { pauseView, purgeQueueOutput } from "../cli/commands/queue.js";
import { readDeadLetters, type DeadLetterSelection, type RawDeadLetter } from "../nats/dead-letters.js";
import { pauseQueue, resumeQueue } from "../nats/queue-pause.js";
import { ACTION_PERMISSIONS, type ActionPermission } from "./authz.js";

/** Most dead letters one filter selects: a filter matching more is refused (narrow it, or act twice). */
export const MAX_FILTERED = 1000;

/** What the action routes need from the server. */
export interface ActionContext {
  session: OpsSession;
  /** The queue named by a parameter. @throws an error with status 400/404 */
  queueOf(v: unknown): string;
  /** The session over every queue of the namespace now. */
  withQueues(): OpsSession;
  /** The server's action guard (read-only, token, CSRF, origin). */
  guard(req: Request, res: Response, next: NextFunction): void;
  /** Authorises `p` on `queue` for the caller; returns who acts. @throws an error with status 401/403 */
  authorize(req: Request, p: ActionPermission, queue: string): Promise<string>;
  log?: Logger;
}

/** A 4xx answer. */
class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The dead-letter filter of a request body or query: reason, task (exact), error (substring, any case). */
export interface DeadLetterFilter {
  reason?: string;
  task?: string;
  error?: string;
}

/**
 * Parses a filter: an object of optional non-empty strings `reason`, `task`, `error`, at least one. Pure.
 * @throws an error with status 400 naming the field
 */
export function parseFilter(v: unknown): DeadLetterFilter {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new BadRequest(400, "filter: give an object {reason?, task?, error?} (at least one)");
  const out: DeadLetterFilter = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k !== "reason" && k !== "task" && k !== "error") throw new BadRequest(400, `filter.${k}: unknown field (use reason, task, error)`);
    if (x === undefined || x === null || x === "") continue;
    if (typeof x !== "string" || x.length > 1000) throw new BadRequest(400, `filter.${k}: give a string of at most 1000 characters`);
    out[k] = x;
  }
  if (Object.keys(out).length === 0) throw new BadRequest(400, "filter: give at least one of reason, task, error (an empty filter would select every dead letter)");
  return out;
}

/** A filter as a dead-letter selection (nats/dead-letters.ts `matches`). Pure. */
export function filterSelection(f: DeadLetterFilter): DeadLetterSelection {
  return { ...(f.reason ? { reasons: [f.reason] } : {}), ...(f.task ? { tasks: [f.task] } : {}), ...(f.error ? { errorText: f.error } : {}) };
}

/**
 * The dead letters of `queue` a filter selects, in stream order, read as `dlq list` reads them.
 * @throws an error with status 400 for a bad filter, 409 when more than {@link MAX_FILTERED} match
 */
export async function matchingDeadLetters(s: OpsSession, queue: string, filter: unknown): Promise<RawDeadLetter[]> {
  const f = parseFilter(filter);
  const dls = await readDeadLetters(s.jsm, queueNames(s.namespace, queue), filterSelection(f), { results: await s.kv(queue), limit: MAX_FILTERED + 1 });
  if (dls.length > MAX_FILTERED) throw new BadRequest(409, `more than ${MAX_FILTERED} dead letters of ${s.namespace}/${queue} match ${JSON.stringify(f)}: narrow the filter (or act on the first ${MAX_FILTERED} by their seqs); nothing done`);
  if (dls.length === 0) throw new BadRequest(404, `no dead letter of ${s.namespace}/${queue} matches ${JSON.stringify(f)}: nothing done`);
  return dls;
}

/** The router of the action routes (mount under `/api`, before any catch-all). */
export function actionRoutes(c: ActionContext): express.Router {
  const s = c.session;
  const r = express.Router();
  const wrap = (f: (req: Request) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) => {
    f(req).then((body) => res.json(body), next);
  };
  const bodyOf = (req: Request) => (req.body && typeof req.body === "object" ? (req.body as Record<string, unknown>) : {});

  r.get("/dlq-matching", wrap(async (req) => {
    const q = c.queueOf(req.query.queue);
    const one = (k: string) => (typeof req.query[k] === "string" ? (req.query[k] as string) : undefined);
    const f = parseFilter({ reason: one("reason"), task: one("task"), error: one("error") });
    const dls = await readDeadLetters(s.jsm, queueNames(s.namespace, q), filterSelection(f), { results: await s.kv(q), limit: MAX_FILTERED + 1 });
    return { queue: q, filter: f, matching: Math.min(dls.length, MAX_FILTERED), more: dls.length > MAX_FILTERED, limit: MAX_FILTERED, seqs: dls.slice(0, MAX_FILTERED).map((d) => d.seq) };
  }));

  r.post("/tasks/:id/revoke", c.guard, wrap(async (req) => {
    const id = String(req.params.id);
    if (!TASK_ID_PATTERN.test(id)) throw new BadRequest(400, `task id ${JSON.stringify(id)} is invalid: task ids are 1-256 of A-Z a-z 0-9 _ = -`);
    const body = bodyOf(req);
    // the queue is where the task is found; `queue` in the body revokes ahead of any record (tasks revoke --queue)
    const given = body.queue !== undefined ? c.queueOf(body.queue) : undefined;
    const all = c.withQueues();
    const queue = given ?? (await locateTask(all, id))?.queue;
    if (!queue) throw new BadRequest(404, `task "${id}" not found in any queue of namespace "${s.namespace}": give {"queue": "<queue>"} to revoke it before any worker records it`);
    const actor = await c.authorize(req, ACTION_PERMISSIONS.revoke, queue);
    const o = await revokeTaskId({ ...all, queue, queues: [queue] }, id);
    if (!o) throw new BadRequest(404, `task "${id}" not found in queue "${queue}"`);
    c.log?.info({ actor, queue, id, action: o.outcome.action }, "Dashboard revoked a task");
    // tasks revoke -o json (api/cli-output.ts TaskRevokeSchema), plus the CLI's stderr warning
    return { items: [o.outcome], ...(o.warning ? { warning: o.warning } : {}) };
  }));

  r.post("/queues/:queue/pause", c.guard, wrap(async (req) => {
    const q = c.queueOf(req.params.queue);
    const reason = bodyOf(req).reason;
    if (reason !== undefined && (typeof reason !== "string" || reason.length > 1000)) throw new BadRequest(400, "reason: give a string of at most 1000 characters");
    const actor = await c.authorize(req, ACTION_PERMISSIONS.pause, q);
    const p = await pauseQueue(await s.kv(q), { by: actor, ...(reason ? { reason } : {}) });
    c.log?.info({ actor, queue: q, changed: "paused" in p }, "Dashboard paused a queue");
    const where = { namespace: s.namespace, queue: q };
    return "already" in p ? pauseView(where, true, false, p.already) : pauseView(where, true, true, p.paused);
  }));

  r.post("/queues/:queue/resume", c.guard, wrap(async (req) => {
    const q = c.queueOf(req.params.queue);
    const actor = await c.authorize(req, ACTION_PERMISSIONS.resume, q);
    const lifted = await resumeQueue(await s.kv(q));
    c.log?.info({ actor, queue: q, changed: lifted !== undefined }, "Dashboard resumed a queue");
    return pauseView({ namespace: s.namespace, queue: q }, false, lifted !== undefined, lifted);
  }));

  r.post("/queues/:queue/purge", c.guard, wrap(async (req) => {
    const q = c.queueOf(req.params.queue);
    const delayed = bodyOf(req).delayed;
    if (delayed !== undefined && typeof delayed !== "boolean") throw new BadRequest(400, "delayed: give true or false");
    const actor = await c.authorize(req, ACTION_PERMISSIONS.purge, q);
    const out = await purgeQueueOutput(s, q, delayed === true);
    c.log?.info({ actor, queue: q, removed: out.removed, started: out.started }, "Dashboard purged a queue");
    return out;
  }));
  return r;
}
