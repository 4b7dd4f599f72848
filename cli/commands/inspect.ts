/**
 * `celeriac inspect ping|active|reserved|registered|stats|scheduled`: ask the live workers of the
 * queue(s) over their control subject (Celery's `celery inspect`), and list the delayed tasks.
 * The contract is api/control.ts; the NATS side nats/inspect.ts; output cli/output.ts.
 *
 * Without `--queue` (or `CELERIAC_QUEUE`) every queue of the namespace is asked, all at once. A
 * worker with a live registry entry that does not reply within `--timeout` is listed as not
 * answering; nothing waits beyond the deadline. `scheduled` reads the queues' delayed streams: in
 * Celeriac a countdown/eta task waits there, not in a worker.
 */
import { InvalidArgumentError, type Command } from "commander";
import { CONTROL_COMMANDS, controlSubject, type ActiveTask, type ControlCommand, type InspectActiveOutput, type InspectPingOutput, type InspectRegisteredOutput, type InspectReservedOutput, type InspectStatsOutput, type ReservedTask, type ScheduledTask, type WorkerRegistryEntry, type WorkerReport } from "../../api/control.js";
import { queueNames } from "../../api/naming.js";
import type { QueueInspection } from "../../nats/inspect.js";
import { intInRange } from "./int-option.js";
import { opsFlags, outputFormat, renderList, type Column, type OutputFormat } from "../output.js";
import type { OpsFlags } from "../session.js";

/** Flags of the worker commands. */
interface AskFlags extends OpsFlags {
  /** Seconds to wait for replies (parsed). */
  timeout: number;
}

/** One worker of one queue, as the commands list it: answered (with its report) or not answering (with its registry entry). */
export interface WorkerRow {
  queue: string;
  worker: string;
  answered: boolean;
  report?: WorkerReport;
  entry?: WorkerRegistryEntry;
  replyMs?: number;
}

/** The rows of one queue's inspection: each reply, then each live entry that did not reply; sorted by worker name. Pure. */
export function workerRows(queue: string, i: QueueInspection): WorkerRow[] {
  const rows: WorkerRow[] = [
    ...i.replies.map((r) => {
      const entry = i.registry.get(r.report.name);
      return { queue, worker: r.report.name, answered: true, report: r.report, replyMs: r.replyMs, ...(entry ? { entry } : {}) };
    }),
    ...i.notAnswering.map((e) => ({ queue, worker: e.name, answered: false, entry: e })),
  ];
  return rows.sort((a, b) => a.worker.localeCompare(b.worker));
}

const status = (r: WorkerRow) => (r.answered ? ("ok" as const) : ("not answering" as const));
const base = (r: WorkerRow) => ({ queue: r.queue, worker: r.worker, answered: r.answered, status: status(r) });

/** `inspect ping -o json` items. Pure. */
export function pingItems(rows: readonly WorkerRow[]): InspectPingOutput["items"] {
  return rows.map((r) => {
    const id = r.report ?? r.entry;
    return {
      ...base(r),
      ...(id?.pod ? { pod: id.pod } : {}),
      ...(id ? { host: id.host, pid: id.pid, version: id.version, startedAt: id.startedAt, concurrency: id.concurrency } : {}),
      ...(r.report ? { uptimeSeconds: r.report.uptimeSeconds, active: r.report.active.length, reserved: r.report.reserved.length } : {}),
      ...(r.entry ? { lastSeen: r.entry.lastSeen } : {}),
      ...(r.replyMs !== undefined ? { replyMs: r.replyMs } : {}),
    };
  });
}

/** `inspect active -o json` items. Pure. */
export function activeItems(rows: readonly WorkerRow[]): InspectActiveOutput["items"] {
  return rows.map((r) => ({ ...base(r), ...(r.report ? { active: r.report.active } : {}) }));
}

/** `inspect reserved -o json` items. Pure. */
export function reservedItems(rows: readonly WorkerRow[]): InspectReservedOutput["items"] {
  return rows.map((r) => ({ ...base(r), ...(r.report ? { reserved: r.report.reserved } : {}) }));
}

/** `inspect registered -o json` items. Pure. */
export function registeredItems(rows: readonly WorkerRow[]): InspectRegisteredOutput["items"] {
  return rows.map((r) => ({ ...base(r), ...(r.report ? { registered: r.report.registered } : {}) }));
}

/** `inspect stats -o json` items. Pure. */
export function statsItems(rows: readonly WorkerRow[]): InspectStatsOutput["items"] {
  return rows.map((r) => ({ ...base(r), ...(r.report ? { uptimeSeconds: r.report.uptimeSeconds, concurrency: r.report.concurrency, active: r.report.active.length, stats: r.report.stats } : {}) }));
}

/** Seconds as kubectl prints an age (`45s`, `3m`, `2h`, `4d`). Pure. */
export function shortDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const since = (time: string, now = Date.now()) => shortDuration((now - Date.parse(time)) / 1000);
const NOT_ANSWERING = "<not answering>";

type PingItem = InspectPingOutput["items"][number];
type StatsItem = InspectStatsOutput["items"][number];
/** A task row of `active` / `reserved`, or a not-answering worker's row (no task). */
type TaskRow<T> = { queue: string; worker: string; task?: T };

const PING_COLUMNS: Column<PingItem>[] = [
  { header: "QUEUE", cell: (i) => i.queue },
  { header: "WORKER", cell: (i) => i.worker },
  { header: "STATUS", cell: (i) => i.status },
  { header: "UPTIME", cell: (i) => (i.uptimeSeconds === undefined ? undefined : shortDuration(i.uptimeSeconds)) },
  { header: "ACTIVE", cell: (i) => (i.active === undefined ? undefined : `${i.active}/${i.concurrency}`) },
  { header: "RESERVED", cell: (i) => i.reserved },
  { header: "VERSION", cell: (i) => i.version },
  { header: "REPLY", cell: (i) => (i.replyMs === undefined ? undefined : `${i.replyMs}ms`) },
];

const ACTIVE_COLUMNS: Column<TaskRow<ActiveTask>>[] = [
  { header: "QUEUE", cell: (r) => r.queue },
  { header: "WORKER", cell: (r) => r.worker },
  { header: "ID", cell: (r) => r.task?.id ?? NOT_ANSWERING },
  { header: "TASK", cell: (r) => r.task?.task },
  { header: "ATTEMPT", cell: (r) => r.task?.attempt },
  { header: "STARTED", cell: (r) => (r.task ? since(r.task.startedAt) : undefined) },
  { header: "PROGRESS", cell: (r) => r.task?.progress?.display },
];

const RESERVED_COLUMNS: Column<TaskRow<ReservedTask>>[] = [
  { header: "QUEUE", cell: (r) => r.queue },
  { header: "WORKER", cell: (r) => r.worker },
  { header: "ID", cell: (r) => r.task?.id ?? NOT_ANSWERING },
  { header: "TASK", cell: (r) => r.task?.task },
  { header: "ATTEMPT", cell: (r) => r.task?.attempt },
  { header: "RECEIVED", cell: (r) => (r.task ? since(r.task.receivedAt) : undefined) },
];

const REGISTERED_COLUMNS: Column<InspectRegisteredOutput["items"][number]>[] = [
  { header: "QUEUE", cell: (i) => i.queue },
  { header: "WORKER", cell: (i) => i.worker },
  { header: "TASKS", cell: (i) => (i.registered ? i.registered.join(",") : NOT_ANSWERING) },
];

const mib = (bytes: number) => `${Math.round(bytes / (1024 * 1024))}Mi`;
const STATS_COLUMNS: Column<StatsItem>[] = [
  { header: "QUEUE", cell: (i) => i.queue },
  { header: "WORKER", cell: (i) => i.worker },
  { header: "STATUS", cell: (i) => i.status },
  { header: "UPTIME", cell: (i) => (i.uptimeSeconds === undefined ? undefined : shortDuration(i.uptimeSeconds)) },
  { header: "ACTIVE", cell: (i) => (i.active === undefined ? undefined : `${i.active}/${i.concurrency}`) },
  { header: "PROCESSED", cell: (i) => i.stats?.processed },
  { header: "SUCCEEDED", cell: (i) => i.stats?.succeeded },
  { header: "FAILED", cell: (i) => i.stats?.failed },
  { header: "RETRIED", cell: (i) => i.stats?.retried },
  { header: "DEAD-LETTERED", cell: (i) => i.stats?.deadLettered },
  { header: "REVOKED", cell: (i) => i.stats?.revoked },
  { header: "RSS", cell: (i) => (i.stats ? mib(i.stats.rssBytes) : undefined) },
];

/** Task rows (one per task, and one per not-answering worker) of per-worker lists. */
function taskRows<T>(items: ReadonlyArray<{ queue: string; worker: string; answered: boolean }>, tasks: (i: never) => T[] | undefined): TaskRow<T>[] {
  return items.flatMap((i) => (i.answered ? (tasks(i as never) ?? []).map((task) => ({ queue: i.queue, worker: i.worker, task })) : [{ queue: i.queue, worker: i.worker }]));
}

/** What the table of `command` is, for rows of answered and not-answering workers. */
function renderCommand(command: ControlCommand, rows: WorkerRow[], format: OutputFormat): string {
  switch (command) {
    case "ping":
      return renderList(pingItems(rows), PING_COLUMNS, format);
    case "active": {
      const items = activeItems(rows);
      if (format !== "table") return renderList(items, [], format);
      const t = taskRows<ActiveTask>(items, (i: InspectActiveOutput["items"][number]) => i.active);
      return t.length ? renderList(t, ACTIVE_COLUMNS, format) : "";
    }
    case "reserved": {
      const items = reservedItems(rows);
      if (format !== "table") return renderList(items, [], format);
      const t = taskRows<ReservedTask>(items, (i: InspectReservedOutput["items"][number]) => i.reserved);
      return t.length ? renderList(t, RESERVED_COLUMNS, format) : "";
    }
    case "registered":
      return renderList(registeredItems(rows), REGISTERED_COLUMNS, format);
    case "stats":
      return renderList(statsItems(rows), STATS_COLUMNS, format);
  }
}

/** Parses `--timeout`: seconds > 0 (fractions allowed), at most 600. */
function parseTimeout(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 600) throw new InvalidArgumentError("must be a number of seconds greater than 0 and at most 600");
  return n;
}

/** The hint for a queue with no live worker. */
function startHint(namespace: string, queues: readonly string[]): string {
  const q = queues.length === 1 ? queues[0]! : "<queue>";
  return `start one with \`celeriac worker --tasks <module> --queue ${q} --namespace ${namespace}\`, or on Kubernetes check the Queue (\`kubectl get queue ${q === "<queue>" ? "" : `${q} `}-n ${namespace}\`: suspended, or scaled to zero with no backlog)`;
}

/** `inspect <command>` for a worker command. */
async function ask(command: ControlCommand, f: AskFlags): Promise<void> {
  const format = outputFormat(f.output);
  const [{ openOps, listed }, { inspectQueue }] = await Promise.all([import("../session.js"), import("../../nats/inspect.js")]);
  const s = await openOps(f, { name: "celeriac-inspect" });
  try {
    const timeoutMs = f.timeout * 1000;
    const per = await Promise.all(s.queues.map(async (q) => ({ q, i: await inspectQueue(s.nc, await s.kv(q), controlSubject(s.namespace, q), command, timeoutMs) })));
    const rows = per.flatMap(({ q, i }) => workerRows(q, i));
    const stale = per.reduce((n, { i }) => n + i.stale, 0);
    if (rows.length === 0) {
      if (format !== "table") process.stdout.write(renderList([], [], format));
      const where = s.queue ? `queue "${s.queue}" (namespace "${s.namespace}")` : `any queue of namespace "${s.namespace}" (${listed(s.queues)})`;
      console.error(`No live workers on ${where}: none answered within ${f.timeout} s and none is in the worker registry${stale ? ` (${stale} gone: last seen over 30 s ago)` : ""}; ${startHint(s.namespace, s.queues)}`);
      return;
    }
    const out = renderCommand(command, rows, format);
    process.stdout.write(out);
    if (format !== "table") return;
    if (out === "") console.error(`No ${command === "active" ? "running tasks" : "delivered, not started messages"} on ${rows.length} worker${rows.length === 1 ? "" : "s"}`);
    // ping's STATUS column says it already
    const silent = command === "ping" ? [] : rows.filter((r) => !r.answered);
    for (const r of silent) console.error(`worker ${r.worker} (queue ${r.queue}) did not answer within ${f.timeout} s; its registry entry was written ${since(r.entry!.lastSeen)} ago: stopped, overloaded or cut off from NATS`);
    if (command === "ping" && stale) console.error(`(${stale} gone worker${stale === 1 ? "" : "s"} in the registry: last seen over 30 s ago, ignored)`);
  } finally {
    await s.close();
  }
}

const SCHEDULED_COLUMNS: Column<ScheduledTask>[] = [
  { header: "QUEUE", cell: (t) => t.queue },
  { header: "ID", cell: (t) => t.id },
  { header: "TASK", cell: (t) => t.task },
  { header: "ETA", cell: (t) => t.eta },
  { header: "DUE", cell: (t) => (t.dueInSeconds === undefined ? undefined : t.dueInSeconds > 0 ? `in ${shortDuration(t.dueInSeconds)}` : "now") },
];

/** `inspect scheduled`: the delayed streams' tasks. */
async function scheduled(f: OpsFlags & { limit: number }): Promise<void> {
  const format = outputFormat(f.output);
  const [{ openOps, listed }, { listDelayedTasks }] = await Promise.all([import("../session.js"), import("../../nats/inspect.js")]);
  const s = await openOps(f, { name: "celeriac-inspect" });
  try {
    const per = await Promise.all(s.queues.map(async (q) => ({ q, d: await listDelayedTasks(s.jsm, queueNames(s.namespace, q), f.limit) })));
    const tasks = per.flatMap(({ d }) => d.tasks).sort((a, b) => (a.dueInSeconds ?? 0) - (b.dueInSeconds ?? 0));
    if (tasks.length === 0) {
      if (format !== "table") process.stdout.write(renderList([], [], format));
      const where = s.queue ? `queue "${s.queue}"` : `the queues of namespace "${s.namespace}" (${listed(s.queues)})`;
      console.error(`No delayed tasks in ${where} (a task enqueued with a countdown or eta waits in its queue's delayed stream until due)`);
      return;
    }
    process.stdout.write(renderList(tasks, SCHEDULED_COLUMNS, format));
    if (format === "table") for (const { q, d } of per) if (d.total > d.tasks.length) console.error(`(queue ${q}: showing the first ${d.tasks.length} of ${d.total} delayed tasks; raise --limit for more)`);
  } finally {
    await s.close();
  }
}

const DESCRIPTIONS: Record<ControlCommand, string> = {
  ping: "list the live workers: status (ok, or not answering within --timeout), uptime, running/concurrency, version",
  active: "list the tasks the workers are running: id, task, attempt, started, progress",
  reserved: "list messages delivered to a worker and not started yet (being admitted, or waiting at the alone gate or for their unique key)",
  registered: "list each worker's registered task names",
  stats: "show each worker's counters since it started: processed, succeeded, failed, retried, dead-lettered, revoked, RSS",
};

/** Registers `celeriac inspect`. */
export function register(program: Command): void {
  const inspect = program.command("inspect").description("ask the live workers of a queue (or of every queue of the namespace) what they are doing; list delayed tasks");
  const queueHelp = "queue [CELERIAC_QUEUE] (default: every queue of the namespace)";
  for (const command of CONTROL_COMMANDS) {
    opsFlags(inspect.command(command).description(DESCRIPTIONS[command]), queueHelp)
      .option("--timeout <s>", "seconds to wait for the workers' replies; a worker silent by then is listed as not answering", parseTimeout, 1)
      .action((f: AskFlags) => ask(command, f));
  }
  opsFlags(inspect.command("scheduled").description("list delayed tasks (countdown/eta): they wait in the queue's delayed stream, not on a worker"), queueHelp)
    .option("--limit <n>", "most delayed tasks read per queue", intInRange(1, 1_000_000), 100)
    .action((f: OpsFlags & { limit: number }) => scheduled(f));
}
