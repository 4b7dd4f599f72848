/**
 * `celeriac queue list|status|purge|pause|resume <q>`: a queue's depth, pause and purge from the
 * shell (asynq's `queue ls|inspect|pause|unpause`, `celery purge`; docs/cli.md). The NATS work is
 * nats/queue-report.ts, nats/queue-pause.ts and nats/queue-purge.ts; this module parses flags,
 * connects (cli/session.ts), confirms and prints (cli/output.ts). Output shapes: api/queue-ops.ts.
 */
import type { Command } from "commander";
import { hostname, userInfo } from "node:os";
import { queueNames } from "../../api/naming.js";
import type { QueuePaused, QueuePauseOutput, QueuePurgeOutput, QueueStatusOutput } from "../../api/queue-ops.js";
import { age } from "./dlq.js";
import { opsFlags, outputFormat, renderList, renderOne, type Column } from "../output.js";
import { confirm, openOps, type OpsFlags, type OpsSession } from "../session.js";

/** Most ids `queue purge -o json` lists. */
const MAX_IDS = 1000;

/** Parses `--sample`: seconds, 0 (no rate) to 60. @throws Error naming the value */
export function parseSample(v: string | undefined): number {
  if (v === undefined) return 1;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n) || n > 60) throw new Error(`--sample: "${v}" is not a number of seconds from 0 to 60 (e.g. --sample 2, --sample 0.5; 0 skips the rate)`);
  return n;
}

/** An age in seconds as kubectl prints one (`45s`, `12m`, `3h`, `2d`); undefined stays undefined. Pure. */
function ageOf(seconds: number | undefined, nowMs: number): string | undefined {
  return seconds === undefined ? undefined : age(new Date(nowMs - seconds * 1000).toISOString(), nowMs);
}

/** The columns of `queue list`. */
function listColumns(nowMs: number): Column<QueueStatusOutput>[] {
  return [
    { header: "QUEUE", cell: (q) => q.queue },
    { header: "BACKLOG", cell: (q) => q.backlog },
    { header: "IN-FLIGHT", cell: (q) => q.inFlight },
    { header: "DELAYED", cell: (q) => q.delayed },
    { header: "DEAD", cell: (q) => q.dead },
    { header: "HELD", cell: (q) => q.held },
    { header: "PAUSED", cell: (q) => (q.paused ? `yes (${age(q.pausedAt ?? new Date(nowMs).toISOString(), nowMs)})` : "no") },
    { header: "OLDEST", cell: (q) => ageOf(q.oldestTaskAgeSeconds, nowMs) },
    { header: "WORKERS", cell: (q) => q.workers },
  ];
}

/** `queue status`'s table layout: one field a line. Pure. */
export function statusTable(q: QueueStatusOutput, nowMs: number): string {
  const rows: Array<[string, string | number | undefined]> = [
    ["Queue", `${q.namespace}/${q.queue}`],
    ["Paused", q.paused ? `yes, since ${q.pausedAt} (${age(q.pausedAt ?? new Date(nowMs).toISOString(), nowMs)})${q.pausedBy ? ` by ${q.pausedBy}` : ""}${q.pausedReason ? `: ${q.pausedReason}` : ""}` : "no"],
    ["Backlog", q.backlog],
    ["In flight", q.inFlight],
    ["Delayed", q.delayed],
    ["Dead", q.dead],
    ...(q.held !== undefined ? [["Held", q.held] as [string, number]] : []),
    ["Rate", q.ratePerSecond !== undefined ? `${q.ratePerSecond}/s (over ${q.sampleSeconds} s)` : undefined],
    ["Oldest task", q.oldestTaskAgeSeconds !== undefined ? `${q.oldestTaskAgeSeconds} s` : undefined],
    ["Workers", q.workers],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(13)}${v === undefined || v === "" ? "<none>" : String(v)}`).join("\n");
}

/** Connects for one queue (the positional argument, else `--queue`/`CELERIAC_QUEUE`); an unknown one lists the namespace's. */
function openQueue(queue: string | undefined, f: OpsFlags): Promise<OpsSession & { queue: string }> {
  return openOps({ ...f, ...(queue !== undefined ? { queue } : {}) }, { name: "celeriac queue", requireQueue: true }) as Promise<OpsSession & { queue: string }>;
}

/** `user@host` of this shell, for the pause record's `by`. */
export function whoami(): string {
  let user = process.env.USER ?? "unknown";
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep $USER
  }
  return `${user}@${hostname()}`;
}

/** `queue pause|resume -o json`'s answer (api/queue-ops.ts `QueuePauseOutput`). Pure. */
export function pauseView(s: { namespace: string; queue: string }, paused: boolean, changed: boolean, p: QueuePaused | undefined): QueuePauseOutput {
  return {
    queue: s.queue, namespace: s.namespace, paused, changed,
    ...(p ? { pausedAt: p.at, ...(p.by ? { pausedBy: p.by } : {}), ...(p.reason ? { pausedReason: p.reason } : {}) } : {}),
  };
}

/**
 * Purges queue `queue` (nats/queue-purge.ts `purgeQueue`) and answers as `queue purge -o json`
 * (at most {@link MAX_IDS} ids); shared by the CLI (after its confirmation) and the dashboard.
 * @param delayed also remove the delayed tasks
 * @throws the NATS errors of the purge
 */
export async function purgeQueueOutput(s: Pick<OpsSession, "jsm" | "kv" | "namespace">, queue: string, delayed: boolean): Promise<QueuePurgeOutput> {
  const { purgeQueue } = await import("../../nats/queue-purge.js");
  const r = await purgeQueue(s.jsm, await s.kv(queue), queueNames(s.namespace, queue), { delayed });
  return { queue, namespace: s.namespace, removed: r.removed, removedDelayed: r.removedDelayed, removedHeld: r.removedHeld, started: r.started, ids: r.ids.slice(0, MAX_IDS) };
}

/** Registers `celeriac queue …` on `program`. */
export function register(program: Command): void {
  const queue = program.command("queue").description("list queues, show one's depth and rate, purge, pause and resume it");
  const flags = (c: Command) => opsFlags(c, "the queue, when not given as the argument [CELERIAC_QUEUE]");

  opsFlags(queue.command("list").description("the namespace's queues: backlog, in flight, delayed, dead, held, paused, oldest task age, workers"), "ignored: list shows every queue of the namespace")
    .action(async (f: OpsFlags) => {
      const format = outputFormat(f.output);
      // list shows every queue of the namespace: neither --queue nor CELERIAC_QUEUE narrows it
      delete process.env.CELERIAC_QUEUE;
      const { queue: _q, ...rest } = f;
      void _q;
      const s = await openOps(rest, { name: "celeriac queue" });
      try {
        const { readQueueReports } = await import("../../nats/queue-report.js");
        const items = await readQueueReports(s.jsm, (q) => s.kv(q), s.queues.map((q) => queueNames(s.namespace, q)));
        process.stdout.write(renderList(items, listColumns(Date.now()), format));
      } finally {
        await s.close();
      }
    });

  flags(queue.command("status [queue]").description("one queue: backlog, in flight, delayed, dead, held, paused, settle rate, oldest task age, workers"))
    .option("--sample <seconds>", "measure the settle rate over this long (0: no rate)", "1")
    .action(async (q: string | undefined, f: OpsFlags & { sample?: string }) => {
      const format = outputFormat(f.output);
      const sample = parseSample(f.sample);
      const s = await openQueue(q, f);
      try {
        const { readQueueReport } = await import("../../nats/queue-report.js");
        const r = await readQueueReport(s.jsm, await s.kv(s.queue), queueNames(s.namespace, s.queue), { sampleMs: Math.round(sample * 1000) });
        process.stdout.write(renderOne(r, format, (x) => statusTable(x, Date.now())));
      } finally {
        await s.close();
      }
    });

  flags(queue.command("purge [queue]").description("remove the queued tasks (not those running), recording them Cancelled; asks for confirmation (--yes for scripts)"))
    .option("--delayed", "also remove the delayed tasks (countdown/eta not reached)")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (q: string | undefined, f: OpsFlags & { delayed?: boolean; yes?: boolean }) => {
      const format = outputFormat(f.output);
      const s = await openQueue(q, f);
      try {
        const names = queueNames(s.namespace, s.queue);
        const { purgeable } = await import("../../nats/queue-purge.js");
        const where = `queue ${s.namespace}/${s.queue}`;
        const n = await purgeable(s.jsm, names, { delayed: f.delayed === true });
        const total = n.queued + n.delayed + n.held;
        const empty: QueuePurgeOutput = { queue: s.queue, namespace: s.namespace, removed: 0, removedDelayed: 0, removedHeld: 0, started: 0, ids: [] };
        if (total === 0) {
          console.error(`Nothing to purge: ${where} has no queued tasks${f.delayed ? " and no delayed ones" : ""}.`);
          if (format !== "table") process.stdout.write(renderOne(empty, format, () => ""));
          return;
        }
        const parts = [`${n.queued} queued`, ...(n.held ? [`${n.held} held (flow control)`] : []), ...(f.delayed ? [`${n.delayed} delayed`] : [])];
        if (!f.yes && !(await confirm(`Purge ${parts.join(", ")} task${total === 1 ? "" : "s"} of ${where}? Running tasks are left to finish.`, `purge ${where}`))) {
          console.error("Nothing purged.");
          return;
        }
        const out = await purgeQueueOutput(s, s.queue, f.delayed === true);
        const detail = [...(out.removedHeld ? [`${out.removedHeld} held`] : []), ...(out.removedDelayed ? [`${out.removedDelayed} delayed`] : [])];
        process.stdout.write(renderOne(out, format, () =>
          `purged ${out.removed} task${out.removed === 1 ? "" : "s"} of ${where}${detail.length ? ` (${detail.join(", ")})` : ""}, recorded Cancelled; ${out.started} had started meanwhile and are left running`));
      } finally {
        await s.close();
      }
    });

  flags(queue.command("pause [queue]").description("stop dispatch: workers pull nothing (running tasks finish, workers are not scaled away); not spec.suspend"))
    .option("--reason <text>", "why (recorded, shown by queue status and on the Queue's status.paused)")
    .action(async (q: string | undefined, f: OpsFlags & { reason?: string }) => {
      const format = outputFormat(f.output);
      const s = await openQueue(q, f);
      try {
        const { pauseQueue } = await import("../../nats/queue-pause.js");
        const r = await pauseQueue(await s.kv(s.queue), { by: whoami(), ...(f.reason ? { reason: f.reason } : {}) });
        const where = `queue ${s.namespace}/${s.queue}`;
        if ("already" in r) {
          const p = r.already;
          process.stdout.write(renderOne(pauseView(s, true, false, p), format, () => `${where} is already paused (since ${p.at}${p.by ? ` by ${p.by}` : ""}${p.reason ? `: ${p.reason}` : ""}); nothing changed`));
        } else {
          process.stdout.write(renderOne(pauseView(s, true, true, r.paused), format, () => `${where} paused: workers pull nothing until celeriac queue resume ${s.queue}; running tasks finish`));
        }
      } finally {
        await s.close();
      }
    });

  flags(queue.command("resume [queue]").description("resume dispatch of a paused queue"))
    .action(async (q: string | undefined, f: OpsFlags) => {
      const format = outputFormat(f.output);
      const s = await openQueue(q, f);
      try {
        const { resumeQueue } = await import("../../nats/queue-pause.js");
        const lifted = await resumeQueue(await s.kv(s.queue));
        const where = `queue ${s.namespace}/${s.queue}`;
        process.stdout.write(renderOne(pauseView(s, false, lifted !== undefined, lifted), format, () =>
          lifted ? `${where} resumed (it was paused since ${lifted.at})` : `${where} is not paused; nothing changed`));
      } finally {
        await s.close();
      }
    });
}
