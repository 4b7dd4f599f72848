/**
 * `celeriac dashboard`'s web server (docs/dashboard.md): an express app serving the page
 * (dashboard/static/, uPlot from its package) and a JSON API under `/api` that reads NATS through
 * the same modules as the CLI — nats/queue-report.ts (queue figures), nats/inspect.ts (workers),
 * nats/task-records.ts via cli/commands/tasks.ts (task lookup and list), nats/dead-letters.ts
 * (dead letters, replay, purge) — and answers in the CLI's `-o json` shapes (api/cli-output.ts,
 * api/queue-ops.ts, api/control.ts).
 *
 * Live figures come from one sampler: every `sampleMs` it reads every queue once and keeps the
 * samples of the history window in memory, and one point per resolution slot in the namespace's
 * NATS KV history bucket (dashboard/history-store.ts), read back on start so the plots survive a
 * restart; the `/api/events` SSE stream sends each tick's aggregate to every page, never one event
 * per task.
 *
 * Security: read-only unless `allowActions`; then each action (POST) needs the action token
 * (`Authorization: Bearer …`) and the CSRF token (the `celeriac_csrf` cookie repeated in the
 * `X-CSRF-Token` header, double submit); an action on a read-only dashboard is 403 before anything else.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Server } from "node:http";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import type { Logger } from "pino";
import { TASK_ID_PATTERN, queueNames } from "../api/naming.js";
import { TASK_PHASES } from "../api/constants.js";
import { controlSubject } from "../api/control.js";
import type { QueueStatusOutput } from "../api/queue-ops.js";
import type { DlqPurgeOutput } from "../api/cli-output.js";
import type { OpsSession } from "../cli/session.js";
import type { KubeClient } from "../kube/k8s-client.js";
import { findTaskView, listTasks, taskListFilter } from "../cli/commands/tasks.js";
import { activeItems, pingItems, registeredItems, workerRows } from "../cli/commands/inspect.js";
import { shown } from "../cli/commands/dlq.js";
import { listQueues } from "../client/queue-lookup.js";
import { inspectQueue } from "../nats/inspect.js";
import { readQueueReports } from "../nats/queue-report.js";
import { isPermissionViolation } from "../nats/queue-resources.js";
import { openHistoryStore, ratesBetween, readCounters, type HistoryPoint, type HistoryStoreOptions, type QueueCounters } from "./history-store.js";
import { purgeDeadLetters, readDeadLetters, replayDeadLetters, type RawDeadLetter } from "../nats/dead-letters.js";
import { ACTION_PERMISSIONS, authorizeByKubernetes, type ActionPermission, type AuthMode } from "./authz.js";
import { actionRoutes, matchingDeadLetters } from "./routes-actions.js";
import { kubeRoutes } from "./routes-kube.js";
import { taskResourceInfo, viewOfTaskResource } from "./task-resource-view.js";
import { readTaskResource } from "../cli/task-resource.js";
import { cytoscapeStatic, workloadsRouter } from "./routes-workloads.js";
import { defaultSampleTimeoutMs, errorAnswer, seconds, withDeadline } from "./bounded.js";

/** Most in-memory samples kept per queue (besides the window: an hour at one a second). */
export const MAX_SAMPLES = 3600;
/** Most task records or dead letters one list request returns. */
export const MAX_LIST = 1000;
/** Largest JSON request body. */
const BODY_LIMIT = "64kb";
/** The CSRF cookie's name. */
export const CSRF_COOKIE = "celeriac_csrf";

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** An open session (cli/session.ts `openOps`); the dashboard does not close it. */
  session: OpsSession;
  /**
   * The Kubernetes API to read Queue, Task, Schedule, Workflow, Event and Pod resources of the
   * session's namespace from (cli/kube-target.ts finds it); absent: the pages that need it say so.
   */
  kube?: KubeClient;
  /** Port to listen on (0: any free port). */
  port: number;
  /** Address to bind (default 127.0.0.1). */
  address?: string;
  /** Allow the actions (default false: every action is 403). */
  allowActions?: boolean;
  /**
   * How actions are authorised (default `token`): `token`, the action token; `kubernetes`, each
   * user's own Kubernetes token, by TokenReview and SubjectAccessReview on `kube` (dashboard/authz.ts).
   */
  auth?: AuthMode;
  /** The action token (default: 32 random bytes, hex); only with `allowActions` and `auth: token`. */
  token?: string;
  /** How often the sampler reads the queues, ms (default 1000). */
  sampleMs?: number;
  /**
   * Longest one sample's reads may take, ms (default max(5000, 5 × `sampleMs`)): then the tick
   * records `error: "sample timed out after N s: …"` and no new read starts until that one settles.
   */
  sampleTimeoutMs?: number;
  /** How often Queues, worker pods and Events are read from `kube`, ms (default 5000; dashboard/kube-reader.ts). */
  kubeIntervalMs?: number;
  /** How long a worker inspection waits for replies, ms (default 1000). */
  inspectTimeoutMs?: number;
  /** The history store (window, resolution, on/off; dashboard/history-store.ts); default one hour at 10 s, in NATS KV. */
  history?: Pick<HistoryStoreOptions, "windowMs" | "resolutionMs" | "enabled">;
  logger?: Logger;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://<address>:<port>/`. */
  readonly url: string;
  /** The action token, when actions are allowed. */
  readonly token?: string;
  /** Stops the sampler, ends the SSE streams and closes the server (idempotent). */
  close(): Promise<void>;
}

/** One sample of a queue, for the page's plot (rates per second since the previous sample; `n` on stored slots). */
export type QueueSample = HistoryPoint;

/** A tick's item: `queue list -o json`'s, with `queue status`'s rate fields and the started/failed rates. */
export type QueueTickItem = QueueStatusOutput & {
  /** Deliveries to workers per second since the last tick. */
  startedPerSecond?: number;
  /** Dead letters added per second since the last tick (tasks failed for good). */
  failedPerSecond?: number;
};

/** What each tick sends: `queue list -o json`'s items with the settle rate since the last tick (`queue status`'s fields). */
export interface QueuesTick {
  at: string;
  namespace: string;
  items: QueueTickItem[];
  /** Set when this tick's read failed (the items are the last good ones). */
  error?: string;
}

/** The static folder (the sources', next to dist/). */
function staticDir(): string {
  // dist/dashboard/server.js → <package>/dashboard/static
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dashboard", "static");
}

/** The folder of the uPlot package's dist files. */
function uplotDir(): string {
  return dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"));
}

/** `a === b` in constant time (false for different lengths). */
function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The value of cookie `name` in a Cookie header. Pure. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

/**
 * Why an action request is refused, or undefined when it may proceed: 403 on a read-only
 * dashboard, 401 without the right action token, 403 without the CSRF header matching the CSRF
 * cookie, 403 from another origin. Pure.
 */
export function actionRefusal(
  allowActions: boolean,
  token: string | undefined,
  req: { authorization?: string; csrfHeader?: string; cookie?: string; origin?: string; host?: string },
  auth: AuthMode = "token",
): { status: number; error: string } | undefined {
  if (!allowActions || (auth === "token" && !token)) return { status: 403, error: "this dashboard is read-only: start it with --allow-actions to act" };
  const m = /^Bearer (.+)$/.exec(req.authorization ?? "");
  // with --auth kubernetes the token is checked by TokenReview afterwards (authz.ts)
  if (auth === "kubernetes" && !m) return { status: 401, error: "Kubernetes token missing: give a token of yours (e.g. kubectl create token <serviceaccount>)" };
  if (auth === "token" && (!m || !sameSecret(m[1]!, token!))) return { status: 401, error: "action token missing or wrong: give the token printed by celeriac dashboard (or its --token / CELERIAC_DASHBOARD_TOKEN)" };
  const cookie = cookieValue(req.cookie, CSRF_COOKIE);
  if (!cookie || !req.csrfHeader || !sameSecret(req.csrfHeader, cookie)) return { status: 403, error: "CSRF token missing or wrong: reload the page and try again" };
  if (req.origin !== undefined && req.host !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(req.origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.host) return { status: 403, error: "cross-origin action refused" };
  }
  return undefined;
}

/** A query parameter as one string (the first when repeated). */
function param(v: unknown): string | undefined {
  if (Array.isArray(v)) return param(v[0]);
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** An API error: a status and a message the page shows. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Parses `?limit=`: 1..MAX_LIST, default `dflt`. @throws HttpError 400 */
function limitOf(v: unknown, dflt: number): number {
  const s = param(v);
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > MAX_LIST) throw new HttpError(400, `limit: "${s}" is not a whole number from 1 to ${MAX_LIST}`);
  return n;
}

/** Starts the dashboard. @throws Error when the port cannot be bound */
export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const s = o.session;
  const allow = o.allowActions === true;
  const auth: AuthMode = o.auth ?? "token";
  if (auth !== "token" && auth !== "kubernetes") throw new Error(`auth: "${String(auth)}" is not token or kubernetes`);
  if (allow && auth === "kubernetes" && !o.kube) throw new Error("--auth kubernetes needs the Kubernetes API (--kubeconfig, KUBECONFIG, in-cluster or ~/.kube/config) to review tokens");
  const token = allow && auth === "token" ? (o.token ?? randomBytes(32).toString("hex")) : undefined;
  const sampleMs = o.sampleMs ?? 1000;
  const sampleTimeoutMs = o.sampleTimeoutMs ?? defaultSampleTimeoutMs(sampleMs);
  if (!Number.isFinite(sampleTimeoutMs) || sampleTimeoutMs <= 0) throw new Error(`sampleTimeoutMs: ${sampleTimeoutMs} is not a positive number of ms`);
  const inspectTimeoutMs = o.inspectTimeoutMs ?? 1000;
  const log = o.logger;

  // ---- the sampler ----
  let queues = [...s.queues];
  const store = await openHistoryStore(s.js, s.jsm, s.namespace, { ...o.history, ...(log ? { logger: log } : {}) });
  const windowMs = store.state().windowMs;
  const history = await store.load();
  const counters = new Map<string, QueueCounters>();
  let lastTick: QueuesTick = { at: new Date().toISOString(), namespace: s.namespace, items: [] };
  const streams = new Set<Response>();
  let ticks = 0;
  let cannotList = false;
  let closed = false;

  /** What the read in flight is waiting for, for the timeout's message. */
  let stage = "";
  /** Reads the queues once and records the tick; throws when a read fails. */
  const sample = async () => {
    // a minted credential may not list the account's streams: it keeps the queues it was given (and stops asking)
    if (ticks++ % 5 === 0 && !cannotList) {
      stage = "listing the namespace's queues";
      queues = await listQueues(s.jsm, s.namespace).catch((err: unknown) => {
        if (!isPermissionViolation(err) || queues.length === 0) throw err;
        cannotList = true;
        return queues;
      });
    }
    const names = queues.map((q) => queueNames(s.namespace, q));
    stage = `reading ${names.length} queue(s) (streams, consumers, results buckets)`;
    const [reports, readings] = await Promise.all([
      readQueueReports(s.jsm, (q) => s.kv(q), names),
      Promise.all(names.map((n) => readCounters(s.jsm, n))),
    ]);
    const items: QueueTickItem[] = reports;
    const now = Date.now();
    items.forEach((it, i) => {
      const cur = readings[i]!;
      const prev = counters.get(it.queue);
      counters.set(it.queue, cur);
      const r = prev ? ratesBetween(prev, cur) : undefined;
      if (prev && r) {
        it.ratePerSecond = r.settled;
        it.sampleSeconds = Math.round(cur.at - prev.at) / 1000;
        it.failedPerSecond = r.failed;
        if (r.started !== undefined) it.startedPerSecond = r.started;
      }
      let h = history.get(it.queue);
      if (!h) history.set(it.queue, (h = []));
      const point: QueueSample = { t: now, backlog: it.backlog, inFlight: it.inFlight, dead: it.dead, ...(r ? { rate: r.settled, failed: r.failed, ...(r.started !== undefined ? { started: r.started } : {}) } : {}) };
      h.push(point);
      store.add(it.queue, point);
      let old = 0;
      while (old < h.length && h[old]!.t < now - windowMs) old++;
      if (h.length - old > Math.max(MAX_SAMPLES, Math.ceil(windowMs / sampleMs))) old = h.length - Math.max(MAX_SAMPLES, Math.ceil(windowMs / sampleMs));
      if (old > 0) h.splice(0, old);
    });
    lastTick = { at: new Date(now).toISOString(), namespace: s.namespace, items };
  };
  /** The read in flight (never two): started by a tick, awaited by the next ones while it lasts. */
  let reading: { startedAt: number; done: Promise<unknown>; timedOut: boolean } | undefined;
  /**
   * One tick: starts a read (unless one is still in flight), waits for it until `sampleTimeoutMs`
   * after it started (at least one `sampleMs` when that has passed), records an error on failure or
   * timeout, and sends the tick to every page.
   */
  const tick = async () => {
    if (!reading) {
      const r = { startedAt: Date.now(), done: Promise.resolve() as Promise<unknown>, timedOut: false };
      r.done = sample().then(() => undefined, (err: unknown) => ({ err })).finally(() => {
        if (reading === r) reading = undefined;
        if (r.timedOut) log?.warn({ afterMs: Date.now() - r.startedAt }, "Dashboard sample answered after its timeout");
      });
      reading = r;
    }
    const r = reading;
    const wait = Math.max(r.startedAt + sampleTimeoutMs - Date.now(), r.timedOut ? sampleMs : 0);
    let timer: NodeJS.Timeout | undefined;
    const out = await Promise.race([r.done, new Promise((res) => (timer = setTimeout(() => res("timeout"), wait)))]);
    clearTimeout(timer);
    if (out === "timeout") {
      const msg = `sample timed out after ${seconds(sampleTimeoutMs)} s: no answer from NATS while ${stage}; the figures are those of ${lastTick.at}`;
      lastTick = { ...lastTick, error: msg };
      if (!r.timedOut) log?.warn({ timeoutMs: sampleTimeoutMs, stage }, "Dashboard sample timed out: no new read starts until this one answers");
      r.timedOut = true;
    } else if (out && typeof out === "object" && "err" in out) {
      const err = (out as { err: unknown }).err;
      lastTick = { ...lastTick, error: (err as Error).message };
      log?.warn({ err }, "Dashboard sample failed");
    }
    const data = `event: queues\ndata: ${JSON.stringify(lastTick)}\n\n`;
    for (const w of streams) w.write(data);
  };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const loop = async () => {
    running = tick();
    await running;
    if (!closed) timer = setTimeout(() => void loop(), sampleMs);
  };
  await tick();
  timer = setTimeout(() => void loop(), sampleMs);

  // ---- the app ----
  const app = express();
  app.disable("x-powered-by");
  app.use((_req, res, next) => {
    res.setHeader("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    next();
  });
  const page = (_req: Request, res: Response) => {
    // double-submit CSRF: a random value in a cookie the page repeats in a header on every action
    const csrf = randomBytes(24).toString("hex");
    res.cookie(CSRF_COOKIE, csrf, { sameSite: "strict", httpOnly: false, path: "/" });
    res.setHeader("Cache-Control", "no-store");
    res.sendFile(join(staticDir(), "index.html"));
  };
  app.get("/", page);
  app.use("/static", express.static(staticDir(), { index: false }));
  app.use("/vendor/uplot", express.static(uplotDir(), { index: false }));
  app.use("/vendor/cytoscape", cytoscapeStatic());
  // a read-only dashboard refuses every POST under /api before reading its body
  app.post(/^\/api\//, (req, res, next) => {
    if (allow) return next();
    log?.warn({ path: req.path, status: 403 }, "Dashboard action refused");
    res.status(403).json({ error: "this dashboard is read-only: start it with --allow-actions to act" });
  });
  app.use(express.json({ limit: BODY_LIMIT }));

  const api = express.Router();
  const wrap = (f: (req: Request, res: Response) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) => {
    f(req, res).then((body) => res.json(body), next);
  };

  api.get("/session", (_req, res) => {
    res.json({ namespace: s.namespace, allowActions: allow, auth, sampleMs, phases: TASK_PHASES });
  });
  api.get("/queues", (_req, res) => {
    res.json(lastTick);
  });
  api.get("/history", (_req, res) => {
    const st = store.state();
    const first = Math.min(...[...history.values()].map((h) => h[0]?.t ?? Number.POSITIVE_INFINITY));
    res.json({
      sampleMs,
      since: new Date(Number.isFinite(first) ? first : Date.now()).toISOString(),
      store: st.kind,
      ...(st.reason ? { reason: st.reason } : {}),
      bucket: st.bucket,
      windowMs: st.windowMs,
      resolutionMs: st.resolutionMs,
      queues: Object.fromEntries(history),
    });
  });
  api.get("/events", (req, res) => {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store", Connection: "keep-alive" });
    res.write(`retry: 2000\nevent: queues\ndata: ${JSON.stringify(lastTick)}\n\n`);
    streams.add(res);
    req.on("close", () => streams.delete(res));
  });

  const queueOf = (v: unknown): string => {
    const q = param(v);
    if (q === undefined) throw new HttpError(400, "queue: required");
    if (!queues.includes(q)) throw new HttpError(404, `queue "${q}" does not exist in namespace "${s.namespace}"; existing queues: ${queues.join(", ") || "none"}`);
    return q;
  };
  const withQueues = (qs: string[]): OpsSession => ({ ...s, queues: qs });

  // tasks: `?id=` finds one (tasks get's shape); else a list (tasks list's shape)
  api.get("/tasks", wrap(async (req) => {
    if ("id" in req.query && param(req.query.id) === undefined) throw new HttpError(400, "id: empty: give a task id or a Task resource's name");
    const id = param(req.query.id);
    if (id !== undefined) {
      if (!TASK_ID_PATTERN.test(id)) throw new HttpError(400, `task id ${JSON.stringify(id)} is invalid: task ids are 1-256 of A-Z a-z 0-9 _ = -`);
      const v = await findTaskView(withQueues(queues), id);
      if (v) return v;
      // a Task resource's name (as tasks get <name>): its uid is the task id (dashboard/task-resource-view.ts)
      let t;
      try {
        t = o.kube ? await readTaskResource(o.kube, s.namespace, id) : undefined;
      } catch (err) {
        throw new HttpError(502, `task "${id}" has no record; reading a Task resource of that name failed: ${(err as Error).message}${(err as Error).cause ? `: ${String(((err as Error).cause as Error).message ?? (err as Error).cause)}` : ""}`);
      }
      if (t?.metadata.uid) {
        const byUid = await findTaskView(withQueues(queues), t.metadata.uid);
        return byUid ? { ...byUid, taskResource: taskResourceInfo(t) } : viewOfTaskResource(t);
      }
      throw new HttpError(404, `task "${id}" not found in any queue of namespace "${s.namespace}" (${queues.join(", ") || "no queues"}), and no Task resource of that name${o.kube ? "" : " (no Kubernetes API to look for one)"}: records expire after the queue's results TTL; a Task resource's task id is its uid`);
    }
    const state = param(req.query.state);
    if (state !== undefined && !(TASK_PHASES as readonly string[]).includes(state)) throw new HttpError(400, `state: "${state}" is not a phase: use one of ${TASK_PHASES.join(", ")}`);
    const q = param(req.query.queue);
    const limit = limitOf(req.query.limit, 100);
    // since/until/concurrencyKey: the CLI's parser (tasks list --since/--until/--concurrency-key), errors 400
    const given = (k: "task" | "since" | "until" | "concurrencyKey") => { const v = param(req.query[k]); return v !== undefined ? { [k]: v } : {}; };
    let filter;
    try {
      filter = taskListFilter({ ...(state ? { state } : {}), ...given("task"), ...given("since"), ...given("until"), ...given("concurrencyKey"), limit }, (k) => k);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const r = await listTasks(s, q !== undefined ? [queueOf(q)] : queues, filter);
    return { items: r.items, truncated: r.truncated };
  }));

  // workers: inspect's ping, active and registered shapes, from one request per queue
  api.get("/workers", wrap(async () => {
    const per = await withDeadline(Promise.all(queues.map(async (q) => ({ q, i: await inspectQueue(s.nc, await s.kv(q), controlSubject(s.namespace, q), "ping", inspectTimeoutMs) }))), inspectTimeoutMs + 5000, "inspect the workers").catch((err: unknown) => {
      throw err instanceof Error && err.name === "DeadlineError" ? new HttpError(504, `${err.message} (NATS did not answer)`) : err;
    });
    const rows = per.flatMap(({ q, i }) => workerRows(q, i));
    return { ping: { items: pingItems(rows) }, active: { items: activeItems(rows) }, registered: { items: registeredItems(rows) }, stale: per.reduce((n, { i }) => n + i.stale, 0) };
  }));

  // dead letters: dlq list's shape; one by seq in dlq show's
  const listed = (d: RawDeadLetter) => {
    const { headers: _h, data: _d, ...rest } = d;
    void _h;
    void _d;
    return rest;
  };
  api.get("/dlq", wrap(async (req) => {
    const q = queueOf(req.query.queue);
    const names = queueNames(s.namespace, q);
    const dls = await readDeadLetters(s.jsm, names, {}, { results: await s.kv(q), limit: limitOf(req.query.limit, 200) });
    return { items: dls.map(listed) };
  }));
  api.get("/dlq/:queue/:seq", wrap(async (req) => {
    const q = queueOf(req.params.queue);
    const seq = Number(req.params.seq);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new HttpError(400, `"${String(req.params.seq)}" is not a dead-letter sequence`);
    const [d] = await readDeadLetters(s.jsm, queueNames(s.namespace, q), { seqs: [seq] }, { results: await s.kv(q) });
    if (!d) throw new HttpError(404, `dead letter ${seq} does not exist in queue ${s.namespace}/${q}`);
    return shown(d);
  }));

  // Schedules and Workflows, from the Kubernetes API (dashboard/routes-workloads.ts)
  api.use(workloadsRouter({ ...(o.kube ? { kube: o.kube } : {}), namespace: s.namespace, ...(log ? { logger: log } : {}) }));

  // ---- actions ----
  const guard = (req: Request, res: Response, next: NextFunction) => {
    const why = actionRefusal(allow, token, {
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(typeof req.headers["x-csrf-token"] === "string" ? { csrfHeader: req.headers["x-csrf-token"] } : {}),
      ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}),
      ...(req.headers.origin ? { origin: req.headers.origin } : {}),
      ...(req.headers.host ? { host: req.headers.host } : {}),
    }, auth);
    if (why) {
      log?.warn({ path: req.path, status: why.status }, "Dashboard action refused");
      res.status(why.status).json({ error: why.error });
      return;
    }
    next();
  };
  /**
   * Authorises an action on `queue` after the guard: with `auth: kubernetes`, the caller's token by
   * TokenReview and SubjectAccessReview (401/403 errors); returns who acts, for logs and records.
   */
  const authorize = async (req: Request, p: ActionPermission, queue: string): Promise<string> => {
    if (auth !== "kubernetes") return "celeriac-dashboard";
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")![1]!;
    try {
      return (await authorizeByKubernetes(o.kube!, bearer, p, queue, s.namespace)).username;
    } catch (err) {
      const st = (err as { status?: number }).status;
      if (st === 401 || st === 403) log?.warn({ path: req.path, status: st, queue, verb: p.verb }, "Dashboard action refused");
      throw err;
    }
  };
  const selection = async (req: Request, p: ActionPermission) => {
    const q = queueOf(req.params.queue);
    const body = (req.body ?? {}) as { seqs?: unknown; filter?: unknown };
    const actor = await authorize(req, p, q);
    if (body.filter !== undefined) {
      if (body.seqs !== undefined) throw new HttpError(400, "give either seqs or filter, not both");
      const names = queueNames(s.namespace, q);
      return { q, names, actor, dls: await matchingDeadLetters(s, q, body.filter) };
    }
    const seqs = body.seqs;
    if (!Array.isArray(seqs) || seqs.length === 0 || seqs.length > MAX_LIST || !seqs.every((x) => Number.isSafeInteger(x) && (x as number) > 0)) {
      throw new HttpError(400, `seqs: give the sequences of the selected dead letters (1 to ${MAX_LIST} positive integers)`);
    }
    const names = queueNames(s.namespace, q);
    const dls = await readDeadLetters(s.jsm, names, { seqs: seqs as number[] }, { results: await s.kv(q) });
    const missing = (seqs as number[]).filter((x) => !dls.some((d) => d.seq === x));
    if (missing.length) throw new HttpError(404, `dead letter ${missing.join(", ")} does not exist in queue ${s.namespace}/${q}: nothing done`);
    return { q, names, actor, dls };
  };
  api.post("/dlq/:queue/replay", guard, wrap(async (req) => {
    const { q, names, dls, actor } = await selection(req, ACTION_PERMISSIONS.replayDeadLetters);
    const out = await replayDeadLetters(s.js, s.jsm, names, dls, { targetResults: await s.kv(q) });
    log?.info({ actor, queue: q, seqs: dls.map((d) => d.seq), replayed: out.filter((x) => x.outcome === "Replayed").length }, "Dashboard replayed dead letters");
    return { items: out };
  }));
  api.post("/dlq/:queue/purge", guard, wrap(async (req) => {
    const { q, names, dls, actor } = await selection(req, ACTION_PERMISSIONS.purgeDeadLetters);
    const deleted = await purgeDeadLetters(s.jsm, names, dls, false);
    log?.info({ actor, queue: q, seqs: dls.map((d) => d.seq), deleted }, "Dashboard purged dead letters");
    const r: DlqPurgeOutput = { deleted, seqs: dls.map((d) => d.seq) };
    return r;
  }));
  // revoke, pause, resume, queue purge; the dead-letter filter count (dashboard/routes-actions.ts)
  api.use(actionRoutes({ session: s, queueOf, withQueues: () => withQueues(queues), guard, authorize, ...(log ? { log } : {}) }));
  // Queues, worker pods and Events from the Kubernetes API (dashboard/routes-kube.ts), read every 5 s
  const kube = kubeRoutes({ ...(o.kube ? { kube: o.kube } : {}), namespace: s.namespace, ...(o.kubeIntervalMs !== undefined ? { intervalMs: o.kubeIntervalMs } : {}), ...(log ? { logger: log } : {}) });
  api.use("/kube", kube.router);
  // any other action path is refused the same way (no action exists without the guard)
  api.post(/.*/, guard, (_req, res) => {
    res.status(404).json({ error: "no such action" });
  });
  api.use((_req, res) => {
    res.status(404).json({ error: "no such API path" });
  });
  api.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    void _next;
    const status = err instanceof HttpError ? err.status : (err as { status?: number }).status && (err as { status: number }).status < 500 ? (err as { status: number }).status : 500;
    if (status >= 500) log?.error({ err }, "Dashboard API request failed");
    res.status(status).json({ error: (err as Error).message });
  });
  app.use("/api", api);
  app.use((_req, res) => {
    res.status(404).type("text/plain").send("not found");
  });
  // anything else (a body that is not JSON, …): JSON, never Express's HTML page with a stack
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    void _next;
    const a = errorAnswer(err, BODY_LIMIT);
    if (a.internal) log?.error({ err, path: req.path }, "Dashboard request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(a.status).json(a.body);
  });

  const address = o.address ?? "127.0.0.1";
  const server: Server = await new Promise((resolve, reject) => {
    const srv = app.listen(o.port, address, (err?: Error) => (err ? reject(err) : resolve(srv)));
    srv.once("error", reject);
  });
  const port = (server.address() as { port: number }).port;
  const host = address.includes(":") ? `[${address}]` : address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}/`,
    ...(token ? { token } : {}),
    close: () =>
      (closing ??= (async () => {
        closed = true;
        clearTimeout(timer);
        kube.close();
        await running;
        await withDeadline(store.flush(), 5000, "flush the history store").catch((err: unknown) => log?.warn({ err }, "Dashboard history not flushed on close"));
        for (const r of streams) r.end();
        streams.clear();
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
      })()),
  };
}
