/**
 * Celeriac side by side with its peers, on this machine, in one run:
 *
 *   npm run bench:peers                 (≈ 15 min: 3 rounds, 20,000 tasks, 10 s at 500/s)
 *   npm run bench:peers -- --quick      (≈ 3 min: 3 rounds, 5,000 tasks, 3 s at 500/s)
 *   node dist/bench/peers/run.js [--quick] [--rounds 3] [--count N] [--seconds S] [--rate 500]
 *     [--warmup N] [--bulk 20000] [--bullmq-concurrency 50,100] [--celeriac-procs 2]
 *     [--celeriac-concurrency 256] [--celery-procs 2] [--celery-threads 4]
 *     [--only celeriac,bullmq,celery,raw,kv] [--budget-seconds S] [--out FILE | --no-write]
 *
 * Systems, each with its workers started and ready before its first enqueue, no-op task
 * `add(a, b)`, one producer process keeping 1,000 enqueues in flight, completion = the result
 * observed stored (how each producer observes it: the producer files' headers):
 * - Celeriac: `celeriac/client` `enqueue` → `celeriac worker` processes (2 × concurrency 256);
 * - BullMQ + Redis: `Queue.add` → one `Worker` process per concurrency candidate (50, 100);
 * - Celery + Redis: `apply_async` → `celery worker` processes (2 × `--pool solo`, prefetch ×64);
 * - the JetStream ceilings of bench/throughput-phases.ts: publish+consume+ack, and the same with
 *   one KV put per message, producer and consumer in one process;
 * - bulk enqueue with no workers running: `client.enqueueMany` (n/a when the client has none) vs
 *   `Queue.addBulk`, of `--bulk` tasks.
 * Per system: e2e tasks/s over `--count` tasks (first enqueue → last result stored), then p50/p99
 * latency at `--rate`/s offered for `--seconds`, then the worker processes' VmHWM/VmRSS from
 * /proc/<pid>/status. Rounds are interleaved (Celeriac, BullMQ, Celery, ceilings, Celeriac, …) and
 * each figure is the median of the rounds, printed with the load average around it.
 *
 * One nats-server (JetStream, file store) and one redis-server (`--save "" --appendonly no`) on free
 * loopback ports with temp dirs serve every round; their state is wiped between phases. Every
 * process is tracked and killed on exit, SIGINT and SIGTERM (children.ts). Bounded: each producer
 * phase fails after 60 s per run inside it and is killed after 200 s; a round starts only when the
 * `--budget-seconds` left (900, quick 180) can hold the longest round so far (the first always
 * runs), so every median is over whole rounds. Writes bench/peers/results/<timestamp>.json.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { natsOpts } from "../throughput-phases.js";
import { Children, procMemory, type Child } from "./children.js";
import { startNats, startRedis, versionOf, type Server } from "./servers.js";
import { bestCandidates, formatTables, summarise, type PhaseOutcome, type RowSpec } from "./report.js";
import type { ProducerResult, ProducerSpec } from "./producer-common.js";

/** Repository root, from dist/bench/peers/. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const HERE_DIST = fileURLToPath(new URL("./", import.meta.url));
/** Python sources are not compiled: celery_peers.py is read from the source tree. */
const PY_DIR = join(ROOT, "bench", "peers");
const PYTHON = "/usr/bin/python3";
const PRODUCER_KILL_MS = 200_000;
const WORKER_READY_MS = 60_000;

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const str = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
/**
 * Reads `--name N` as a positive number.
 * @throws Error naming the flag when its value is not a positive number
 */
const num = (name: string, dflt: number): number => {
  const v = Number(str(name, String(dflt)));
  if (!(v > 0)) throw new Error(`--${name} needs a positive number, got ${str(name, "")}`);
  return v;
};
const QUICK = flag("quick");
const ROUNDS = num("rounds", 3);
const COUNT = num("count", QUICK ? 5000 : 20_000);
const SECONDS = num("seconds", QUICK ? 3 : 10);
const RATE = num("rate", 500);
const WARMUP = num("warmup", QUICK ? 500 : 1000);
const BULK = num("bulk", 20_000);
const BUDGET_MS = num("budget-seconds", QUICK ? 180 : 900) * 1000;
const BULL_CONC = str("bullmq-concurrency", "50,100").split(",").map(Number).filter((n) => n > 0);
const CEL_PROCS = num("celeriac-procs", 2);
const CEL_CONC = num("celeriac-concurrency", 256);
const CELERY_PROCS = num("celery-procs", 2);
const CELERY_THREADS = num("celery-threads", 4);
const ONLY = new Set(str("only", "celeriac,bullmq,celery,raw,kv").split(","));

const children = new Children();
children.installExitHooks();

/** One system's phase: how to start its workers and its producer. */
interface Phase {
  row: RowSpec;
  /** Needs this server. */
  server: "nats" | "redis";
  /** Starts the workers, pushing each into `spawned` as soon as it is spawned, and resolves once all are ready. */
  startWorkers(queue: string, spawned: Child[]): Promise<void>;
  producer(queue: string): { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; cwd?: string };
}

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

/** Parses the last `RESULT <json>` line of a producer's output. */
function parseResult(out: string): ProducerResult | undefined {
  const line = out.split("\n").filter((l) => l.startsWith("RESULT ")).pop();
  return line ? (JSON.parse(line.slice(7)) as ProducerResult) : undefined;
}

async function stopAll(ws: Child[]): Promise<void> {
  await Promise.all(ws.map((w) => w.stop(10_000)));
}

function nodeChild(script: string, spec: unknown): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [join(HERE_DIST, script), JSON.stringify(spec)] };
}

function phases(nats: Server | undefined, redis: Server | undefined, versions: ReturnType<typeof collectVersions>): Phase[] {
  const spec = (url: string, queue: string, extra: Partial<ProducerSpec> & Record<string, unknown> = {}): ProducerSpec => ({
    url,
    queue,
    warmup: WARMUP,
    count: COUNT,
    rateHz: RATE,
    latencyCount: Math.round(RATE * SECONDS),
    ...extra,
  });
  const out: Phase[] = [];
  if (nats && ONLY.has("celeriac")) {
    out.push({
      row: { key: "celeriac", label: `Celeriac (client.enqueue → celeriac worker, ${CEL_PROCS} procs × ${CEL_CONC})`, procs: CEL_PROCS },
      server: "nats",
      async startWorkers(queue, spawned) {
        const env: NodeJS.ProcessEnv = { ...process.env, CELERIAC_LOG_LEVEL: "info", CELERIAC_KUBE_STATUS: "false" };
        delete env.KUBECONFIG;
        delete env.KUBERNETES_SERVICE_HOST;
        const ws = Array.from({ length: CEL_PROCS }, (_, i) =>
          children.spawn(`celeriac-worker-${i + 1}`, process.execPath, [join(ROOT, "bin", "celeriac.js"), "worker", "--tasks", join(HERE_DIST, "tasks.js"), "--queue", queue, "--nats", nats.url, "--port", "0", "--concurrency", String(CEL_CONC)], { cwd: ROOT, env }),
        );
        spawned.push(...ws);
        await Promise.all(ws.map((w) => w.waitFor(/"msg":"Worker started"/, WORKER_READY_MS)));
      },
      producer: (queue) => nodeChild("celeriac-producer.js", spec(nats.url, queue)),
    });
    out.push({
      row: { key: "celeriac-bulk", label: `Celeriac client.enqueueMany of ${BULK.toLocaleString("en-US")}`, procs: 0 },
      server: "nats",
      startWorkers: async () => undefined,
      producer: (queue) => nodeChild("celeriac-producer.js", spec(nats.url, queue, { bulk: BULK })),
    });
  }
  if (redis && ONLY.has("bullmq")) {
    for (const c of BULL_CONC) {
      out.push({
        row: { key: `bullmq-c${c}`, label: `BullMQ ${versions.bullmq} + Redis ${versions.redisShort} (1 proc × concurrency ${c})`, procs: 1, candidateOf: "bullmq" },
        server: "redis",
        async startWorkers(queue, spawned) {
          const w = children.spawn(`bullmq-worker-c${c}`, process.execPath, [join(HERE_DIST, "bullmq-worker.js"), JSON.stringify({ url: redis.url, queue, concurrency: c })], { cwd: ROOT });
          spawned.push(w);
          await w.waitFor(/^READY$/m, WORKER_READY_MS);
        },
        producer: (queue) => nodeChild("bullmq-producer.js", spec(redis.url, queue)),
      });
    }
    out.push({
      row: { key: "bullmq-bulk", label: `BullMQ Queue.addBulk of ${BULK.toLocaleString("en-US")}`, procs: 0 },
      server: "redis",
      startWorkers: async () => undefined,
      producer: (queue) => nodeChild("bullmq-producer.js", spec(redis.url, queue, { bulk: BULK })),
    });
  }
  if (redis && ONLY.has("celery") && versions.celeryOk === "yes") {
    const env = (queue: string): NodeJS.ProcessEnv => ({ ...process.env, PEERS_REDIS_URL: `${redis.url}/0`, PEERS_QUEUE: queue, PYTHONDONTWRITEBYTECODE: "1", PYTHONPATH: PY_DIR });
    out.push({
      row: { key: "celery", label: `Celery ${versions.celery} + Redis ${versions.redisShort} (${CELERY_PROCS} × solo, prefetch ×64)`, procs: CELERY_PROCS },
      server: "redis",
      async startWorkers(queue, spawned) {
        const ws = Array.from({ length: CELERY_PROCS }, (_, i) =>
          children.spawn(`celery-worker-${i + 1}`, PYTHON, ["-m", "celery", "-A", "celery_peers", "worker", "--pool", "solo", "--prefetch-multiplier", "64", "-Q", queue, "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", `w${i + 1}-${queue}@%h`], { cwd: PY_DIR, env: env(queue) }),
        );
        spawned.push(...ws);
        await Promise.all(ws.map((w) => w.waitFor(/^READY$/m, WORKER_READY_MS)));
      },
      producer: (queue) => ({ cmd: PYTHON, args: [join(PY_DIR, "celery_peers.py"), "producer", JSON.stringify({ ...spec(redis.url, queue), threads: CELERY_THREADS })], env: env(queue), cwd: PY_DIR }),
    });
  }
  if (nats) {
    for (const kv of [false, true]) {
      const key = kv ? "kv" : "raw";
      if (!ONLY.has(key)) continue;
      out.push({
        row: { key, label: kv ? "JetStream + one KV put per task (ceiling)" : "raw JetStream publish+consume+ack (ceiling)", procs: 0 },
        server: "nats",
        startWorkers: async () => undefined,
        producer: (queue) => nodeChild("ceiling-producer.js", spec(nats.url, queue, { kv })),
      });
    }
  }
  return out;
}

/** Deletes every stream on the server (the phase's queue, buckets, ceilings' streams). */
async function wipeNats(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const s of jsm.streams.list()) names.push(s.config.name);
  for (const n of names) await jsm.streams.delete(n);
}

function wipeRedis(redis: Server): void {
  const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(redis.port), "FLUSHALL"], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`redis-cli FLUSHALL: ${r.stderr || r.error?.message}`);
}

/** Runs one phase: workers up and ready, the producer to its end, worker memory read, workers stopped. */
async function runPhase(p: Phase, round: number, queue: string): Promise<PhaseOutcome> {
  const t0 = Date.now();
  const loadBefore = load();
  const workers: Child[] = [];
  let result: ProducerResult | undefined;
  let error: string | undefined;
  let mem: PhaseOutcome["workers"] = [];
  try {
    await p.startWorkers(queue, workers);
    const pr = p.producer(queue);
    const prod = children.spawn(`${p.row.key}-producer`, pr.cmd, pr.args, { cwd: pr.cwd ?? ROOT, env: pr.env ?? process.env });
    const killer = setTimeout(() => void prod.stop(0), PRODUCER_KILL_MS);
    const code = await prod.exited;
    clearTimeout(killer);
    mem = workers.map((w) => procMemory(w.pid));
    result = parseResult(prod.output());
    if (code !== 0 || !result) error = `producer exited ${code}: ${prod.output().trim().split("\n").slice(-6).join(" | ").slice(0, 600)}`;
    for (const w of workers) if (!w.alive()) error = `${w.name} died: ${w.output().slice(-600)}`;
  } catch (err) {
    error = (err as Error).message.slice(0, 800);
  } finally {
    await stopAll(workers);
  }
  return { key: p.row.key, round, ...(result ? { result } : {}), workers: mem, ...(error ? { error } : {}), loadBefore, loadAfter: load(), wallSeconds: (Date.now() - t0) / 1000 };
}

function collectVersions() {
  const pkgVersion = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "not installed";
    }
  };
  const redisLine = versionOf("redis-server", ["--version"]);
  const py = spawnSync(PYTHON, ["-c", "import sys, celery, kombu, redis; print(celery.__version__, kombu.__version__, redis.__version__, sys.version.split()[0])"], { encoding: "utf8", timeout: 20_000 });
  const [celery, kombu, redisPy, python] = py.status === 0 ? py.stdout.trim().split(" ") : [];
  const celeriacPkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  return {
    celeriac: `${celeriacPkg.version}${git.status === 0 ? ` (${git.stdout.trim()})` : ""}`,
    node: process.version,
    natsServer: versionOf("nats-server", ["--version"]),
    redisServer: redisLine,
    redisShort: /v=(\d+\.\d+\.\d+)/.exec(redisLine)?.[1] ?? "?",
    bullmq: pkgVersion("bullmq"),
    ioredis: pkgVersion("ioredis"),
    natsJs: pkgVersion("@nats-io/transport-node"),
    celeryOk: py.status === 0 ? "yes" : `no: ${PYTHON} cannot import celery/redis (apt-get install -y python3-celery python3-redis): ${py.stderr.trim().split("\n").pop()}`,
    celery: celery ?? "–",
    kombu: kombu ?? "–",
    redisPy: redisPy ?? "–",
    python: python ?? "–",
  };
}

async function main(): Promise<number> {
  const started = Date.now();
  const versions = collectVersions();
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "?", memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), loadStart: load() };
  console.log(`peers benchmark${QUICK ? " (quick)" : ""}: ${ROUNDS} rounds · ${COUNT} tasks per throughput run · ${RATE}/s for ${SECONDS} s · warm-up ${WARMUP} · bulk ${BULK} · budget ${BUDGET_MS / 1000} s`);
  console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Linux ${machine.kernel}, load ${machine.loadStart.join(" ")}`);
  if (versions.celeryOk !== "yes") console.log(`Celery skipped — ${versions.celeryOk}`);
  const nats = [...ONLY].some((k) => ["celeriac", "raw", "kv"].includes(k)) ? await startNats(children) : undefined;
  const redis = ONLY.has("bullmq") || ONLY.has("celery") ? await startRedis(children) : undefined;
  const nc = nats ? await natsConnect(natsOpts(nats.url)) : undefined;
  const list = phases(nats, redis, versions);
  const outcomes: PhaseOutcome[] = [];
  let roundsRun = 0;
  let longestRoundMs = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const left = BUDGET_MS - (Date.now() - started);
      if (round > 1 && left < longestRoundMs) {
        console.log(`round ${round}: not started — ${Math.round(left / 1000)} s of the ${BUDGET_MS / 1000} s budget left, a round took up to ${Math.round(longestRoundMs / 1000)} s (machine busy? load ${load().join(" ")})`);
        break;
      }
      const roundStart = Date.now();
      for (const p of list) {
        const queue = `peers-${p.row.key}-r${round}-${Date.now().toString(36)}`;
        const o = await runPhase(p, round, queue);
        outcomes.push(o);
        const r = o.result;
        const fig = o.error
          ? `FAILED ${o.error.slice(0, 300)}`
          : [r?.throughput ? `${Math.round(r.throughput.perSecond)} tasks/s${Number.isFinite(r.throughput.enqueueSeconds) ? ` (enqueued at ${Math.round(r.throughput.n / r.throughput.enqueueSeconds)}/s)` : ""}` : "", r?.latency ? `p50 ${r.latency.p50Ms.toFixed(2)} p99 ${r.latency.p99Ms.toFixed(2)} ms` : "", r?.bulk ? ("na" in r.bulk ? `bulk n/a (${r.bulk.na})` : `bulk ${Math.round(r.bulk.perSecond)}/s`) : "", o.workers.length ? `HWM ${o.workers.map((m) => (m ? m.hwmMiB.toFixed(0) : "?")).join("+")} MiB` : r?.self ? `proc HWM ${r.self.hwmMiB.toFixed(0)} MiB` : ""].filter(Boolean).join(" · ");
        console.log(`round ${round} ${p.row.key.padEnd(14)} ${fig}  [load ${o.loadBefore[0]}→${o.loadAfter[0]}, ${o.wallSeconds.toFixed(1)} s]`);
        if (p.server === "nats" && nc) await wipeNats(nc);
        if (p.server === "redis" && redis) wipeRedis(redis);
      }
      roundsRun = round;
      longestRoundMs = Math.max(longestRoundMs, Date.now() - roundStart);
    }
  } finally {
    await nc?.close();
    await redis?.stop();
    await nats?.stop();
  }
  const summary = summarise(
    list.map((p) => p.row),
    outcomes,
  );
  const table = formatTables(summary, RATE);
  const wallSeconds = (Date.now() - started) / 1000;
  const loadEnd = load();
  console.log("");
  console.log(table);
  console.log("");
  console.log(`medians of ${roundsRun} interleaved rounds${roundsRun < ROUNDS ? ` (of ${ROUNDS} asked: the ${BUDGET_MS / 1000} s budget ran out)` : ""} · ${wallSeconds.toFixed(0)} s · ${new Date().toISOString()}`);
  console.log(`versions: nats-server ${versions.natsServer.replace(/^nats-server:\s*/, "")}, ${versions.redisServer.split(" ").slice(0, 3).join(" ")}, bullmq ${versions.bullmq} (ioredis ${versions.ioredis}), celery ${versions.celery} (kombu ${versions.kombu}, redis-py ${versions.redisPy}, python ${versions.python}), node ${versions.node}, nats.js ${versions.natsJs}, celeriac ${versions.celeriac}`);
  console.log(`machine: ${machine.cpus} CPUs (${machine.cpuModel}), load average at start ${machine.loadStart.join(" ")}, at end ${loadEnd.join(" ")}`);
  for (const s of summary) for (const f of s.failed) console.log(`failed: ${s.key} ${f}`);
  const doc = {
    date: new Date().toISOString(),
    quick: QUICK,
    roundsRun,
    settings: { rounds: ROUNDS, count: COUNT, seconds: SECONDS, rateHz: RATE, warmup: WARMUP, bulk: BULK, window: 1000, bullmqConcurrency: BULL_CONC, celeriacProcs: CEL_PROCS, celeriacConcurrency: CEL_CONC, celeryProcs: CELERY_PROCS, celeryThreads: CELERY_THREADS },
    versions,
    machine: { ...machine, loadEnd },
    wallSeconds,
    best: bestCandidates(summary),
    summary,
    table,
    outcomes,
  };
  if (!flag("no-write")) {
    const file = str("out", join(ROOT, "bench", "peers", "results", `${doc.date.replace(/[:]/g, "-").replace(/\..*$/, "")}${QUICK ? "-quick" : ""}.json`));
    const dir = join(file, "..");
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
    console.log(`written: ${file}`);
  }
  const running = children.running();
  if (running.length) console.log(`stopping leftovers: ${running.map((r) => `${r.name} (${r.pid})`).join(", ")}`);
  return summary.some((s) => s.failed.length) ? 1 : 0;
}

main().then(
  (code) => {
    children.killAll();
    process.exit(code);
  },
  (err: unknown) => {
    console.error(err);
    children.killAll();
    process.exit(1);
  },
);
