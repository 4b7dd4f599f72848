/**
 * `celeriac tasks get|list|result|revoke|retry`: find any task in a queue's results bucket, show
 * it, wait for its result, revoke it or re-run it (Celery's `AsyncResult`, `celery result`,
 * `celery control revoke`). The NATS side is nats/task-records.ts; output goes through cli/output.ts.
 *
 * Without `--queue` (or `CELERIAC_QUEUE`), `get`, `result`, `revoke` and `retry` look for the id in
 * every queue of the namespace, and `list` lists them all.
 */
import type { Command } from "commander";
import type { KV } from "@nats-io/kv";
import { TASK_PHASES, isTerminalPhase } from "../../api/constants.js";
import type { TaskRetryOutput, TaskView } from "../../api/cli-output.js";
import type { TaskMessage, TaskRecord } from "../../api/message.js";
import { TASK_ID_PATTERN, queueNames, type QueueNames } from "../../api/naming.js";
import { FLOW_KEY_PATTERN } from "../../api/flow.js";
import { intInRange } from "./int-option.js";
import { opsFlags, outputFormat, renderList, renderOne, type Column } from "../output.js";
import { listed, openOps, type OpsFlags, type OpsSession as Session } from "../session.js";
import type { ArgsSource, RecordFilter, RetryLink, RevokeOutcome } from "../../nats/task-records.js";

/** Flags every `tasks` subcommand takes. */
type CommonFlags = OpsFlags;

/** What `tasks get -o json|yaml` prints: api/cli-output.ts `TaskViewSchema` (docs/schemas/cli/tasks-get.schema.json). */
export type { TaskView } from "../../api/cli-output.js";

/** The queue holding task `id`'s record (the first found of `s.queues`), or undefined. @throws the NATS errors of the reads */
export async function locateTask(s: Session, id: string): Promise<{ queue: string; kv: KV; record: TaskRecord | undefined } | undefined> {
  const { getTaskRecord } = await import("../../nats/task-records.js");
  for (const q of s.queues) {
    const kv = await s.kv(q);
    const record = await getTaskRecord(kv, id);
    if (record) return { queue: q, kv, record };
  }
  return undefined;
}

/**
 * The task id `arg` names: itself when a queue has a record of it, else — when `arg` is the name of
 * a Task resource of the namespace (read through the kubeconfig) — that Task's uid, its task id.
 */
async function taskIdOf(s: Session, arg: string): Promise<string> {
  if (await locateTask(s, arg)) return arg;
  const { taskResourceUid } = await import("../task-resource.js");
  return (await taskResourceUid(s.namespace, arg)) ?? arg;
}

/** The message for an id that has no record: where it is, and how to list what exists. */
function notFound(s: Session, id: string): Error {
  const where = s.queue ? `queue "${s.queue}" (namespace "${s.namespace}")` : `any queue of namespace "${s.namespace}" (${listed(s.queues)})`;
  const list = s.queue ? `celeriac tasks list --queue ${s.queue} --namespace ${s.namespace}` : `celeriac tasks list --namespace ${s.namespace}`;
  return new Error(`task "${id}" not found in ${where}, nor a Task resource of that name: list tasks with \`${list}\` (records expire after the queue's results TTL; a Task resource's task id is its uid)`);
}

function checkId(id: string): void {
  if (!TASK_ID_PATTERN.test(id)) throw new Error(`task id ${JSON.stringify(id)} is invalid: task ids are 1-256 of A-Z a-z 0-9 _ = -`);
}

/** Builds the `get` view of a task. */
async function taskView(s: Session, queue: string, kv: KV, id: string, record: TaskRecord | undefined, queued?: TaskMessage): Promise<TaskView> {
  const r = await import("../../nats/task-records.js");
  const names = queueNames(s.namespace, queue);
  const [args, revokedAt, link, retries, canvasRec] = await Promise.all([
    queued ? { args: queued.args, kwargs: queued.kwargs as Record<string, unknown>, source: "queued-message" as const } : r.taskArguments(s.js, s.jsm, kv, names, record, id),
    r.revokedAt(kv, id),
    r.retryLinkOf(kv, id),
    r.retriesOf(kv, id),
    r.getCanvasRecord(kv, id),
  ]);
  const st = record?.status;
  const children = canvasRec?.tree ? r.canvasTaskIdsOf(canvasRec.tree) : undefined;
  const canvas = st?.canvas || children ? { ...(st?.canvas ?? {}), ...(children ? { children } : {}) } : undefined;
  const timeline = record
    ? r.taskTimeline(record, revokedAt ? { revokedAt } : {})
    : [{ time: queued?.createdAt ?? "", event: "Enqueued (no worker has recorded it yet)" }, ...(queued?.eta ? [{ time: queued.eta, event: "Due (delayed until its ETA)" }] : [])];
  const replayOf = link?.replayOf ?? (queued?.replayOf ? { stream: queued.replayOf.stream, seq: queued.replayOf.seq } : undefined);
  return {
    id,
    task: record?.task ?? queued?.task ?? "",
    queue,
    namespace: s.namespace,
    origin: record?.origin ?? queued?.origin ?? { kind: "Client" },
    ...(st?.phase ? { phase: st.phase } : queued ? { phase: "Queued" } : {}),
    ...(st?.attempts !== undefined ? { attempts: st.attempts } : {}),
    ...(st?.worker ? { worker: st.worker } : {}),
    ...(args ? { args: args.args, kwargs: args.kwargs, argsSource: args.source } : {}),
    ...(st && "result" in st ? { result: st.result } : {}),
    ...(st?.resultRef ? { resultRef: st.resultRef } : {}),
    ...(st?.error ? { error: st.error } : {}),
    ...(st?.deadLettered ? { deadLettered: true } : {}),
    timeline,
    ...(canvas ? { canvas } : {}),
    ...(revokedAt ? { revokedAt } : {}),
    ...(link ? { retryOf: link.retryOf } : queued?.retryOf ? { retryOf: queued.retryOf } : queued?.replayOf?.id ? { retryOf: queued.replayOf.id } : {}),
    ...(replayOf ? { replayOf } : {}),
    ...(!record && queued?.eta ? { eta: queued.eta } : {}),
    ...(st?.progress ? { progress: st.progress } : {}),
    ...(retries.length ? { retries } : {}),
    ...(record ? { updatedAt: record.updatedAt, record } : {}),
  };
}

const json = (v: unknown): string => JSON.stringify(v);

/** How `get` names where the args were found. */
const ARGS_SOURCE_TEXT: Record<ArgsSource, string> = { "dead-letter": "dead-letter stream", canvas: "canvas record", "queued-message": "queued message" };

/** A view with no shared sub-objects (YAML would print them as anchors and aliases). */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Where the args of a task are when the results bucket no longer has them. Pure. */
function notKept(v: TaskView): string {
  if (v.origin.kind === "Task" && v.origin.name) {
    return `<in the Task's spec: kubectl get task ${v.origin.name} -n ${v.origin.namespace ?? v.namespace} -o jsonpath='{.spec.args}'>`;
  }
  return "<not kept: the results bucket keeps status only, and the message is gone>";
}

/** The `get` table layout: kubectl-describe style fields, the error's stack, the timeline. Pure. */
export function describeTask(v: TaskView): string {
  const rows: [string, string][] = [
    ["ID", v.id],
    ["Task", v.task],
    ["Queue", `${v.namespace}/${v.queue}`],
    ["Origin", v.origin.kind + (v.origin.name ? ` ${v.origin.namespace ?? ""}/${v.origin.name}` : "")],
    ["Phase", v.phase ?? "<none>"],
    ["Attempts", v.attempts === undefined ? "<none>" : String(v.attempts)],
    ["Worker", v.worker ?? "<none>"],
    ["Args", v.args ? `${json(v.args)}  (from the ${ARGS_SOURCE_TEXT[v.argsSource!]})` : notKept(v)],
    ["Kwargs", v.kwargs ? json(v.kwargs) : v.origin.kind === "Task" && v.origin.name ? "<in the Task's spec>" : "<not kept>"],
  ];
  if (v.record && "result" in v.record.status) rows.push(["Result", json(v.result)]);
  if (v.resultRef) rows.push(["Result ref", `${v.resultRef.bucket} ${v.resultRef.key} (${v.resultRef.sizeBytes} bytes)`]);
  if (v.error) rows.push(["Error", `${v.error.type}: ${v.error.message}`]);
  if (v.deadLettered) rows.push(["Dead-lettered", "yes (the message is in the queue's dead-letter stream)"]);
  if (v.canvas) {
    const c = v.canvas;
    if (c.root) rows.push(["Canvas", `root ${c.root}${c.parent ? `, parent ${c.parent}` : ""}, step ${c.step ?? "?"}${c.failedStep ? `, failed step ${c.failedStep.id}` : ""}`]);
    if (c.children) rows.push(["Canvas steps", listed(c.children)]);
  }
  if (v.eta) rows.push(["ETA", `${v.eta} (delayed: waits in the delayed stream until then)`]);
  if (v.progress) rows.push(["Progress", `${v.progress.display}${v.progress.meta ? `  ${json(v.progress.meta)}` : ""}  (at ${v.progress.updatedAt})`]);
  if (v.revokedAt) rows.push(["Revoked", v.revokedAt]);
  if (v.retryOf) rows.push([v.replayOf ? "Replay of" : "Retry of", v.replayOf ? `${v.retryOf} (dead letter ${v.replayOf.seq} of ${v.replayOf.stream})` : v.retryOf]);
  if (v.retries) rows.push(["Retried as", v.retries.join(", ")]);
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = rows.map(([k, val]) => `${`${k}:`.padEnd(w)}${val}`);
  if (v.error?.stack) lines.push("Stack:", ...v.error.stack.split("\n").map((l) => `  ${l.trim()}`));
  lines.push("Timeline:");
  const tw = Math.max(...v.timeline.map((e) => e.time.length));
  for (const e of v.timeline) lines.push(`  ${e.time.padEnd(tw + 3)}${e.event}`);
  return lines.join("\n");
}

/** Age of an RFC 3339 time as kubectl prints it (`5s`, `3m`, `2h`, `4d`). Pure. */
export function age(time: string | undefined, now = Date.now()): string | undefined {
  if (!time) return undefined;
  const s = Math.max(0, Math.floor((now - Date.parse(time)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Columns of `tasks list`. */
export function listColumns(withQueue: boolean): Array<Column<TaskRecord>> {
  return [
    { header: "ID", cell: (r) => r.id },
    ...(withQueue ? [{ header: "QUEUE", cell: (r: TaskRecord) => r.queue }] : []),
    { header: "TASK", cell: (r) => r.task },
    { header: "PHASE", cell: (r) => r.status.phase },
    { header: "ATTEMPTS", cell: (r) => r.status.attempts },
    { header: "WORKER", cell: (r) => r.status.worker },
    { header: "UPDATED", cell: (r) => age(r.updatedAt) },
    { header: "ERROR", cell: (r) => r.status.error?.message.split("\n")[0]?.slice(0, 80) },
  ];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * Parses a time bound (`--since`/`--until`, the dashboard's `since`/`until`), strictly: a duration
 * before now — one or more `<number><unit>` with unit ms, s, m, h or d (`90s`, `15m`, `1h30m`,
 * `2d`) — or an ISO 8601 / RFC 3339 time with a zone (`2026-12-03T10:00:00Z`,
 * `2026-12-03T11:00+01:00`), or a date alone (`2026-12-03`: its midnight UTC). Pure.
 * @param field the name errors give, e.g. `--since` or `since`
 * @param now the current time, ms
 * @throws Error naming the field, the value and the forms accepted: for anything else, a time
 *   without a zone, or a date or time that does not exist (`2026-02-30`, `25:00`)
 */
export function parseTimeBound(v: string, field: string, now = Date.now()): Date {
  const forms = "use a duration before now (90s, 15m, 1h30m, 2d) or an ISO 8601 time with a zone (2026-12-03T10:00:00Z, 2026-12-03T11:00+01:00) or a date (2026-12-03, midnight UTC)";
  const dur = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(v) ? v.match(/\d+(?:\.\d+)?(?:ms|s|m|h|d)/g) : null;
  if (dur) return new Date(now - dur.reduce((ms, part) => ms + Number(/^[\d.]+/.exec(part)![0]) * UNIT_MS[part.replace(/^[\d.]+/, "")]!, 0));
  const m = ISO_TIME.exec(v);
  if (!m) throw new Error(`${field} ${JSON.stringify(v)}: ${forms}`);
  if (m[4] !== undefined && m[8] === undefined) throw new Error(`${field} ${JSON.stringify(v)}: the time has no zone: add Z (UTC) or an offset such as +01:00`);
  const [y, mo, d, h = 0, mi = 0, sec = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const probe = new Date(Date.UTC(y!, mo! - 1, d!, h, mi, sec));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo! - 1 || probe.getUTCDate() !== d || probe.getUTCHours() !== h || probe.getUTCMinutes() !== mi || probe.getUTCSeconds() !== sec) {
    throw new Error(`${field} ${JSON.stringify(v)}: no such date or time`);
  }
  if (m[8] !== undefined && m[8] !== "Z" && (Number(m[8].slice(1, 3)) > 23 || Number(m[8].slice(4)) > 59)) throw new Error(`${field} ${JSON.stringify(v)}: no such zone offset`);
  const t = Date.parse(m[4] === undefined ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(t)) throw new Error(`${field} ${JSON.stringify(v)}: ${forms}`);
  return new Date(t);
}

/**
 * Parses `--since`: see {@link parseTimeBound}.
 * @throws Error naming the value and the forms accepted
 */
export function parseSince(v: string, now = Date.now()): Date {
  return parseTimeBound(v, "--since", now);
}

/** The filters of `tasks list` and the dashboard's task list, as given (strings), before parsing. */
export interface TaskListInput {
  /** Comma-separated phases (case-insensitive). */
  state?: string;
  /** A task name. */
  task?: string;
  /** A time bound (see {@link parseTimeBound}): records last written at or after it. */
  since?: string;
  /** A time bound: records last written at or before it. */
  until?: string;
  /** A concurrency key (the record's `concurrencyKey`). */
  concurrencyKey?: string;
  /** Most records. */
  limit?: number;
}

/**
 * Parses the list filters into a RecordFilter (nats/task-records.ts), shared by `celeriac tasks
 * list` and the dashboard's `/api/tasks`. Pure (but for the clock).
 * @param name how errors name a field: the CLI's `--since`, the API's `since`
 * @throws Error naming the field and the fix: an unknown phase, a bad time bound, `since` after
 *   `until`, an empty or over-long concurrency key (1–128 characters, no control characters)
 */
export function taskListFilter(f: TaskListInput, name: (field: keyof TaskListInput) => string, now = Date.now()): RecordFilter {
  let phases: string[] | undefined;
  try {
    phases = parseStates(f.state);
  } catch (err) {
    throw new Error((err as Error).message.replace(/^--state/, name("state")), { cause: err });
  }
  const since = f.since !== undefined ? parseTimeBound(f.since, name("since"), now) : undefined;
  const until = f.until !== undefined ? parseTimeBound(f.until, name("until"), now) : undefined;
  if (since && until && since > until) throw new Error(`${name("since")} ${f.since} (${since.toISOString()}) is after ${name("until")} ${f.until} (${until.toISOString()}): give since before until`);
  if (f.concurrencyKey !== undefined && !new RegExp(FLOW_KEY_PATTERN).test(f.concurrencyKey)) {
    throw new Error(`${name("concurrencyKey")} ${JSON.stringify(f.concurrencyKey)}: a concurrency key is 1-128 characters without control characters or surrounding spaces`);
  }
  return {
    ...(phases ? { phases } : {}),
    ...(f.task !== undefined ? { task: f.task } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    ...(f.concurrencyKey !== undefined ? { concurrencyKey: f.concurrencyKey } : {}),
    ...(f.limit !== undefined ? { limit: f.limit } : {}),
  };
}

/** Parses `--state` (comma-separated, case-insensitive phases). @throws Error naming the phases that exist */
export function parseStates(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v.split(",").map((x) => x.trim()).filter(Boolean).map((x) => {
    const p = TASK_PHASES.find((ph) => ph.toLowerCase() === x.toLowerCase());
    if (!p) throw new Error(`--state ${JSON.stringify(x)}: unknown phase: use one of ${TASK_PHASES.join(", ")} (comma-separated for several)`);
    return p;
  });
}

const common = (c: Command): Command => opsFlags(c, "queue [CELERIAC_QUEUE] (default: every queue of the namespace)");

async function withSession<T>(f: CommonFlags, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = await openOps(f, { name: "celeriac-cli" });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** `tasks get <id>`. */
async function get(arg: string, f: CommonFlags): Promise<void> {
  const format = outputFormat(f.output);
  checkId(arg);
  await withSession(f, async (s) => {
    const id = await taskIdOf(s, arg);
    const v = await findTaskView(s, id);
    if (!v) throw notFound(s, id);
    process.stdout.write(renderOne(plain(v), format, describeTask));
  });
}

/**
 * The `get` view of task `id` in the session's queues (`tasks get`, the dashboard's task page): from
 * its record, else — a client task no worker has taken yet has no record — from its message in a
 * queue's streams.
 * @returns undefined when no queue has a record or a message of it
 */
export async function findTaskView(s: Session, id: string): Promise<TaskView | undefined> {
  const found = await locateTask(s, id);
  if (found) return taskView(s, found.queue, found.kv, id, found.record);
  const r = await import("../../nats/task-records.js");
  for (const q of s.queues) {
    const kv = await s.kv(q);
    const a = await r.taskArguments(s.js, s.jsm, kv, queueNames(s.namespace, q), undefined, id);
    if (a?.message) return taskView(s, q, kv, id, undefined, a.message);
  }
  return undefined;
}

/** The CLI flag of a list filter: `--since`, `--concurrency-key`, … */
const flagOf = (field: keyof TaskListInput) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** `tasks list`. */
async function list(f: CommonFlags & TaskListInput): Promise<void> {
  const format = outputFormat(f.output);
  const filter = taskListFilter(f, flagOf);
  await withSession(f, async (s) => {
    const { items, truncated } = await listTasks(s, s.queues, filter);
    if (items.length === 0) {
      const given = (["state", "task", "since", "until", "concurrencyKey"] as const).filter((k) => f[k] !== undefined);
      const sel = given.map((k) => `${flagOf(k)} ${k === "state" ? filter.phases!.join(",") : f[k]!}`).join(" ");
      const where = s.queue ? `queue "${s.queue}"` : `the queues of namespace "${s.namespace}" (${listed(s.queues)})`;
      if (format === "table") console.error(`No tasks${sel ? ` match ${sel}` : ""} in ${where}`);
      else process.stdout.write(renderList([], [], format));
      return;
    }
    process.stdout.write(renderList(format === "table" ? items : plain(items), listColumns(!s.queue), format));
    if (truncated) console.error(`(stopped at --limit ${f.limit}: these are the newest ${f.limit}; older tasks match too)`);
  });
}

/**
 * The task records of `queues` matching `f` (`tasks list`, the dashboard's task list): the newest
 * `f.limit` across them all, newest first (each queue's newest `f.limit`, merged by `updatedAt`).
 * @returns the records and whether older matches were left out
 */
export async function listTasks(s: Session, queues: readonly string[], f: RecordFilter): Promise<{ items: TaskRecord[]; truncated: boolean }> {
  const { listTaskRecords } = await import("../../nats/task-records.js");
  let items: TaskRecord[] = [];
  let truncated = false;
  for (const q of queues) {
    const res = await listTaskRecords(s.js, s.jsm, queueNames(s.namespace, q).resultsBucket, f);
    items.push(...res.records);
    truncated ||= res.truncated;
  }
  if (queues.length > 1) {
    const t = (r: TaskRecord) => { const v = Date.parse(r.updatedAt); return Number.isFinite(v) ? v : 0; };
    items = items.map((r, i) => ({ r, i })).sort((a, b) => t(b.r) - t(a.r) || a.i - b.i).map((x) => x.r);
  }
  if (f.limit !== undefined && items.length > f.limit) {
    items = items.slice(0, f.limit);
    truncated = true;
  }
  return { items, truncated };
}

/** `tasks result <id>`: the result as JSON (yaml with -o yaml); exit 1 when the task did not succeed. */
async function result(arg: string, f: CommonFlags & { wait?: boolean; timeout?: string }): Promise<void> {
  const format = outputFormat(f.output);
  checkId(arg);
  const timeoutS = f.timeout === undefined ? undefined : Number(f.timeout);
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new Error(`--timeout ${JSON.stringify(f.timeout)}: give a number of seconds > 0`);
  await withSession(f, async (s) => {
    const id = await taskIdOf(s, arg);
    const found = await locateTask(s, id);
    let rec = found?.record;
    if (!rec || !isTerminalPhase(rec.status.phase)) {
      if (!f.wait) {
        if (!found && !s.queue) throw notFound(s, id);
        console.error(`task "${id}" is ${rec?.status.phase ?? "not recorded yet (queued, or unknown)"}: no result yet; pass --wait to wait for it`);
        process.exitCode = 1;
        return;
      }
      if (!found && !s.queue) throw new Error(`task "${id}" has no record in any queue of namespace "${s.namespace}" yet: pass --queue to wait for it there`);
      const queue = found?.queue ?? (s.queue as string);
      const kv = found?.kv ?? (await s.kv(queue));
      rec = await waitTerminal(kv, id, timeoutS);
    }
    const st = rec.status;
    if (st.phase === "Succeeded") {
      const value = st.result;
      if (st.resultRef && !("result" in st)) console.error(`task "${id}"'s result is stored apart: ${st.resultRef.bucket} ${st.resultRef.key} (${st.resultRef.sizeBytes} bytes)`);
      process.stdout.write(format === "yaml" ? renderOne(value ?? null, "yaml", () => "") : `${JSON.stringify(value ?? null)}\n`);
      return;
    }
    console.error(`task "${id}" ended ${st.phase}: ${st.error ? `${st.error.type}: ${st.error.message}` : "no error recorded"}`);
    process.exitCode = 1;
  });
}

/** Waits (KV watch on the key: no polling) until task `id`'s record is terminal. @throws Error after `timeoutS` */
async function waitTerminal(kv: KV, id: string, timeoutS: number | undefined): Promise<TaskRecord> {
  const iter = await kv.watch({ key: id });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    if (timeoutS !== undefined) timer = setTimeout(() => reject(new Error(`task "${id}" did not finish within ${timeoutS} s (--timeout)`)), timeoutS * 1000);
  });
  const watched = (async () => {
    for await (const e of iter) {
      if (e.operation !== "PUT") continue;
      const rec = e.json<TaskRecord>();
      if (rec?.status && isTerminalPhase(rec.status.phase)) return rec;
    }
    throw new Error(`watch of task "${id}" ended`);
  })();
  try {
    return await Promise.race([watched, timedOut]);
  } finally {
    clearTimeout(timer);
    iter.stop();
  }
}

/** What `tasks revoke` says per outcome. */
function revokeLine(o: RevokeOutcome & { queue: string }): string {
  switch (o.action) {
    case "cancelled":
      return `task ${o.id} revoked: it had not started (${o.before}); it never runs (Cancelled)`;
    case "aborted":
      return `task ${o.id} revoked: it is running; its handler's signal is aborted and it ends Cancelled`;
    case "finished":
      return `task ${o.id} not revoked: it already ended ${o.before}`;
    case "marked":
      return `task ${o.id} revoked: no record of it in queue "${o.queue}" yet; if it is queued or scheduled there it never runs`;
  }
}

/**
 * Revokes task `id` (`tasks revoke`'s work for one id, shared with the dashboard): found in any of
 * the session's queues, else — with `s.queue` set — marked revoked in that queue ahead of its record.
 * @returns the outcome (`tasks revoke -o json`'s item) and a warning when the id was found neither
 *   recorded nor queued; undefined when no queue has it and `s.queue` is unset
 * @throws the NATS errors of the reads and writes
 */
export async function revokeTaskId(s: Session, id: string): Promise<{ outcome: RevokeOutcome & { queue: string }; warning?: string } | undefined> {
  const r = await import("../../nats/task-records.js");
  const found = await locateTask(s, id);
  if (!found && !s.queue) return undefined;
  const queue = found?.queue ?? (s.queue as string);
  const kv = found?.kv ?? (await s.kv(queue));
  // a task no worker recorded yet: its name from its queued message, for the Cancelled record
  const queuedTask = found?.record ? undefined : (await r.taskArguments(s.js, s.jsm, kv, queueNames(s.namespace, queue), undefined, id))?.message?.task;
  const outcome = { ...(await r.revokeOne(kv, { queue, namespace: s.namespace }, id, queuedTask)), queue };
  // revoking ahead of an enqueue is allowed (Celery's revoke of an id), but a mistyped id should not pass unseen
  const warning = !found?.record && queuedTask === undefined ? `task ${id} was not found queued in "${queue}" either (work, delayed and held streams): check the id; the marker cancels it if it is ever enqueued` : undefined;
  return { outcome, ...(warning ? { warning } : {}) };
}

/** `tasks revoke <id>...`. */
async function revoke(ids: string[], f: CommonFlags & { terminate?: boolean }): Promise<void> {
  const format = outputFormat(f.output);
  ids.forEach(checkId);
  await withSession(f, async (s) => {
    const out: Array<RevokeOutcome & { queue: string }> = [];
    const missing: string[] = [];
    for (const arg of ids) {
      const id = await taskIdOf(s, arg);
      const o = await revokeTaskId(s, id);
      if (!o) {
        missing.push(id);
        continue;
      }
      out.push(o.outcome);
      if (o.warning) console.error(`warning: ${o.warning}`);
    }
    if (format === "table") for (const o of out) console.log(revokeLine(o));
    else process.stdout.write(renderList(out, [], format));
    if (missing.length) {
      console.error(`${notFound(s, missing.join(", ")).message.replace(/^task "([^"]*)"/, (_, m: string) => `task${missing.length > 1 ? "s" : ""} ${m}`)}; to revoke a task before any worker recorded it, pass its --queue`);
      process.exitCode = 1;
    }
  });
}

/**
 * Why task `id` cannot be retried and what to do instead: its message is gone (the results bucket
 * keeps status, not args), with the args when they are known elsewhere (a canvas record), and the
 * way to run it again for its origin (a Task resource, a Workflow, `celeriac enqueue`). Pure.
 */
export function retryRefusal(rec: TaskRecord, queue: string, known: { args: unknown[]; kwargs: Record<string, unknown>; source: ArgsSource } | undefined): string {
  const phase = rec.status.phase ?? "not finished";
  const gone = phase === "Failed"
    ? "its message is no longer kept (a Failed task's message stays in the dead-letter stream until its max age, or until a dlq purge or replay --remove)"
    : `its message is gone (a worker acks ${phase === "Expired" ? "an" : "a"} ${phase} task's message when it records it) and the results bucket keeps the status, not the args`;
  const o = rec.origin;
  const enqueue = (args: string, kwargs: string) => `celeriac enqueue ${rec.task} --queue ${queue} --namespace ${rec.namespace} --args '${args}' --kwargs '${kwargs}'`;
  let todo: string;
  if (known) todo = `its args are known (from the ${ARGS_SOURCE_TEXT[known.source]}${known.source === "canvas" && rec.status.canvas?.parent ? "; a chain step also gets its parent's result, prepended" : ""}): enqueue it again with ${enqueue(JSON.stringify(known.args), JSON.stringify(known.kwargs))}`;
  else if (o.kind === "Task" && o.name) todo = `it came from Task ${o.namespace ?? rec.namespace}/${o.name}, whose spec has the args: create a new Task from it (kubectl get task ${o.name} -n ${o.namespace ?? rec.namespace} -o yaml)`;
  else if (o.kind === "Workflow" && o.name) todo = `it is a step of Workflow ${o.namespace ?? rec.namespace}/${o.name}: run its failed steps again with celeriac workflow retry ${o.name} -n ${o.namespace ?? rec.namespace}`;
  else todo = `enqueue it again with its args: ${enqueue("[…]", "{…}")}`;
  return `task "${rec.id}" (${phase}) cannot be retried: ${gone}; ${todo}`;
}

/** `tasks retry <id>`. */
async function retry(arg: string, f: CommonFlags): Promise<void> {
  const format = outputFormat(f.output);
  checkId(arg);
  await withSession(f, async (s) => {
    const r = await import("../../nats/task-records.js");
    const id = await taskIdOf(s, arg);
    const found = await locateTask(s, id);
    if (!found?.record) throw notFound(s, id);
    const phase = found.record.status.phase;
    if (!(r.RETRYABLE_PHASES as readonly string[]).includes(phase ?? "")) {
      throw new Error(`task "${id}" is ${phase ?? "not finished"}: only a task that ended ${r.RETRYABLE_PHASES.join(", ")} is retried`);
    }
    const names: QueueNames = queueNames(s.namespace, found.queue);
    let a = await r.taskArguments(s.js, s.jsm, found.kv, names, found.record, id);
    if (!a?.message && phase !== "Failed") {
      // a task revoked before a worker took it keeps its message queued (a delayed one until due)
      const m = await r.findQueuedMessage(s.jsm, names, id);
      if (m) a = { args: m.args, kwargs: m.kwargs as Record<string, unknown>, source: "queued-message", message: m };
    }
    if (!a?.message) throw new Error(retryRefusal(found.record, found.queue, a));
    const newId = await r.retryTask(s.js, found.kv, names, a.message);
    const link: RetryLink = { v: 1, id: newId, retryOf: id, createdAt: new Date().toISOString() };
    if (format === "table") console.log(`task ${id} retried as ${newId}`);
    else {
      const out: TaskRetryOutput = { id: newId, retryOf: id, queue: found.queue, namespace: s.namespace, task: a.message.task, createdAt: link.createdAt, argsSource: a.source };
      process.stdout.write(renderOne(out, format, () => ""));
    }
  });
}

/** Registers `celeriac tasks`. */
export function register(program: Command): void {
  const tasks = program.command("tasks").description("find, inspect, wait for, revoke and retry tasks (the queues' results buckets)");
  common(tasks.command("get <id>").description("show a task: status, args, result, error with stack, attempts, timeline, worker, canvas")).action((id: string, f: CommonFlags) => get(id, f));
  common(
    tasks
      .command("list")
      .description("list task records (one server-side scan per queue, filtered as it streams)")
      .option("--state <phases>", `only these phases, comma-separated (${TASK_PHASES.join(", ")})`)
      .option("--task <name>", "only tasks of this name")
      .option("--since <time>", "only records last written at or after: a duration before now (90s, 15m, 1h, 2d), an ISO 8601 time with a zone, or a date")
      .option("--until <time>", "only records last written at or before: the same forms as --since")
      .option("--concurrency-key <key>", "only tasks of this concurrency key (flow-controlled queues)")
      .option("--limit <n>", "stop after n tasks", intInRange(1, 1_000_000)),
  ).action((f: CommonFlags & TaskListInput) => list(f));
  common(
    tasks
      .command("result <id>")
      .description("print a task's result as JSON (exit 1 if it failed or has not finished)")
      .option("--wait", "wait until it finishes (KV watch)")
      .option("--timeout <s>", "with --wait: give up after this many seconds"),
  ).action((id: string, f: CommonFlags & { wait?: boolean; timeout?: string }) => result(id, f));
  common(
    tasks
      .command("revoke <ids...>")
      .description("revoke tasks: a queued one never runs, a running one has its signal aborted; both end Cancelled")
      .option("--terminate", "accepted for Celery compatibility: a running task's signal is always aborted (see docs/cli.md)"),
  ).action((ids: string[], f: CommonFlags & { terminate?: boolean }) => revoke(ids, f));
  common(tasks.command("retry <id>").description("re-enqueue a Failed, Cancelled or Expired task with the same task, args and kwargs under a new id linked to the old one (needs its message: dead-lettered, or still queued)")).action((id: string, f: CommonFlags) => retry(id, f));
}
