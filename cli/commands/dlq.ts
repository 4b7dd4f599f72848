/**
 * `celeriac dlq list|show|replay|purge`: a queue's dead letters from the shell (docs/cli.md). The
 * NATS work is nats/dead-letters.ts; this module parses flags, connects, confirms and prints.
 */
import type { Command } from "commander";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { DlqPurgeOutput, DlqShowOutput } from "../../api/cli-output.js";
import { TASK_PHASES } from "../../api/constants.js";
import { DEAD_LETTER_REASONS } from "../../api/message.js";
import { assertQueueRef, queueNames, type QueueNames } from "../../api/naming.js";
import { parseGoDuration } from "../../nats/queue-settings.js";
import type { DeadLetter, DeadLetterSelection, RawDeadLetter, ReplayOutcome } from "../../nats/dead-letters.js";
import { opsFlags, outputFormat, renderList, renderOne, type Column } from "../output.js";
import { parseJsonFlag } from "./enqueue.js";
import { confirm, listed as listedNames, noQueuesMessage, openOps, type OpsFlags } from "../session.js";

/** Flags every `dlq` subcommand takes. */
type CommonFlags = OpsFlags;

/** Selection flags of list, replay and purge. */
interface SelectFlags extends CommonFlags {
  reason?: string[];
  task?: string[];
  since?: string;
  replayState?: string;
  all?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

/** A dead letter's age as kubectl prints one (`45s`, `12m`, `3h`, `2d`). Pure. */
export function age(fromIso: string, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - Date.parse(fromIso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/**
 * Parses `--since`: a Go duration back from now (`90m`, `2h`, `1h30m`) or an RFC 3339 time.
 * @returns ms since the epoch
 * @throws Error naming the flag and both forms
 */
export function parseSince(v: string, nowMs: number): number {
  if (/^\d/.test(v) && !v.includes("T")) {
    try {
      return nowMs - parseGoDuration(v) / 1e6;
    } catch {
      // fall through to the message below
    }
  }
  const t = Date.parse(v);
  if (v.includes("T") && Number.isFinite(t)) return t;
  throw new Error(`--since: "${v}" is neither a duration nor a time: use e.g. --since 2h, --since 1h30m or --since 2026-12-03T14:00:00Z`);
}

/**
 * Parses sequence arguments and the selection flags.
 * @throws Error naming the bad value and what is allowed
 */
export function parseSelection(seqs: readonly string[], f: SelectFlags, nowMs: number): DeadLetterSelection {
  const sel: DeadLetterSelection = {};
  if (seqs.length) {
    sel.seqs = seqs.map((s) => {
      if (!/^\d+$/.test(s) || Number(s) < 1) throw new Error(`"${s}" is not a dead-letter sequence: give the SEQ of a dead letter, as celeriac dlq list shows it`);
      return Number(s);
    });
  }
  if (f.reason?.length) {
    for (const r of f.reason) {
      if (!(DEAD_LETTER_REASONS as readonly string[]).includes(r)) throw new Error(`--reason: "${r}" is not a dead-letter reason: use one of ${DEAD_LETTER_REASONS.join(", ")}`);
    }
    sel.reasons = f.reason;
  }
  if (f.task?.length) sel.tasks = f.task;
  if (f.since !== undefined) sel.sinceMs = parseSince(f.since, nowMs);
  if (f.replayState !== undefined) {
    const ok = ["none", "any", ...TASK_PHASES];
    if (!ok.includes(f.replayState)) throw new Error(`--replay-state: "${f.replayState}" is not a replay state: use one of ${ok.join(", ")}`);
    sel.replayState = f.replayState;
  }
  return sel;
}

/** True when the selection names nothing in particular (every dead letter). */
function isEverything(sel: DeadLetterSelection): boolean {
  return Object.keys(sel).length === 0;
}

/** The columns of `dlq list`. */
function listColumns(nowMs: number): Column<DeadLetter>[] {
  return [
    { header: "SEQ", cell: (d) => d.seq },
    { header: "ID", cell: (d) => d.id },
    { header: "TASK", cell: (d) => d.task },
    { header: "REASON", cell: (d) => d.reason },
    { header: "ATTEMPTS", cell: (d) => d.attempts },
    { header: "AGE", cell: (d) => age(d.deadLetteredAt, nowMs) },
    { header: "REPLAY", cell: (d) => (d.replay ? `${d.replay.id} (${d.replay.phase ?? "published"})` : undefined) },
    { header: "ERROR", cell: (d) => (d.error && d.error.length > 80 ? `${d.error.slice(0, 77)}...` : d.error) },
  ];
}

/** A dead letter without its raw parts (the list and replay shape). */
function listed(d: RawDeadLetter): DeadLetter {
  const { headers: _h, data: _d, ...rest } = d;
  void _h;
  void _d;
  return rest;
}

/** `dlq show`'s object (api/cli-output.ts `DlqShowSchema`): the dead letter, its headers and its body (text when UTF-8, and base64). */
export function shown(d: RawDeadLetter): DlqShowOutput {
  let body: string | undefined;
  try {
    body = new TextDecoder("utf-8", { fatal: true }).decode(d.data);
  } catch {
    body = undefined;
  }
  return { ...listed(d), headers: d.headers, ...(body !== undefined ? { body } : {}), bodyBase64: Buffer.from(d.data).toString("base64"), bytes: d.data.length };
}

/** A selection, in words, for "nothing matches" messages. */
function describe(sel: DeadLetterSelection, f: SelectFlags): string {
  const parts: string[] = [];
  if (sel.seqs) parts.push(`seq ${sel.seqs.join(", ")}`);
  if (sel.reasons) parts.push(`--reason ${sel.reasons.join(",")}`);
  if (sel.tasks) parts.push(`--task ${sel.tasks.join(",")}`);
  if (f.since !== undefined) parts.push(`--since ${f.since}`);
  if (sel.replayState) parts.push(`--replay-state ${sel.replayState}`);
  return parts.length ? ` match ${parts.join(" ")}` : "";
}

/** A connected session on one queue (cli/session.ts `openOps`, the queue required). */
interface Session {
  names: QueueNames;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The results bucket of `names`' queue, or undefined when it cannot be opened. */
  results(names: QueueNames): Promise<KV | undefined>;
  close(): Promise<void>;
}

/**
 * Why a queue does not exist: which queues (or namespaces) do.
 * @returns the message of the error
 */
async function unknownQueue(jsm: JetStreamManager, namespace: string, queue: string): Promise<string> {
  const { listQueues } = await import("../../client/queue-lookup.js");
  const queues = await listQueues(jsm, namespace);
  if (queues.length) return `queue "${queue}" does not exist in namespace "${namespace}"; existing queues: ${listedNames(queues)}`;
  return `queue "${queue}" does not exist: ${await noQueuesMessage(jsm, namespace)}`;
}

/**
 * Connects for `f` (--nats, --dev-dir, CELERIAC_NATS_*) on the queue given (required).
 * @throws Error naming the queue and those that exist; the NATS target when unreachable
 */
async function open(f: CommonFlags): Promise<Session> {
  const s = await openOps(f, { name: "celeriac-dlq", requireQueue: true });
  const names = queueNames(s.namespace, s.queue!);
  return {
    names,
    js: s.js,
    jsm: s.jsm,
    results: (n) => s.kv(n.queue).catch(() => undefined),
    close: () => s.close(),
  };
}

const common = (c: Command): Command => opsFlags(c, "queue [CELERIAC_QUEUE]");

/** Adds the selection flags. */
function selecting(c: Command, all: string | undefined): Command {
  common(c)
    .option("--reason <reason>", `only this reason (repeat or comma-separate): ${DEAD_LETTER_REASONS.join(", ")}`, collect)
    .option("--task <name>", "only this task name (repeat or comma-separate)", collect)
    .option("--since <when>", "only dead-lettered since: a duration back from now (2h, 1h30m) or an RFC 3339 time")
    .option("--replay-state <state>", "only: none (never replayed), any (replayed), or the replay's phase (Succeeded, Failed, Running, …)");
  if (all) c.option("--all", all);
  return c;
}

/** Registers `celeriac dlq`. */
export function register(program: Command): void {
  const dlq = program.command("dlq").description("list, show, replay and purge a queue's dead letters");

  selecting(dlq.command("list").description("list dead letters: reason, task, attempts, age, error, replay").option("--limit <n>", "at most this many"), undefined).action(async (f: SelectFlags & { limit?: string }) => {
    const format = outputFormat(f.output);
    const now = Date.now();
    const sel = parseSelection([], f, now);
    const limit = f.limit === undefined ? undefined : Number(f.limit);
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw new Error(`--limit: must be a positive integer (got "${f.limit}")`);
    const s = await open(f);
    try {
      const { readDeadLetters } = await import("../../nats/dead-letters.js");
      const dls = (await readDeadLetters(s.jsm, s.names, sel, { results: await s.results(s.names), ...(limit ? { limit } : {}) })).map(listed);
      if (dls.length === 0 && format === "table") {
        console.error(`No dead letters in queue ${s.names.namespace}/${s.names.queue}${describe(sel, f)}.`);
        return;
      }
      process.stdout.write(renderList(dls, listColumns(now), format));
    } finally {
      await s.close();
    }
  });

  common(dlq.command("show <seq>").description("show one dead letter: its headers and original bytes")).action(async (seq: string, f: CommonFlags) => {
    const format = outputFormat(f.output);
    const sel = parseSelection([seq], {}, Date.now());
    const s = await open(f);
    try {
      const { readDeadLetters } = await import("../../nats/dead-letters.js");
      const [d] = await readDeadLetters(s.jsm, s.names, sel, { results: await s.results(s.names) });
      if (!d) throw new Error(`dead letter ${seq} does not exist in queue ${s.names.namespace}/${s.names.queue} (removed, expired or never written): list them with celeriac dlq list --queue ${s.names.queue} -n ${s.names.namespace}`);
      process.stdout.write(renderOne(shown(d), format, showTable));
    } finally {
      await s.close();
    }
  });

  selecting(
    dlq
      .command("replay [seq...]")
      .description("replay dead letters as new tasks (<id>-r<seq>); the dead letters are kept unless --remove")
      .option("--args <json>", "replace the positional arguments: a JSON array; @file reads a file, @- standard input")
      .option("--kwargs <json>", "replace the keyword arguments: a JSON object; @file / @- as for --args")
      .option("--to-queue <q>", "replay to this queue of the namespace instead")
      .option("--remove", "delete each dead letter once its replay's publish is confirmed"),
    "replay every dead letter of the queue (needed when no seq or selection flag is given)",
  ).action(async (seqs: string[], f: SelectFlags & { args?: string; kwargs?: string; toQueue?: string; remove?: boolean }) => {
    const format = outputFormat(f.output);
    const sel = parseSelection(seqs, f, Date.now());
    if (isEverything(sel) && !f.all) throw new Error("say which dead letters to replay: give their SEQs, a selection (--reason, --task, --since, --replay-state) or --all");
    const edits = {
      ...(f.args !== undefined ? { args: parseJsonFlag("--args", f.args) as unknown[] } : {}),
      ...(f.kwargs !== undefined ? { kwargs: parseJsonFlag("--kwargs", f.kwargs) as Record<string, unknown> } : {}),
    };
    const s = await open(f);
    try {
      let target = s.names;
      if (f.toQueue !== undefined && f.toQueue !== s.names.queue) {
        assertQueueRef(s.names.namespace, f.toQueue);
        target = queueNames(s.names.namespace, f.toQueue);
        try {
          await s.jsm.streams.info(target.stream);
        } catch (err) {
          throw new Error(`--to-queue: ${await unknownQueue(s.jsm, s.names.namespace, f.toQueue)}`, { cause: err });
        }
      }
      const { readDeadLetters, replayDeadLetters } = await import("../../nats/dead-letters.js");
      const dls = await readDeadLetters(s.jsm, s.names, sel, { results: await s.results(s.names) });
      // SEQs named that do not exist are an error (exit 1), checked before "nothing matched" (exit 0)
      if (sel.seqs) {
        const missing = sel.seqs.filter((q) => !dls.some((d) => d.seq === q));
        if (missing.length) throw new Error(`dead letter ${missing.join(", ")} does not exist in queue ${s.names.namespace}/${s.names.queue}: nothing replayed; list them with celeriac dlq list --queue ${s.names.queue} -n ${s.names.namespace}`);
      }
      if (dls.length === 0) {
        console.error(`No dead letters in queue ${s.names.namespace}/${s.names.queue}${describe(sel, f)}: nothing replayed.`);
        if (format !== "table") process.stdout.write(renderList([], [], format));
        return;
      }
      const results = await s.results(target);
      const out = await replayDeadLetters(s.js, s.jsm, s.names, dls, { ...edits, target, ...(results ? { targetResults: results } : {}), remove: f.remove === true });
      process.stdout.write(renderList(out, replayColumns, format));
      const replayed = out.filter((o) => o.outcome === "Replayed").length;
      if (format === "table") console.error(`${replayed} of ${out.length} dead letters replayed to ${target.namespace}/${target.queue}${f.remove ? `, ${out.filter((o) => o.removed).length} removed` : "; the dead letters are kept (dlq list shows each replay's state; dlq purge --replay-state Succeeded removes those that succeeded)"}`);
      if (replayed < out.length && out.some((o) => o.outcome === "Skipped" && !o.message?.startsWith("already replayed"))) process.exitCode = 1;
      const kept = out.filter((o) => o.outcome === "Replayed" && f.remove && !o.removed);
      if (kept.length) {
        console.error(`${kept.length} dead letter${kept.length === 1 ? " was" : "s were"} replayed but not removed: ${kept[0]!.message ?? "not found"}`);
        process.exitCode = 1;
      }
    } finally {
      await s.close();
    }
  });

  selecting(
    dlq.command("purge [seq...]").description("delete dead letters (asks for confirmation; --yes for scripts)").option("-y, --yes", "do not ask for confirmation"),
    "delete every dead letter of the queue (needed when no seq or selection flag is given)",
  ).action(async (seqs: string[], f: SelectFlags & { yes?: boolean }) => {
    const format = outputFormat(f.output);
    const sel = parseSelection(seqs, f, Date.now());
    if (isEverything(sel) && !f.all) throw new Error("say which dead letters to delete: give their SEQs, a selection (--reason, --task, --since, --replay-state) or --all");
    const s = await open(f);
    try {
      const { readDeadLetters, purgeDeadLetters } = await import("../../nats/dead-letters.js");
      const dls = await readDeadLetters(s.jsm, s.names, sel, { results: await s.results(s.names) });
      const where = `queue ${s.names.namespace}/${s.names.queue}`;
      if (sel.seqs) {
        const missing = sel.seqs.filter((q) => !dls.some((d) => d.seq === q));
        if (missing.length) throw new Error(`dead letter ${missing.join(", ")} does not exist in ${where}: nothing deleted; list them with celeriac dlq list --queue ${s.names.queue} -n ${s.names.namespace}`);
      }
      if (dls.length === 0) {
        console.error(`No dead letters in ${where}${describe(sel, f)}: nothing deleted.`);
        if (format !== "table") process.stdout.write(renderOne<DlqPurgeOutput>({ deleted: 0, seqs: [] }, format, () => ""));
        return;
      }
      const what = `${dls.length} dead letter${dls.length === 1 ? "" : "s"} of ${where}`;
      if (!f.yes) {
        if (!(await confirm(`Delete ${what}?`, `delete ${what}`))) {
          console.error("Nothing deleted.");
          return;
        }
      }
      const { isPermissionViolation } = await import("../../nats/queue-resources.js");
      const { deleteRefused } = await import("../../nats/dead-letters.js");
      const deleted = await purgeDeadLetters(s.jsm, s.names, dls, isEverything(sel)).catch((err: unknown) => {
        throw isPermissionViolation(err) ? new Error(`nothing deleted: ${deleteRefused(s.names)}`, { cause: err }) : err;
      });
      const r: DlqPurgeOutput = { deleted, seqs: dls.map((d) => d.seq) };
      process.stdout.write(renderOne(r, format, () => `deleted ${deleted} dead letter${deleted === 1 ? "" : "s"} of ${where}`));
    } finally {
      await s.close();
    }
  });
}

/** Columns of `dlq replay`'s output. */
const replayColumns: ReadonlyArray<Column<ReplayOutcome>> = [
  { header: "SEQ", cell: (o) => o.seq },
  { header: "ID", cell: (o) => o.id },
  { header: "REPLAY-ID", cell: (o) => o.replayId },
  { header: "QUEUE", cell: (o) => o.queue },
  { header: "OUTCOME", cell: (o) => o.outcome },
  { header: "REMOVED", cell: (o) => (o.removed ? "yes" : "no") },
  { header: "MESSAGE", cell: (o) => o.message },
];

/** `dlq show`'s table layout: fields, headers, then the body. */
function showTable(d: ReturnType<typeof shown>): string {
  const rows: Array<[string, string | number | undefined]> = [
    ["Seq", d.seq],
    ["Id", d.id],
    ["Task", d.task],
    ["Reason", d.reason],
    ["Attempts", d.attempts],
    ["Dead-lettered", d.deadLetteredAt],
    ["Error", d.error],
    ["Original", d.originalStream ? `${d.originalStream} seq ${d.originalSeq ?? "?"}` : undefined],
    ["Replay", d.replay ? `${d.replay.id} (${d.replay.phase ?? "published"})` : undefined],
  ];
  const lines = rows.map(([k, v]) => `${`${k}:`.padEnd(15)}${v === undefined || v === "" ? "<none>" : String(v)}`);
  lines.push("Headers:");
  for (const [k, v] of Object.entries(d.headers)) lines.push(`  ${k}: ${v}`);
  lines.push(`Body (${d.bytes} bytes${d.body === undefined ? ", not UTF-8: base64" : ""}):`);
  lines.push(d.body ?? d.bodyBase64);
  return lines.join("\n");
}

