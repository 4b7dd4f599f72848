/**
 * The peers benchmark's report, pure: per-round phase outcomes in, medians, ratios and the printed
 * tables out (run.ts does the measuring).
 */
import type { ProcMemory } from "./children.js";
import type { ProducerResult } from "./producer-common.js";

/** What one system's run (one phase of one round) produced. */
export interface PhaseOutcome {
  /** Row key, e.g. `celeriac`, `bullmq-c50`, `celery`, `raw`, `kv`, `celeriac-bulk`. */
  key: string;
  /** Round, from 1. */
  round: number;
  /** The producer's figures; undefined when the phase failed. */
  result?: ProducerResult;
  /** Memory of each worker process after its load (VmRSS now, VmHWM peak), in start order. */
  workers: (ProcMemory | undefined)[];
  /** Why the phase failed. */
  error?: string;
  /** `os.loadavg()` before and after the phase. */
  loadBefore: number[];
  loadAfter: number[];
  /** Wall time of the whole phase (workers started → stopped), s. */
  wallSeconds: number;
}

/** A system's row: label and how it was configured. */
export interface RowSpec {
  key: string;
  label: string;
  /** How many worker processes it ran (0: the consumer runs in the producer's process). */
  procs: number;
  /** True for the configuration candidates of one system (the best one becomes the ratio base). */
  candidateOf?: string;
}

/** Medians over the rounds of one row. */
export interface RowSummary extends RowSpec {
  rounds: number;
  failed: string[];
  /** e2e tasks/s: median and range over the rounds. */
  perSecond?: { median: number; min: number; max: number };
  /** Producer's enqueue rate during the throughput run (tasks/s, median). */
  enqueuePerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Loaded worker RSS: the largest per-process VmHWM of a round, median over rounds (MiB). */
  workerHwmMiB?: number;
  /** Worker VmRSS right after the load, largest process, median (MiB). */
  workerRssMiB?: number;
  /** Bulk enqueue rate (tasks/s, median) or why not measured. */
  bulk?: { median: number; min: number; max: number; failed: number } | { na: string };
  /** 1-minute load average over the row's phases: min and max of before/after. */
  load1: { min: number; max: number };
  /** Ratios of `perSecond.median` to BullMQ's best and to raw JetStream. */
  xBullmq?: number;
  xRaw?: number;
}

/** Median of `xs` (mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const range = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/**
 * Summarises each row over its rounds and adds the ratios: × BullMQ against the BullMQ candidate
 * with the best median throughput, × raw against the `raw` row.
 */
export function summarise(rows: readonly RowSpec[], outcomes: readonly PhaseOutcome[]): RowSummary[] {
  const out: RowSummary[] = rows.map((r) => {
    const mine = outcomes.filter((o) => o.key === r.key);
    const ok = mine.filter((o) => o.result && !o.error);
    const loads = mine.flatMap((o) => [o.loadBefore[0] ?? NaN, o.loadAfter[0] ?? NaN]).filter(Number.isFinite);
    const s: RowSummary = {
      ...r,
      rounds: ok.length,
      failed: mine.filter((o) => o.error).map((o) => `round ${o.round}: ${o.error}`),
      load1: { min: loads.length ? Math.min(...loads) : NaN, max: loads.length ? Math.max(...loads) : NaN },
    };
    const thr = ok.map((o) => o.result!.throughput).filter((t) => t !== undefined);
    if (thr.length) {
      s.perSecond = range(thr.map((t) => t.perSecond));
      s.enqueuePerSecond = median(thr.map((t) => t.n / t.enqueueSeconds));
    }
    const lat = ok.map((o) => o.result!.latency).filter((l) => l !== undefined);
    if (lat.length) {
      s.p50Ms = median(lat.map((l) => l.p50Ms));
      s.p99Ms = median(lat.map((l) => l.p99Ms));
    }
    // the consumer of the ceilings runs in the producer process: its memory is the "worker" memory
    const mem = ok.map((o) => (r.procs === 0 ? [o.result!.self] : o.workers).filter((m) => m !== undefined));
    const hwm = mem.filter((m) => m.length).map((m) => Math.max(...m.map((x) => x.hwmMiB)));
    const rss = mem.filter((m) => m.length).map((m) => Math.max(...m.map((x) => x.rssMiB)));
    if (hwm.length) s.workerHwmMiB = median(hwm);
    if (rss.length) s.workerRssMiB = median(rss);
    const bulk = ok.map((o) => o.result!.bulk).filter((b) => b !== undefined);
    const measured = bulk.filter((b): b is { n: number; seconds: number; perSecond: number; failed: number } => !("na" in b));
    if (measured.length) s.bulk = { ...range(measured.map((b) => b.perSecond)), failed: Math.max(...measured.map((b) => b.failed)) };
    else if (bulk.length) s.bulk = bulk[0] as { na: string };
    return s;
  });
  const bullKey = bestCandidates(out).bullmq;
  const bull = out.find((s) => s.key === bullKey)?.perSecond?.median;
  const raw = out.find((s) => s.key === "raw")?.perSecond?.median;
  for (const s of out) {
    if (!s.perSecond) continue;
    if (bull) s.xBullmq = s.perSecond.median / bull;
    if (raw) s.xRaw = s.perSecond.median / raw;
  }
  return out;
}

/** The best candidate's key per system (`bullmq` → `bullmq-c50`), by median throughput. */
export function bestCandidates(summary: readonly RowSummary[]): Record<string, string> {
  const best: Record<string, RowSummary> = {};
  for (const s of summary) {
    if (!s.candidateOf || !s.perSecond) continue;
    const b = best[s.candidateOf];
    if (!b || s.perSecond.median > b.perSecond!.median) best[s.candidateOf] = s;
  }
  return Object.fromEntries(Object.entries(best).map(([k, v]) => [k, v.key]));
}

const n0 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : Math.round(x).toLocaleString("en-US"));
const n2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(2));
const ratio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : `${x.toFixed(2)}×`);

/**
 * The markdown throughput/latency/memory table (one row per system, best BullMQ config in bold
 * ratio base), then the bulk-enqueue table.
 */
export function formatTables(summary: readonly RowSummary[], rateHz: number): string {
  const best = new Set(Object.values(bestCandidates(summary)));
  const lines = [
    `| system (config) | e2e tasks/s (median [min–max]) | × BullMQ | × raw JetStream | p50 / p99 ms at ${rateHz}/s | worker RSS MiB, peak (VmHWM) / after | load avg (1 min) |`,
    "|---|--:|--:|--:|--:|--:|--:|",
  ];
  for (const s of summary) {
    if (s.key.endsWith("-bulk")) continue;
    const mark = best.has(s.key) ? " ← best" : "";
    const thr = s.perSecond ? `${n0(s.perSecond.median)} [${n0(s.perSecond.min)}–${n0(s.perSecond.max)}]` : "n/a";
    const procs = s.procs === 0 ? "1 proc, incl. producer" : s.procs === 1 ? "1 proc" : `largest of ${s.procs} procs`;
    const mem = s.workerHwmMiB !== undefined ? `${n0(s.workerHwmMiB)} / ${n0(s.workerRssMiB)} (${procs})` : "–";
    const fail = s.failed.length ? ` (${s.failed.length} failed)` : "";
    lines.push(`| ${s.label}${mark}${fail} | ${thr} | ${ratio(s.xBullmq)} | ${ratio(s.xRaw)} | ${n2(s.p50Ms)} / ${n2(s.p99Ms)} | ${mem} | ${n2(s.load1.min)}–${n2(s.load1.max)} |`);
  }
  const bulks = summary.filter((s) => s.key.endsWith("-bulk"));
  if (bulks.length) {
    const base = bulks.find((s) => s.key === "bullmq-bulk")?.bulk;
    const baseRate = base && !("na" in base) ? base.median : undefined;
    lines.push("", "| bulk enqueue (no workers running) | tasks/s (median [min–max]) | × BullMQ addBulk | failed elements |", "|---|--:|--:|--:|");
    for (const s of bulks) {
      const b = s.bulk;
      if (!b) lines.push(`| ${s.label} | n/a${s.failed.length ? ` (${s.failed[0]})` : ""} | – | – |`);
      else if ("na" in b) lines.push(`| ${s.label} | n/a (${b.na}) | – | – |`);
      else lines.push(`| ${s.label} | ${n0(b.median)} [${n0(b.min)}–${n0(b.max)}] | ${ratio(baseRate ? b.median / baseRate : undefined)} | ${b.failed} |`);
    }
  }
  return lines.join("\n");
}
